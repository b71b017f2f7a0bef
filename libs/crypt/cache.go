package crypt

import (
	"container/list"
	"sync"
	"time"
)

// cache is a bounded LRU map whose entries expire ttl after they were
// loaded (ttl <= 0: never). getOrLoad runs one load per key at a time, so
// a burst of reads after an expiry makes one KMS call, not one each.
type cache[V any] struct {
	mu       sync.Mutex
	max      int
	ttl      time.Duration
	now      func() time.Time
	ll       *list.List // front = most recently used
	items    map[string]*list.Element
	inflight map[string]*loadCall[V]
}

type cacheEntry[V any] struct {
	key    string
	val    V
	loaded time.Time
}

type loadCall[V any] struct {
	done chan struct{}
	val  V
	err  error
}

func newCache[V any](maxEntries int, ttl time.Duration, now func() time.Time) *cache[V] {
	return &cache[V]{max: max(1, maxEntries), ttl: ttl, now: now, ll: list.New(),
		items: map[string]*list.Element{}, inflight: map[string]*loadCall[V]{}}
}

// get returns key's live entry.
func (c *cache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(key)
}

func (c *cache[V]) getLocked(key string) (V, bool) {
	var zero V
	el, ok := c.items[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*cacheEntry[V])
	if c.ttl > 0 && c.now().Sub(e.loaded) >= c.ttl {
		c.ll.Remove(el)
		delete(c.items, key)
		return zero, false
	}
	c.ll.MoveToFront(el)
	return e.val, true
}

// put stores val for key, evicting the least recently used beyond max.
func (c *cache[V]) put(key string, val V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(key, val)
}

func (c *cache[V]) putLocked(key string, val V) {
	e := &cacheEntry[V]{key: key, val: val, loaded: c.now()}
	if el, ok := c.items[key]; ok {
		el.Value = e
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(e)
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry[V]).key)
	}
}

// remove drops key.
func (c *cache[V]) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.ll.Remove(el)
		delete(c.items, key)
	}
}

// getOrLoad returns key's live entry or loads, stores and returns it;
// concurrent callers for one key share one load. Failed loads are not
// stored.
func (c *cache[V]) getOrLoad(key string, load func() (V, error)) (V, error) {
	c.mu.Lock()
	if v, ok := c.getLocked(key); ok {
		c.mu.Unlock()
		return v, nil
	}
	if call, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		<-call.done
		return call.val, call.err
	}
	call := &loadCall[V]{done: make(chan struct{})}
	c.inflight[key] = call
	c.mu.Unlock()

	call.val, call.err = load()
	c.mu.Lock()
	delete(c.inflight, key)
	if call.err == nil {
		c.putLocked(key, call.val)
	}
	c.mu.Unlock()
	close(call.done)
	return call.val, call.err
}
