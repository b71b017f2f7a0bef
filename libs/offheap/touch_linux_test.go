package offheap

import (
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// resident reports whether the 4 KiB page holding addr is in memory.
func resident(t *testing.T, addr uintptr) bool {
	page := addr &^ 4095
	var vec [1]byte
	_, _, errno := syscall.Syscall(syscall.SYS_MINCORE, page, 4096, uintptr(unsafe.Pointer(&vec[0])))
	require.Zero(t, errno, "mincore")
	return vec[0]&1 != 0
}

// Touch faults the pages a buffer may share with others (its first and
// last) and nothing in between; a small buffer is left alone.
func TestTouchFaultsTheEndPages(t *testing.T) {
	mem, err := mapAligned(4 * PageSize)
	require.NoError(t, err)
	defer func() { require.NoError(t, munmap(mem)) }()
	at := func(off int) uintptr { return base(mem) + uintptr(off) }

	// From the middle of page 0 to the middle of page 2, unaligned.
	b := mem[PageSize/2+1 : PageSize/2+1 : 2*PageSize+PageSize/2+3]
	require.False(t, resident(t, at(PageSize/2)), "fresh memory is not resident")
	TouchBytes(b)
	require.True(t, resident(t, at(PageSize/2+1)), "the first page is faulted")
	// The last whole word of b lies just below 2.5 MiB (b ends 3 bytes
	// past it): its page must be faulted with small pages as with huge.
	require.True(t, resident(t, at(2*PageSize+PageSize/2-4)), "the last page is faulted")
	require.False(t, resident(t, at(PageSize+PageSize/2)), "a page only the buffer has is left to it")

	small := mem[3*PageSize+8 : 3*PageSize+8 : 3*PageSize+8+MinCarve-1]
	TouchBytes(small)
	require.False(t, resident(t, at(3*PageSize+8)), "a buffer under MinCarve is not touched")
}

// Blocks of the arena and carved buffers come touched.
func TestPoolAndSlabsTouchWhatTheyHandOut(t *testing.T) {
	p, err := New(PageSize/8, Options{})
	require.NoError(t, err)
	b, err := p.Get()
	require.NoError(t, err)
	require.True(t, resident(t, base(b)), "a block of a fresh page is faulted before it is handed out")

	s := NewSlabs(0)
	s.Make(PageSize - 4096) // the next buffer starts near the end of the first page
	c := s.Make(64 << 10)
	require.True(t, resident(t, base(c)), "a carved buffer's first page is faulted")
	require.True(t, resident(t, base(c)+64<<10-1), "and its last")
}

// Touch keeps what the buffer holds, whatever its alignment, and is safe
// from many goroutines at once on buffers of one page.
func TestTouchKeepsContents(t *testing.T) {
	b := make([]byte, 3*PageSize)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	want := append([]byte(nil), b...)
	for _, off := range []int{0, 1, 2, 3, 5} {
		Touch(unsafe.Pointer(&b[off]), uintptr(len(b)-off-(off%3)))
	}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			part := b[i*MinCarve : (i+1)*MinCarve]
			TouchBytes(part)
		}()
	}
	wg.Wait()
	require.Equal(t, want, b)
}

// minorFaults is the process's minor page faults so far.
func minorFaults(t *testing.T) int64 {
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return ru.Minflt
}

type pointerful struct {
	p *int
	n [5]uint64
}

// A pointerful array whose pages WritePages wrote takes no page fault when
// it is filled after the collector scanned it; one left alone takes one a
// page (the collector's read mapped the zero page, the write replaces it).
func TestWritePagesSparesTheSecondFault(t *testing.T) {
	const n = (64 << 20) / int(unsafe.Sizeof(pointerful{})) // 64 MiB: fresh memory
	pages := int64(n) * int64(unsafe.Sizeof(pointerful{})) / 4096
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	fill := func(a []pointerful) int64 {
		runtime.GC() // scans a to its capacity
		before := minorFaults(t)
		for i := range a[:cap(a)] {
			a[:cap(a)][i].n[0] = 1
		}
		return minorFaults(t) - before
	}

	left := make([]pointerful, 0, n)
	keep = left
	if f := fill(left); f < pages/2 {
		t.Skipf("filling a scanned array took %d faults for %d pages: this kernel or runtime does not map read pages to the zero page", f, pages)
	}
	keep = nil

	written := WritePages(make([]pointerful, 0, n))
	keep = written
	require.Len(t, written, 0)
	require.Equal(t, n, cap(written))
	for _, e := range written[:n] {
		require.Zero(t, e)
	}
	f := fill(written)
	require.Less(t, f, pages/20, "filling took %d faults for %d pages", f, pages)
	keep = nil
}

// keep holds the array under test, so that the collector scans it.
var keep []pointerful
