package pool

import (
	"context"
	"sync/atomic"

	"github.com/tistream/tistream/libs/objstore"
)

// readBuf is a buffer a section (or a range's sections of a segment) was
// read into on its own: the rows decoded from it point into it, so it may
// be read into again only once nothing refers to them. Who holds those
// rows holds a reference: the cache while it keeps the decoded object, and
// every reader it handed the object to, until it releases it. The last
// release gives the buffer back to its cache's recycled buffers, so the
// next read goes into memory the process already holds rather than a new
// allocation (zeroed, page-faulted in: on the benchmark's machine most of
// the cost of reading the pool back). A reference that is never released
// costs nothing but the recycling: the buffer is then left to the
// collector, as every buffer was before.
type readBuf struct {
	b    []byte
	refs atomic.Int32
	home *Cache // whose recycled buffers it goes back to; nil: not recycled
	// rows are the slices the rows decoded from b were put in: nothing
	// holds them once nothing holds the buffer, so they go back with it.
	rows [][]Row
}

// overReleases counts releases of a buffer no one held (a bug; tests check
// it is zero): the buffer is not recycled then.
var overReleases atomic.Int64

// poisonReleased fills a buffer with poisonByte when it is recycled, so a
// row still pointing into it reads garbage (tests; never in production).
var poisonReleased bool

const poisonByte = 0xdb

func (r *readBuf) hold() {
	if r != nil {
		r.refs.Add(1)
	}
}

func (r *readBuf) release() {
	if r == nil {
		return
	}
	switch n := r.refs.Add(-1); {
	case n < 0:
		overReleases.Add(1)
	case n == 0 && r.home != nil:
		if poisonReleased {
			for i := range r.b {
				r.b[i] = poisonByte
			}
		}
		r.home.bufs.put(r.b)
		r.home.rows.put(r.rows...)
		r.rows = nil
	}
}

// holder is a cached object whose rows point into a readBuf.
type holder interface {
	hold()
	release()
}

func holdValue(v any) {
	if h, ok := v.(holder); ok {
		h.hold()
	}
}

func releaseValue(v any) {
	if h, ok := v.(holder); ok {
		h.release()
	}
}

func (f *cachedFile) hold()    { f.buf.hold() }
func (f *cachedFile) release() { f.buf.release() }

// A range's rows in a segment share the buffer its sections were read into.
func (s spanRows) hold()    { s.buf().hold() }
func (s spanRows) release() { s.buf().release() }

func (s spanRows) buf() *readBuf {
	for _, f := range s {
		return f.buf
	}
	return nil
}

// readInto reads n bytes of key at off into a recycled buffer of the
// cache's when it has one that fits (a new one otherwise), held once. A
// store that cannot read into a given buffer reads into one of its own,
// which is not recycled.
func (c *Cache) readInto(ctx context.Context, store objstore.Store, key string, off int64, n int) (*readBuf, error) {
	r := &readBuf{}
	r.refs.Store(1)
	if _, ok := store.(objstore.RangeIntoGetter); !ok || c == nil {
		b, err := store.GetRange(ctx, key, off, int64(n))
		if err != nil {
			return nil, err
		}
		r.b = b
		return r, nil
	}
	b := c.bufs.take(n, n)
	if b != nil {
		c.bufsReused.Add(1)
	} else {
		b = readSlabs.Make(sizeClass(n))
	}
	b = b[:n]
	got, err := objstore.GetRangeInto(ctx, store, key, off, b)
	if err != nil {
		c.bufs.put(b)
		return nil, err
	}
	r.b = got
	if len(got) == 0 || &got[0] == &b[0] {
		r.home = c
	}
	return r, nil
}

// keepIfInPlace returns rb when rows point into it, with the slices they
// were decoded into (taken by rowsFor), else releases it (the rows were
// copied out of it: it can be read into again at once; the slices stay
// with the rows).
func keepIfInPlace(rb *readBuf, inPlace bool, rows [][]Row) *readBuf {
	if inPlace {
		if rb != nil {
			rb.rows = rows // none unless rowsFor gave out recycled slices
		}
		return rb
	}
	rb.release()
	return nil
}

// rowsFor returns what the rows of sections read into rb are decoded into:
// recycled slices of the cache's (recorded in *taken, to go back with the
// buffer) when rb is recycled too; nil (new slices) otherwise.
func (c *Cache) rowsFor(rb *readBuf, taken *[][]Row) func(int) []Row {
	if c == nil || rb == nil || rb.home == nil {
		return nil
	}
	return func(n int) []Row {
		s := c.rows.take(n)
		*taken = append(*taken, s)
		return s
	}
}
