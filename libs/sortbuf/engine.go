package sortbuf

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// ErrClosed is returned by every operation after Engine.Close, and by a
// Buffer after its Drop.
var ErrClosed = errors.New("sortbuf: closed")

// Engine is the Pebble-backed Store: a fixed set of Pebble instances
// (shards) shared by every range of the process.
type Engine struct {
	cfg    Config
	cache  *pebble.Cache
	files  *pebble.FileCache
	shards []*shard
	now    func() time.Time

	// Pebble panics when used after Close, so every operation that touches
	// it is counted in inflight, and Close waits for the count to drop to
	// zero. Not a RWMutex: an operation nested in a Scan callback would
	// deadlock against a waiting Close.
	inflight atomic.Int64
	closed   atomic.Bool
	closeMu  sync.Mutex
	drained  *sync.Cond

	bufMu   sync.Mutex
	buffers map[uint64]*pebbleBuffer
}

type shard struct {
	db *pebble.DB
	gc gcQueue
}

var _ Store = (*Engine)(nil)

// Open wipes dir (see prepareDir) and opens cfg.Shards empty Pebble
// instances in it. Nothing survives a restart: a range's rows come back from
// its snapshot in object storage.
func Open(dir string, cfg Config) (*Engine, error) {
	return open(dir, cfg, time.Now)
}

func open(dir string, cfg Config, now func() time.Time) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := prepareDir(dir); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	e := &Engine{
		cfg:     cfg,
		cache:   pebble.NewCache(cfg.BlockCacheSize),
		files:   pebble.NewFileCache(min(cfg.Shards*4, 64), pebble.FileCacheSize(cfg.MaxOpenFiles)),
		now:     now,
		buffers: make(map[uint64]*pebbleBuffer),
	}
	e.drained = sync.NewCond(&e.closeMu)
	for i := 0; i < cfg.Shards; i++ {
		path := filepath.Join(dir, fmt.Sprintf("shard-%03d", i))
		db, err := pebble.Open(path, cfg.pebbleOptions(e.cache, e.files, slogLogger{log.With("shard", i)}))
		if err != nil {
			e.closeShards()
			return nil, fmt.Errorf("sortbuf: open shard %s: %w", path, err)
		}
		e.shards = append(e.shards, &shard{db: db, gc: newGCQueue()})
	}
	return e, nil
}

// Close closes every shard; it waits for running operations (so it must
// not be called from a Scan or ForEach callback). Buffers handed out before
// return ErrClosed afterwards.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.closeMu.Lock()
	for e.inflight.Load() != 0 {
		e.drained.Wait()
	}
	e.closeMu.Unlock()
	return e.closeShards()
}

func (e *Engine) closeShards() error {
	var errs []error
	for _, s := range e.shards {
		if err := s.db.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	// The caches are reference counted: the shards dropped theirs on Close.
	e.cache.Unref()
	e.files.Unref()
	return errors.Join(errs...)
}

// Buffer returns the buffer of range uid (shard uid % Shards), creating it
// on first use. Its cost is a small struct: nothing per range is opened.
func (e *Engine) Buffer(uid uint64) Buffer {
	e.bufMu.Lock()
	defer e.bufMu.Unlock()
	if b, ok := e.buffers[uid]; ok {
		return b
	}
	b := newPebbleBuffer(e, uid)
	e.buffers[uid] = b
	return b
}

func (e *Engine) forget(b *pebbleBuffer) { forget(&e.bufMu, e.buffers, b.uid, b) }

// forget removes a dropped buffer from its store's map, unless the uid
// already has a new one.
func forget[B comparable](mu *sync.Mutex, buffers map[uint64]B, uid uint64, b B) {
	mu.Lock()
	defer mu.Unlock()
	if buffers[uid] == b {
		delete(buffers, uid)
	}
}

func (e *Engine) shardOf(uid uint64) *shard {
	return e.shards[uid%uint64(len(e.shards))]
}

// acquire registers one Pebble operation; the caller must call release
// when it returns nil.
func (e *Engine) acquire() error {
	e.inflight.Add(1)
	if e.closed.Load() {
		e.release()
		return ErrClosed
	}
	return nil
}

func (e *Engine) release() {
	if e.inflight.Add(-1) == 0 && e.closed.Load() {
		e.closeMu.Lock()
		e.drained.Broadcast()
		e.closeMu.Unlock()
	}
}

// FlushDeletes writes every range tombstone still waiting in the GC queues
// (see Config.GCInterval). Rows they cover are already invisible; this only
// lets Pebble reclaim their space sooner.
func (e *Engine) FlushDeletes() error {
	if err := e.acquire(); err != nil {
		return err
	}
	defer e.release()
	var errs []error
	for _, s := range e.shards {
		errs = append(errs, s.gc.flush(s.db, e.now()))
	}
	return errors.Join(errs...)
}
