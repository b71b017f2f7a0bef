package metaserver

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
)

const (
	// watermarkFetchers bounds the object-store reads one ListTasks makes
	// at a time.
	watermarkFetchers = 16
	// maxWatermarkCache bounds the cache; beyond it, expired entries go.
	maxWatermarkCache = 100_000
)

type rangeRef struct{ tenant, id uint64 }

// published is a range's published watermark; ok is false when the range
// has no log yet (no sorter has created it).
type published struct {
	wm uint64
	ok bool
	at time.Time
}

// watermarkCache remembers ranges' published watermarks (their pool log
// heads, and for ranges published in groups the newest publication listing
// them) briefly, so that repeated ListTasks calls cost the object store
// almost nothing.
type watermarkCache struct {
	store objstore.Store
	wr    *pool.WatermarkReader // shares each group's head among its ranges
	ttl   time.Duration
	now   func() time.Time

	mu    sync.Mutex
	items map[rangeRef]published
}

func newWatermarkCache(store objstore.Store, ttl time.Duration, now func() time.Time) *watermarkCache {
	return &watermarkCache{store: store, wr: pool.NewWatermarkReader(store), ttl: ttl, now: now, items: map[rangeRef]published{}}
}

// get returns the published watermark of each range, reading the log heads
// of those not cached (or expired) concurrently. A range whose head cannot
// be read is left out of the result rather than failing the whole list.
func (c *watermarkCache) get(ctx context.Context, refs []rangeRef) map[rangeRef]published {
	out := make(map[rangeRef]published, len(refs))
	var missing []rangeRef
	now := c.now()
	c.mu.Lock()
	for _, r := range refs {
		if p, ok := c.items[r]; ok && now.Sub(p.at) < c.ttl {
			out[r] = p
		} else {
			missing = append(missing, r)
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, watermarkFetchers)
	)
	for _, r := range missing {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			wm, err := c.wr.Watermark(ctx, r.tenant, r.id)
			p := published{at: now}
			switch {
			case err == nil:
				p.wm, p.ok = wm, true
			case !errors.Is(err, pool.ErrNoRange):
				return
			}
			mu.Lock()
			out[r] = p
			mu.Unlock()
		}()
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.items)+len(out) > maxWatermarkCache {
		for r, p := range c.items {
			if now.Sub(p.at) >= c.ttl {
				delete(c.items, r)
			}
		}
	}
	for r, p := range out {
		if len(c.items) < maxWatermarkCache {
			c.items[r] = p
		}
	}
	return out
}
