package offheap

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// Touch takes the page faults of a new buffer's first and last huge page
// (the only ones it can share with other buffers) now, each under a lock
// of its own page, so that two threads never fault one huge page at once.
//
// Why: the kernel zeroes a transparent huge page before mapping it, and
// when two threads fault the same unmapped 2 MiB page at once, each
// allocates and zeroes a page of its own and one of them is thrown away.
// Faulting a huge page in takes 0.3 ms (memory the host still backs) to
// 5 ms (memory it must back anew) on the virtual machines we measure on
// (docs/benchmarks.md), and buffers carved side by side from one page
// (arena blocks, sections, row indexes) are first written by different
// workers at the same moment: at GOMAXPROCS=2 about a hundred of the
// sorter benchmark's ~280 huge-page faults a run were such duplicates.
// Under the page's lock the second thread waits (its goroutine parked,
// its core free for other work) and then finds the page mapped.
//
// p points to n bytes that the caller owns and nobody else reads or writes
// yet; their contents are kept (an atomic add of zero to a word, which
// faults the page for writing: a read would map the zero page, and writing
// it later would fault again and split it). Buffers under MinCarve are not
// worth the lock and are left alone, as is everything when the process
// uses base pages (Pages), whose faults are the kernel's usual kind.
func Touch(p unsafe.Pointer, n uintptr) {
	if p == nil || n < MinCarve || !hugePages() {
		return
	}
	first := uintptr(p)
	last := first + n - 4
	touchWord(alignWord(p))
	if first/PageSize != last/PageSize {
		touchWord(unsafe.Add(p, (last&^3)-first))
	}
}

// TouchBytes is Touch for a byte buffer's capacity.
func TouchBytes(b []byte) {
	if cap(b) > 0 {
		Touch(unsafe.Pointer(unsafe.SliceData(b)), uintptr(cap(b)))
	}
}

// alignWord rounds p up to a 4-byte boundary (the buffer is at least
// MinCarve long, so the word stays inside it; within 3 bytes of a page's
// end it is the next page's, and the first page is left to its writers).
func alignWord(p unsafe.Pointer) unsafe.Pointer {
	return unsafe.Add(p, (4-uintptr(p)%4)%4)
}

// touchLocks are striped by huge page: two buffers on one page take the
// same lock; buffers on different pages rarely do.
var touchLocks [64]struct {
	sync.Mutex
	_ [56]byte // one cache line each
}

func touchWord(w unsafe.Pointer) {
	l := &touchLocks[(uintptr(w)/PageSize)%uintptr(len(touchLocks))]
	l.Lock()
	atomic.AddUint32((*uint32)(w), 0)
	l.Unlock()
}

// smallPage is the base page size WritePages writes to.
const smallPage = 4096

// WritePages writes every base page of s's spare capacity (s[len:cap])
// once, for an array of pointerful elements that will be filled over a
// while (a row index, a batch's events). The elements written must be
// zero, as those of a new array are: nothing changes but where the pages
// come from.
//
// Why: the garbage collector scans such an array to its capacity, the part
// not yet filled included. A page it reads before anything wrote it is
// mapped to the kernel's shared zero page, and the first write there
// faults a second time, to give it a page of its own; with the process on
// more than one CPU that fault also makes the other CPUs running it flush
// their TLBs, an interprocessor interrupt each, costly in a virtual
// machine (docs/benchmarks.md, "Write-back behind the writes; pages the
// collector read first"). Written first, each page faults once, as its
// first write would have anyway.
func WritePages[T any](s []T) []T {
	var zero T
	size := unsafe.Sizeof(zero)
	n, c := len(s), cap(s)
	if size == 0 || uintptr(c-n)*size < smallPage {
		return s
	}
	all := s[:c]
	step := max(1, int(smallPage/size))
	for i := n; i < c; i += step {
		all[i] = zero
	}
	all[c-1] = zero
	return s
}
