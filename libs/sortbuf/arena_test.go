package sortbuf

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/offheap"
)

// blocksBack waits until every block of pool is back (the collector runs
// cleanups on a goroutine of its own, late under load).
func blocksBack(t *testing.T, pool *offheap.Pool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for pool.Stats().InUse != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of chunks never came back to the arena", pool.Stats().InUse)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// arenaRow is row i of the test: a 1 KiB value that names i throughout.
func arenaRow(i int) Row {
	v := make([]byte, 1024)
	for j := 0; j < len(v); j += 8 {
		binary.BigEndian.PutUint64(v[j:], uint64(i))
	}
	return Row{CommitTs: uint64(10 + i), StartTs: uint64(5 + i), Op: OpPut, Key: binary.BigEndian.AppendUint64([]byte("k"), uint64(i)), Value: v}
}

// Full-size chunks live in the arena, outside the Go heap. Those released
// while a scan reads them must stay as they are until the scan is done,
// and every chunk comes back to the arena once nothing refers to it: a
// flushed range's to the store's cache or the arena, a dropped buffer's
// and a forgotten store's through the collector.
func TestArenaChunksStayWhileReadAndComeBack(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("full-size chunks are on the Go heap here")
	}
	pool, err := offheap.New(maxChunk, offheap.Options{})
	require.NoError(t, err)
	s := NewMemory()
	s.chunks.arena = pool // its own, so that no other test's chunks count
	b := s.Buffer(1)
	const n = 8000 // ~8 MiB: 32 or so full-size chunks
	batch := b.NewBatch()
	for i := 0; i < n; i++ {
		require.NoError(t, batch.Add(arenaRow(i)))
		if batch.Len() == 500 {
			require.NoError(t, batch.Commit())
		}
	}
	require.NoError(t, batch.Commit())
	batch.Close()
	require.Greater(t, pool.Stats().InUse, int64(6<<20), "the rows' chunks are in the arena")

	// A scan whose fn deletes rows it has not read yet (fn may use the
	// buffer; the scan's view was taken when it started) while new rows
	// come in: the chunks released under the scan must not be reused,
	// handed back or zeroed before it ends.
	read := 0
	require.NoError(t, b.Scan(uint64(10+n), func(r Row) error {
		want := arenaRow(read)
		require.Equal(t, want.Key, r.Key, "row %d", read)
		require.Equal(t, want.Value, r.Value, "row %d's value changed under the scan", read)
		read++
		if read%1000 == 0 {
			require.NoError(t, b.DeleteUpTo(r.CommitTs+600))
			for j := 0; j < 300; j++ { // more than a chunk: new chunks are taken meanwhile
				require.NoError(t, b.Add(arenaRow(n+read+j)))
			}
		}
		return nil
	}))
	require.Equal(t, n, read)
	require.NoError(t, b.Drop())
	s, b = nil, nil // the store's cached chunks go with it
	blocksBack(t, pool)
}
