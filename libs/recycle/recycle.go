// Package recycle holds what the free lists of large slices share (the
// sorter's index arrays, the pool reader's row slices): take the
// best-fitting slice out of a list; and List, a bounded free list of its
// own (the arrays the sorter decodes requests into).
package recycle

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// Smallest removes from list and returns the slice of least capacity at
// least least and, when most > 0, at most most; ok is false when none is.
// The list's order is not kept (the last slice takes the removed one's
// place).
func Smallest[E any](list *[][]E, least, most int) (s []E, ok bool) {
	best := -1
	for i, c := range *list {
		if cap(c) >= least && (most <= 0 || cap(c) <= most) && (best < 0 || cap(c) < cap((*list)[best])) {
			best = i
		}
	}
	if best < 0 {
		return nil, false
	}
	l := *list
	s = l[best]
	last := len(l) - 1
	l[best], l[last] = l[last], nil
	*list = l[:last]
	return s, true
}

// List is a bounded free list of slices of one element type, safe for
// concurrent use: Get hands out a held slice that fits (the smallest) or a
// new one, Put takes one back. A slice whose every Put cleared what its
// user wrote — Put clears s[:len(s)], so the user passes the slice with
// the length it filled and writes nothing past it — is all zeros when Get
// hands it out again, as a new one is. What would pass MaxSlices or
// MaxBytes (capacity × element size, of the slices held) is left to the
// garbage collector.
//
// Why: decoding a large message into arrays of a few hundred thousand
// elements per second makes that much new memory a second, zeroed by the
// runtime and first touched through page faults, for arrays that are
// garbage a moment later; held ones are memory the process has touched.
type List[E any] struct {
	MaxSlices int
	MaxBytes  int64

	mu    sync.Mutex
	free  [][]E
	bytes int64
	// Reused and Made count Get's slices that were held and new (metrics,
	// tests).
	Reused, Made atomic.Int64
}

// Get returns a slice of length n: a held one of capacity at least n (the
// smallest), or a new one.
func (l *List[E]) Get(n int) []E {
	l.mu.Lock()
	s, ok := Smallest(&l.free, n, 0)
	if ok {
		l.bytes -= l.size(cap(s))
	}
	l.mu.Unlock()
	if !ok {
		l.Made.Add(1)
		return make([]E, n)
	}
	l.Reused.Add(1)
	return s[:n]
}

// Put clears s[:len(s)] and holds the slice for a later Get, within the
// bounds; s must not be used afterwards.
func (l *List[E]) Put(s []E) {
	if cap(s) == 0 {
		return
	}
	size := l.size(cap(s))
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.free) >= l.MaxSlices || l.bytes+size > l.MaxBytes {
		return
	}
	clear(s)
	l.free = append(l.free, s[:0])
	l.bytes += size
}

func (l *List[E]) size(n int) int64 {
	var e E
	return int64(n) * int64(unsafe.Sizeof(e))
}
