package pool

import "sync"

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
}

// Bounds of the cache's limit: it follows twice the latest publication's
// bytes (a round being staged while the last one is written) within these.
const (
	minBufCache = 8 << 20
	maxBufCache = 256 << 20
)

// take returns an empty buffer, preferring the smallest one of at least
// want bytes, else the largest held; nil when none is held.
func (c *bufCache) take(want int) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	best := -1
	for i, b := range c.bufs {
		switch {
		case best < 0:
			best = i
		case cap(b) >= want && (cap(c.bufs[best]) < want || cap(b) < cap(c.bufs[best])):
			best = i
		case cap(c.bufs[best]) < want && cap(b) > cap(c.bufs[best]):
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	b := c.bufs[best]
	last := len(c.bufs) - 1
	c.bufs[best], c.bufs[last] = c.bufs[last], nil
	c.bufs = c.bufs[:last]
	c.bytes -= cap(b)
	c.taken++
	return b[:0]
}

// put gives back buffers nothing refers to any more.
func (c *bufCache) put(bufs ...[]byte) {
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

// follow sets the limit from the bytes of a publication just written.
func (c *bufCache) follow(pubBytes int) {
	c.mu.Lock()
	c.limit = min(max(2*pubBytes, minBufCache), maxBufCache)
	c.mu.Unlock()
}
