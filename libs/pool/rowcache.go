package pool

import (
	"sync"
	"unsafe"

	"github.com/tistream/tistream/libs/recycle"
)

// rowCache recycles the []Row slices a reader goes through: the rows decoded
// from a section read into a recycled buffer (they go back with the buffer,
// when nothing holds the rows any more) and the slices a Puller returns
// from Poll (back at Release). Like the byte buffers, a slice taken again
// is memory the process has touched before instead of a new allocation,
// which the runtime zeroes and the kernel faults in page by page. It holds
// at most limit bytes of capacity; what does not fit is left to the
// collector, as is every slice whose holder never releases it.
type rowCache struct {
	mu    sync.Mutex
	free  [][]Row
	bytes int
	limit int
	taken int // slices handed out again
}

const rowBytes = int(unsafe.Sizeof(Row{}))

// take returns an empty slice with room for n rows and at most twice that
// (a much larger one would hold memory the rows do not use), the smallest
// such one held; a new one when none fits.
func (c *rowCache) take(n int) []Row {
	if c != nil && n > 0 {
		c.mu.Lock()
		s, ok := recycle.Smallest(&c.free, n, 2*n)
		if ok {
			c.bytes -= cap(s) * rowBytes
			c.taken++
		}
		c.mu.Unlock()
		if ok {
			return s
		}
	}
	return make([]Row, 0, n)
}

// reused is how many slices take handed out again.
func (c *rowCache) reused() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int64(c.taken)
}

// put gives back slices nothing refers to any more. They are cleared first:
// their rows point into buffers that are being reused.
func (c *rowCache) put(slices ...[]Row) {
	if c == nil {
		return
	}
	for _, s := range slices {
		if cap(s) == 0 {
			continue
		}
		s = s[:cap(s)]
		if poisonReleased {
			for i := range s {
				s[i] = Row{CommitTs: poisonTs, Key: []byte("released")}
			}
		} else {
			clear(s)
		}
		c.mu.Lock()
		if c.bytes+cap(s)*rowBytes <= c.limit {
			c.free = append(c.free, s[:0])
			c.bytes += cap(s) * rowBytes
		}
		c.mu.Unlock()
	}
}

// poisonTs marks a recycled row (tests).
const poisonTs = 0xdbdbdbdb
