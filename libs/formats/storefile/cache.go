package storefile

import formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"

// IncarnationCache remembers decoded region incarnations (without their
// peers) across the files of one store. A store's header lists every region it leads — 100,000 of them
// on a large store — and almost all are the same from one file to the next:
// with the cache each costs a map lookup instead of a protobuf decode. It is
// not safe for concurrent use; give each store stream its own.
type IncarnationCache struct {
	m   map[string]cachedIncarnation
	gen uint64 // bumped per file; entries unused for two files are dropped
}

type cachedIncarnation struct {
	inc  Incarnation
	term uint64
	gen  uint64
}

// NewIncarnationCache returns an empty cache.
func NewIncarnationCache() *IncarnationCache {
	return &IncarnationCache{m: make(map[string]cachedIncarnation)}
}

func (c *IncarnationCache) decode(ri *formatv1.RegionIncarnation) (Incarnation, error) {
	if c == nil || ri == nil {
		return DecodeIncarnation(ri)
	}
	if e, ok := c.m[string(ri.Region)]; ok && e.term == ri.Term {
		if e.gen != c.gen {
			e.gen = c.gen
			c.m[string(ri.Region)] = e
		}
		return e.inc, nil
	}
	inc, err := DecodeIncarnation(ri)
	if err != nil {
		return inc, err
	}
	// Peers are not needed to route or order anything, and they are half
	// the memory of a decoded region: cached incarnations go without.
	inc.Region.Peers = nil
	c.m[string(ri.Region)] = cachedIncarnation{inc: inc, term: ri.Term, gen: c.gen}
	return inc, nil
}

// nextFile starts a new file: entries not used by this file or the previous
// one are forgotten, every 16 files (the sweep is linear).
func (c *IncarnationCache) nextFile() {
	if c == nil {
		return
	}
	c.gen++
	if c.gen%16 != 0 {
		return
	}
	for k, e := range c.m {
		if c.gen-e.gen > 16 {
			delete(c.m, k)
		}
	}
}

// DecodeIncarnationCached decodes ri through cache (nil = no cache).
func DecodeIncarnationCached(ri *formatv1.RegionIncarnation, cache *IncarnationCache) (Incarnation, error) {
	return cache.decode(ri)
}
