//go:build linux

package offheap

import (
	"runtime"
	"slices"
	"syscall"
	"time"
	"unsafe"
)

const supported = true

// madvHugePage and madvNoHugePage are MADV_HUGEPAGE and MADV_NOHUGEPAGE
// (the syscall package does not name them).
const (
	madvHugePage   = 14
	madvNoHugePage = 15
)

// pageAdvice is the advice for new mappings: huge pages or not, as the
// process decided (Pages).
func pageAdvice() int {
	if hugePages() {
		return madvHugePage
	}
	return madvNoHugePage
}

// mapAligned maps n bytes (a multiple of PageSize) of anonymous memory
// aligned to PageSize, advised for huge pages or against them as the
// process decided (Pages).
func mapAligned(n int) ([]byte, error) {
	raw, err := syscall.Mmap(-1, 0, n+PageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	// Unmap the unaligned head and the tail past n. syscall.Munmap only
	// unmaps whole mappings it made, so this calls the kernel directly
	// (nothing here is ever unmapped through the syscall package).
	head := int((PageSize - base(raw)%PageSize) % PageSize)
	if head > 0 {
		if err := munmap(raw[:head]); err != nil {
			return nil, err
		}
	}
	if tail := raw[head+n:]; len(tail) > 0 {
		if err := munmap(tail); err != nil {
			return nil, err
		}
	}
	mem := raw[head : head+n : head+n]
	// A kernel without transparent huge pages refuses the advice; the
	// memory works the same with small pages.
	_ = syscall.Madvise(mem, pageAdvice())
	return mem, nil
}

func munmap(b []byte) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_MUNMAP, base(b), uintptr(len(b)), 0); errno != 0 {
		return errno
	}
	return nil
}

// release gives a page's memory back to the kernel; the range stays
// mapped and reads as zeros until written again.
func release(b []byte) error { return syscall.Madvise(b, syscall.MADV_DONTNEED) }

// AdviseHuge advises the 2 MiB-aligned pages inside b for transparent huge
// pages (a no-op for the part of b outside them, when the kernel does not
// have them, or when the process decided against them: Pages). b's memory
// must not have been touched yet for the advice to matter: pages already
// resident stay small until the kernel's background collapse.
func AdviseHuge(b []byte) {
	if cap(b) == 0 || !hugePages() {
		return
	}
	start := (base(b) + PageSize - 1) &^ (PageSize - 1)
	end := (base(b) + uintptr(cap(b))) &^ (PageSize - 1)
	if end <= start {
		return
	}
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, start, end-start, madvHugePage)
}

// probeFaults measures what first touching a MiB of fresh anonymous memory
// costs in 4 KiB pages and in 2 MiB pages, in the probing thread's CPU
// time, by a write to every 4 KiB page of 2 MiB stretches: the median of
// four stretches of small pages (one odd stretch does not decide), the
// cheaper of two of huge pages. Writing every 4 KiB page of the huge
// stretches too keeps a kernel that falls back to small pages there from
// looking cheap. The memory is unmapped after; the probe costs a few
// milliseconds where pages are cheap, up to ~60 where they are not.
func probeFaults() (small, huge time.Duration, err error) {
	s, err := probeKind(madvNoHugePage, 4)
	if err != nil {
		return 0, 0, err
	}
	h, err := probeKind(madvHugePage, 2)
	if err != nil {
		return 0, 0, err
	}
	slices.Sort(s)
	return (s[1] + s[2]) / 2, min(h[0], h[1]), nil
}

// probeKind times the first writes to n fresh 2 MiB stretches under one
// advice, each as time per MiB.
func probeKind(advice, n int) ([]time.Duration, error) {
	raw, err := syscall.Mmap(-1, 0, (n+1)*PageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	defer syscall.Munmap(raw)
	head := int((PageSize - base(raw)%PageSize) % PageSize)
	mem := raw[head : head+n*PageSize]
	if err := syscall.Madvise(mem, advice); err != nil {
		return nil, err
	}
	// The thread's CPU time, not the wall clock: a fault's cost is the
	// faulting thread's (the kernel's handling, and the host's backing of
	// the page while the virtual CPU waits for it), while time the thread
	// spends descheduled by other work is not, and on a loaded machine
	// would make small pages look expensive.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	out := make([]time.Duration, n)
	for s := range out {
		p := unsafe.Pointer(&mem[s*PageSize])
		start, err := threadCPU()
		if err != nil {
			return nil, err
		}
		for off := uintptr(0); off < PageSize; off += 4096 {
			*(*byte)(unsafe.Add(p, off)) = 1
		}
		end, err := threadCPU()
		if err != nil {
			return nil, err
		}
		out[s] = (end - start) * (1 << 20) / PageSize
	}
	return out, nil
}

// clockThreadCPUTime is CLOCK_THREAD_CPUTIME_ID.
const clockThreadCPUTime = 3

// threadCPU is the calling thread's CPU time.
func threadCPU() (time.Duration, error) {
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0, errno
	}
	return time.Duration(ts.Nano()), nil
}
