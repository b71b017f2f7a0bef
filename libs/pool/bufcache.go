package pool

import (
	"math/bits"
	"sync"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/offheap"
)

// bufCache recycles the large buffers a group writer goes through every
// flush round — the ranges' sections, which a publication is written from
// as they are (objstore.PutIfAbsentParts) — so a round is built in memory
// the process has touched before instead of fresh allocations (zeroed by
// the runtime and page-faulted in by the kernel: in profiles the larger
// part of the cost of writing the rows). It holds at most limit bytes of
// capacity; what does not fit is left to the collector.
type bufCache struct {
	mu    sync.Mutex
	bufs  [][]byte
	bytes int // capacity held
	limit int
	taken int // buffers handed out again (tests)
	made  int // new buffers handed out (tests)
}

// Bounds of the cache's limit: it follows twice the capacity of the latest
// publication's section buffers (a round being staged while the last one
// is written) within these. The capacity, not the publication's bytes: a
// section's buffers are sized for its rows uncompressed, with room to
// spare, so with rows that compress a round's buffers are two to three
// times its bytes, and a limit of twice the bytes dropped most of them
// (the in-process fleet made 250 MB of new sections to publish ~130 MB).
const (
	minBufCache = 8 << 20
	maxBufCache = 256 << 20
)

// take returns an empty buffer of at least want bytes, the smallest one
// held; failing that, the largest one of at least least bytes (a section
// goes on in further parts when one fills up: container.Options.More);
// nil when none is that large. Every held buffer large enough to be of use
// is used, so a round larger than the last one takes all the old buffers
// and makes new ones only for the difference.
func (c *bufCache) take(want, least int) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	best, largest := -1, -1
	for i, b := range c.bufs {
		switch {
		case cap(b) >= want && (best < 0 || cap(b) < cap(c.bufs[best])):
			best = i
		case cap(b) >= least && (largest < 0 || cap(b) > cap(c.bufs[largest])):
			largest = i
		}
	}
	if best < 0 {
		best = largest
	}
	if best < 0 {
		return nil
	}
	b := c.remove(best)
	c.taken++
	return b[:0]
}

// get returns what take does, or else a new buffer for want bytes.
func (c *bufCache) get(want, least int) []byte {
	if b := c.take(want, least); b != nil {
		return b
	}
	c.mu.Lock()
	c.made++
	c.mu.Unlock()
	return newBuf(want)
}

func (c *bufCache) remove(i int) []byte {
	b := c.bufs[i]
	last := len(c.bufs) - 1
	c.bufs[i], c.bufs[last] = c.bufs[last], nil
	c.bufs = c.bufs[:last]
	c.bytes -= cap(b)
	return b
}

// minPart is the least a held buffer must have to be taken for a section
// it does not hold whole: a block's worth.
const minPart = container.DefaultBlockSize

// newBuf makes a buffer for want bytes that did not come from the cache,
// with room to spare (half again, at most maxSpare): next round's
// sections, a little larger, still fit it when it comes back.
func newBuf(want int) []byte { return sectionSlabs.Make(sizeClass(want + min(want/2, maxSpare))) }

// New sections and read buffers are carved from heap memory advised for
// huge pages (offheap.Slabs), each kind from slabs of its own so that one
// kind's buffers do not keep the other's slabs alive.
var sectionSlabs, readSlabs = offheap.NewSlabs(0), offheap.NewSlabs(0)

// maxSpare bounds the room a new buffer has beyond what it was made for: a
// range catching up may flush hundreds of MiB at once.
const maxSpare = 4 << 20

// put gives back buffers nothing refers to any more.
func (c *bufCache) put(bufs ...[]byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range bufs {
		if cap(b) == 0 || c.bytes+cap(b) > max(c.limit, minBufCache) {
			continue
		}
		c.bufs = append(c.bufs, b[:0])
		c.bytes += cap(b)
	}
}

// sizeClass rounds a new buffer's size up to one of few sizes (eight
// steps per power of two, 12.5% at most above n), so buffers recycled for
// one round's sections fit the next round's, whose sizes differ a little.
func sizeClass(n int) int {
	if n <= 4096 {
		return 4096
	}
	step := 1 << (bits.Len(uint(n-1)) - 4) // an eighth of the power of two below n
	return (n + step - 1) / step * step
}

// follow sets the limit from the capacity of the section buffers of a
// publication just written.
func (c *bufCache) follow(held int) {
	c.mu.Lock()
	c.limit = min(max(2*held, minBufCache), maxBufCache)
	// Quieter rounds: drop the largest buffers beyond the new limit, so
	// a burst's buffers are not held (they would only raise the heap the
	// collector lets grow).
	for c.bytes > c.limit && len(c.bufs) > 0 {
		largest := 0
		for i, b := range c.bufs {
			if cap(b) > cap(c.bufs[largest]) {
				largest = i
			}
		}
		c.remove(largest)
	}
	c.mu.Unlock()
}
