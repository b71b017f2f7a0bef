package objstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing n bytes of f from off
// back to the device, without waiting for them (sync_file_range with
// SYNC_FILE_RANGE_WRITE, as Pebble and RocksDB do every so many bytes of a
// table they write). It is a hint: an error here is not one of the
// write's — a write-back that fails is reported by the fsync that ends
// the file — so it is ignored.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}
