package pool

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tistream/tistream/libs/objstore"
)

// Cache holds decoded pool objects (range log entries, committed data files,
// manifests) keyed by object key, so that many readers of the same ranges —
// every puller of one hot table — fetch and decode each object once. Those
// objects are immutable once written (put-if-absent), so a cached copy never
// goes stale. It is bounded by bytes (least recently used objects go first)
// and loads each key once however many readers miss it at the same time.
//
// Indexes (a publication's or segment's index, without rows) are kept in a
// part of the budget of their own, an eighth of it: every reader of a
// publication reads its index, however many sections of it are read once
// and never again (a pull catching up over many publications). In one LRU
// those sections evicted the indexes, and every table's pull read every
// publication's index again: with publications of more than readAhead,
// one GET of readAhead bytes per publication per table (measured: 1.5 GB
// of index reads to read 4M rows of 64 tables back through a 32 MiB
// cache). Rows never evict an index, and indexes take at most their part.
//
// A Cache is safe for concurrent use. Objects it hands out are shared: callers
// must not modify them.
type Cache struct {
	max         int64
	notFoundTTL time.Duration
	now         func() time.Time

	mu       sync.Mutex
	lru      *list.List // of *cacheItem, most recently used first: rows and data
	ilru     *list.List // of *cacheItem: indexes (indexEntry)
	items    map[string]*list.Element
	bytes    int64 // of lru's items
	ibytes   int64 // of ilru's items
	flights  map[string]*flight
	notFound map[string]time.Time // key -> until when "not found" is believed
	// forgets counts ForgetMissing calls: a load that started before one
	// may have missed what it announced, so its "not found" is neither
	// remembered nor shared with callers that came after it.
	forgets uint64

	hits, misses, evictions atomic.Int64

	// bufs are the buffers of sections read on their own that nothing
	// refers to any more (readBuf), for the next reads.
	bufs       bufCache
	bufsReused atomic.Int64
	// rows are the []Row slices that went with them, and the slices
	// pullers returned and released.
	rows rowCache
}

// CacheOptions tune a Cache.
type CacheOptions struct {
	// NotFoundTTL remembers that an object does not exist for this long, so
	// readers polling the next log entry of a range share one GET per TTL
	// instead of one each. It delays seeing a new entry by at most the TTL.
	// 0 remembers nothing.
	NotFoundTTL time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// CacheStats are a Cache's counters.
type CacheStats struct {
	// Hits were served without a read of their own: from the cache, from a
	// remembered "not found", or by waiting for another reader's load.
	Hits int64
	// Misses each read the object store once.
	Misses    int64
	Evictions int64
	Bytes     int64 // estimated bytes held
	Objects   int   // objects held
	// ReadBuffersReused counts reads into a recycled buffer (readBuf).
	ReadBuffersReused int64
	// RowSlicesReused counts recycled []Row slices taken again (rows
	// decoded into one, or a Poll's rows returned in one).
	RowSlicesReused int64
}

type cacheItem struct {
	key   string
	val   any
	size  int64
	index bool // in ilru
}

// indexEntry is a cached value that may be an index (its indexOnly says).
type indexEntry interface{ indexOnly() bool }

func isIndex(v any) bool {
	e, ok := v.(indexEntry)
	return ok && e.indexOnly()
}

// indexShare is the part of the budget indexes may take: 1/indexShare.
const indexShare = 8

type flight struct {
	gen     uint64 // Cache.forgets when the load started
	waiters int    // callers waiting for it, each given a reference (readBuf) with the object
	done    chan struct{}
	val     any
	err     error
}

// maxNotFound bounds the remembered "not found" keys.
const maxNotFound = 1 << 16

// NewCache returns a cache holding up to maxBytes of decoded objects.
func NewCache(maxBytes int64, opts ...CacheOptions) *Cache {
	var o CacheOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Cache{max: maxBytes, notFoundTTL: o.NotFoundTTL, now: o.Now, lru: list.New(), ilru: list.New(),
		items: map[string]*list.Element{}, flights: map[string]*flight{}, notFound: map[string]time.Time{}}
	// Buffers back from readers wait here for the next reads: at most a
	// quarter of the cache's budget, 8 to 64 MiB (with half, the
	// benchmark's read-back and its 32 MiB cache allocated 5-15 % fewer
	// bytes; an api-server's 256 MiB cache holds 64 MiB either way).
	c.bufs.limit = min(max(int(maxBytes/4), minBufCache), maxBufCache/4)
	c.rows.limit = c.bufs.limit / 2 // a row's 96 bytes against its ~300 in the buffers
	return c
}

// Stats returns the counters and the current size.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(),
		Bytes: c.bytes + c.ibytes, Objects: len(c.items), ReadBuffersReused: c.bufsReused.Load(), RowSlicesReused: c.rows.reused()}
}

// loader reads and decodes one object; size estimates the memory it holds.
type loader func(ctx context.Context) (val any, size int64, err error)

// get returns the object under key, loading it once for all concurrent
// callers. An object whose rows point into a read buffer (holder) comes
// with a reference to it, which the caller releases when it no longer
// needs the rows (or never: the buffer is then not recycled). A load that
// fails because its caller's context ended is retried by the waiters whose
// context is still live. Only a caller that polls for an object to appear
// (negative) may be answered from a remembered "not found": a reader
// positioning itself must see everything that exists.
func (c *Cache) get(ctx context.Context, key string, negative bool, load loader) (any, error) {
	for {
		c.mu.Lock()
		if el, ok := c.items[key]; ok {
			c.touch(el)
			v := el.Value.(*cacheItem).val
			holdValue(v) // before an eviction can release the cache's
			c.mu.Unlock()
			c.hits.Add(1)
			return v, nil
		}
		if until, ok := c.notFound[key]; ok && negative {
			if c.now().Before(until) {
				c.mu.Unlock()
				c.hits.Add(1)
				return nil, fmt.Errorf("%s: %w", key, objstore.ErrNotFound)
			}
			delete(c.notFound, key)
		}
		if f, ok := c.flights[key]; ok {
			gen := c.forgets
			f.waiters++
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if f.err != nil && isContextErr(f.err) && ctx.Err() == nil {
				continue // the loader's caller gave up; load it ourselves
			}
			if f.gen != gen && errors.Is(f.err, objstore.ErrNotFound) {
				continue // it started before a notice of something new: look again
			}
			c.hits.Add(1)
			return f.val, f.err
		}
		f := &flight{gen: c.forgets, done: make(chan struct{})}
		c.flights[key] = f
		c.mu.Unlock()
		c.misses.Add(1)
		c.run(ctx, key, f, load)
		return f.val, f.err
	}
}

func (c *Cache) run(ctx context.Context, key string, f *flight, load loader) {
	var size int64
	defer func() {
		// A panicking decoder must not leave waiters blocked forever.
		if p := recover(); p != nil {
			f.val, f.err = nil, fmt.Errorf("load %s: panic: %v", key, p)
		}
		c.mu.Lock()
		delete(c.flights, key)
		switch {
		case f.err == nil:
			delete(c.notFound, key)
			// A reference for the caller and one for each waiter; the
			// load's own goes to the cache, or is released when the
			// cache does not keep the object.
			for i := 0; i <= f.waiters; i++ {
				holdValue(f.val)
			}
			if !c.insert(key, f.val, size) {
				releaseValue(f.val)
			}
		case errors.Is(f.err, objstore.ErrNotFound) && c.notFoundTTL > 0 && f.gen == c.forgets:
			if len(c.notFound) >= maxNotFound {
				clear(c.notFound)
			}
			c.notFound[key] = c.now().Add(c.notFoundTTL)
		}
		c.mu.Unlock()
		close(f.done)
	}()
	f.val, size, f.err = load(ctx)
}

// insert adds an object and evicts the least recently used ones over the
// budget (releasing the cache's references to their read buffers); it
// reports whether it kept the object: not one larger than the whole
// budget. An index larger than the indexes' part is kept with the rows.
// Called with mu.
func (c *Cache) insert(key string, val any, size int64) bool {
	if size > c.max {
		return false
	}
	index := isIndex(val) && size <= c.max/indexShare
	if el, ok := c.items[key]; ok { // raced with another load of the same key
		c.touch(el)
		return false
	}
	it := &cacheItem{key: key, val: val, size: size, index: index}
	if index {
		c.items[key] = c.ilru.PushFront(it)
		c.ibytes += size
		for c.ibytes > c.max/indexShare {
			c.evict(c.ilru.Back())
		}
	} else {
		c.items[key] = c.lru.PushFront(it)
		c.bytes += size
	}
	for c.bytes+c.ibytes > c.max && c.lru.Len() > 0 {
		c.evict(c.lru.Back())
	}
	return true
}

// touch makes el its list's most recently used item. Called with mu.
func (c *Cache) touch(el *list.Element) {
	if el.Value.(*cacheItem).index {
		c.ilru.MoveToFront(el)
	} else {
		c.lru.MoveToFront(el)
	}
}

// evict drops el. Called with mu.
func (c *Cache) evict(el *list.Element) {
	it := el.Value.(*cacheItem)
	if it.index {
		c.ilru.Remove(el)
		c.ibytes -= it.size
	} else {
		c.lru.Remove(el)
		c.bytes -= it.size
	}
	delete(c.items, it.key)
	c.evictions.Add(1)
	releaseValue(it.val)
}

// put adds a value that holds no read buffer (no reference to give out)
// outside a load: what a load read beyond its own object.
func (c *Cache) put(key string, val any, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.insert(key, val, size)
}

// peek returns the value under key if the cache holds it, without loading
// it; for values that hold no read buffer (see put).
func (c *Cache) peek(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.touch(el)
	c.hits.Add(1)
	return el.Value.(*cacheItem).val, true
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// ForgetMissing drops the remembered "not found" of every key under prefix:
// a notice said something new was published there, so the next poll must
// read the store instead of believing it is still missing. It costs a scan
// of the remembered keys (those of the last NotFoundTTL).
func (c *Cache) ForgetMissing(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgets++
	now := c.now()
	for k, until := range c.notFound {
		// Expired ones go too: the map then holds one TTL's worth of keys,
		// so notices stay cheap however many arrive.
		if strings.HasPrefix(k, prefix) || !now.Before(until) {
			delete(c.notFound, k)
		}
	}
}
