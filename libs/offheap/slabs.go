package offheap

import "sync"

// Slabs hands out byte buffers carved from slabs of the Go heap whose pages
// are advised for transparent huge pages, for large buffers that their
// owners recycle but that have no single point where they are known to be
// free (a publication's sections, the api-server's read buffers: a failed
// request body, a caller that never releases). The collector still owns
// the memory: a buffer dropped on any path is freed as any other, and a
// slab lives while a buffer carved from it is referenced. What the advice
// buys is the first touch of the memory: one fault per 2 MiB instead of one
// per 4 KiB page (~9 µs each on a virtual machine, most of the cost of
// filling a new buffer there).
//
// A slab starts at a 2 MiB boundary: it is allocated PageSize larger and
// the part before the boundary is never touched, so it costs address space
// and heap accounting only. Buffers of at least a quarter of a slab get
// memory of their own, aligned the same way; buffers under MinCarve are
// plain allocations (too small to matter, and not worth pinning a slab
// for).
//
// The price is that a slab's memory goes back to the collector only when
// every buffer carved from it is gone: a buffer kept long keeps up to a
// slab with it. Owners should recycle what they carve (the buffers are
// then reused rather than carved again, and few slabs are ever made) and
// carve buffers of very different lifetimes from different Slabs.
type Slabs struct {
	size int
	mu   sync.Mutex
	rest []byte // the current slab's uncarved part: len == cap
}

// DefaultSlabSize is a slab's size when NewSlabs is given none.
const DefaultSlabSize = 8 << 20

// MinCarve is the least a buffer must be to come from a slab.
const MinCarve = 32 << 10

// NewSlabs returns a carver of slabs of size bytes (DefaultSlabSize if
// size <= 0; at least PageSize).
func NewSlabs(size int) *Slabs {
	if size <= 0 {
		size = DefaultSlabSize
	}
	return &Slabs{size: max(size, PageSize)}
}

// Make returns an empty buffer of capacity n whose memory no other buffer
// shares.
func (s *Slabs) Make(n int) []byte {
	switch {
	case n <= 0:
		return nil
	case n < MinCarve || !supported || !hugePages():
		// With base pages there is nothing to advise: aligning to 2 MiB
		// would only add a huge page of heap to each slab and large buffer.
		return make([]byte, 0, n)
	case n >= s.size/4:
		return hugeAligned(n)[:0]
	}
	s.mu.Lock()
	if len(s.rest) < n {
		s.rest = hugeAligned(s.size)
	}
	b := s.rest[:0:n]
	s.rest = s.rest[n:]
	s.mu.Unlock()
	// Its first and last page may be those of the buffers carved before
	// and after it, which other goroutines fill at the same time.
	TouchBytes(b)
	return b
}

// hugeAligned returns n bytes of new heap memory that start at a PageSize
// boundary, advised for huge pages.
func hugeAligned(n int) []byte {
	raw := make([]byte, n+PageSize)
	off := int((PageSize - base(raw)%PageSize) % PageSize)
	b := raw[off : off+n : off+n]
	AdviseHuge(b)
	return b
}
