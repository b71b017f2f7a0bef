package sortbuf

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// gcQueue holds one shard's range deletions that are decided but not yet
// written. The rows they cover are already invisible (scans start above a
// buffer's floor and adds below it are ignored), so writing the tombstones
// late is safe; writing them together is what keeps scans fast: each
// tombstone added to a memtable invalidates the memtable's fragmented
// tombstone cache, and the next iterator on the shard rebuilds it from every
// tombstone in the memtable.
type gcQueue struct {
	// mu also serialises writing the tombstones with Drop, so that a queued
	// deletion of a dropped uid can never land after a later incarnation of
	// the uid wrote rows.
	mu      sync.Mutex
	pending map[uint64]uint64 // uid -> delete rows with commit_ts <= this
	last    time.Time
	// npending mirrors len(pending) and written counts bytes committed to
	// the shard since the queue was last written, both readable without mu
	// from the write path: once a quarter memtable has been written, the
	// queue is written too, so that the rows it covers die in the memtable
	// instead of being flushed to an sstable first.
	npending atomic.Int64
	written  atomic.Int64
}

func newGCQueue() gcQueue { return gcQueue{pending: make(map[uint64]uint64)} }

// add queues "delete uid's rows up to ts" and writes the queue if it is due.
func (q *gcQueue) add(db *pebble.DB, cfg *Config, uid, ts uint64, now time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending[uid] = max(q.pending[uid], ts)
	q.npending.Store(int64(len(q.pending)))
	if len(q.pending) < cfg.GCMaxPending && now.Sub(q.last) < cfg.GCInterval &&
		q.written.Load() < int64(cfg.MemTableSize/4) {
		return nil
	}
	return q.flushLocked(db, now)
}

// wrote accounts n bytes committed to the shard and writes the queue if a
// quarter memtable went by since it was last written.
func (q *gcQueue) wrote(db *pebble.DB, cfg *Config, n int, now time.Time) error {
	if q.written.Add(int64(n)) < int64(cfg.MemTableSize/4) || q.npending.Load() == 0 {
		return nil
	}
	return q.flush(db, now)
}

func (q *gcQueue) flush(db *pebble.DB, now time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.flushLocked(db, now)
}

func (q *gcQueue) flushLocked(db *pebble.DB, now time.Time) error {
	q.last = now
	q.written.Store(0)
	if len(q.pending) == 0 {
		return nil
	}
	b := db.NewBatch()
	defer b.Close()
	var start, end []byte
	for uid, ts := range q.pending {
		start = rowsLowerBound(start[:0], uid, 0)
		end = rowsUpperBound(end[:0], uid, ts)
		if err := b.DeleteRange(start, end, nil); err != nil {
			return fmt.Errorf("sortbuf: queue range deletion: %w", err)
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("sortbuf: write range deletions: %w", err)
	}
	clear(q.pending)
	q.npending.Store(0)
	return nil
}

// drop deletes everything of uid at once, dropping its queued deletion.
func (q *gcQueue) drop(db *pebble.DB, uid uint64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.pending, uid)
	q.npending.Store(int64(len(q.pending)))
	start := appendPrefix(nil, uid, 0)
	end := appendPrefix(nil, uid, kindEnd)
	if err := db.DeleteRange(start, end, pebble.NoSync); err != nil {
		return fmt.Errorf("sortbuf: drop range %d: %w", uid, err)
	}
	return nil
}

func (q *gcQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}
