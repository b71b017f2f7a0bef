package crypt

import (
	"sync"

	"github.com/tistream/tistream/libs/recycle"
)

// scratchBufs recycles the store's ciphertext buffers: the envelopes puts
// seal (a sorter writes a publication every round), and the chunks ranged
// reads into a caller's buffer (GetRangeInto) read before decrypting them.
// The pool's writers and readers recycle their plaintext buffers, and a new
// ciphertext buffer for every put or read would undo that (a fresh
// allocation is zeroed and, on a virtual machine, page-faulted in: most of
// a read's cost). At most maxScratch buffers and maxScratchBytes of
// capacity are held; what does not fit is left to the collector.
type scratchBufs struct {
	mu    sync.Mutex
	bufs  [][]byte
	bytes int
}

const (
	maxScratch      = 8
	maxScratchBytes = 64 << 20
)

// take returns a buffer of n bytes: the smallest held one large enough,
// or a new one.
func (s *scratchBufs) take(n int) []byte {
	s.mu.Lock()
	b, ok := recycle.Smallest(&s.bufs, n, 0)
	if ok {
		s.bytes -= cap(b)
	}
	s.mu.Unlock()
	if !ok {
		b = make([]byte, n)
	}
	return b[:n]
}

// put keeps b for the next take, within the bounds.
func (s *scratchBufs) put(b []byte) {
	if b == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bufs) < maxScratch && s.bytes+cap(b) <= maxScratchBytes {
		s.bufs = append(s.bufs, b)
		s.bytes += cap(b)
	}
}
