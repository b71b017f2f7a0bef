package sortbuf

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
)

// pebbleBuffer is one range's namespace in its shard: the keys starting
// with its uid. It holds no Pebble resources of its own.
type pebbleBuffer struct {
	e       *Engine
	s       *shard
	uid     uint64
	floor   atomic.Uint64
	dropped atomic.Bool
	stats   *liveStats
	// key is scratch space for Has; a buffer is used by one goroutine at a
	// time. (Scan allocates its bounds: its iterator keeps them while the
	// callback runs, and the callback may use the buffer.)
	key []byte
}

var _ Buffer = (*pebbleBuffer)(nil)

func newPebbleBuffer(e *Engine, uid uint64) *pebbleBuffer {
	return &pebbleBuffer{e: e, s: e.shardOf(uid), uid: uid, stats: newLiveStats()}
}

func (b *pebbleBuffer) UID() uint64   { return b.uid }
func (b *pebbleBuffer) Floor() uint64 { return b.floor.Load() }

func (b *pebbleBuffer) Stats() BufferStats {
	st := b.stats.snapshot()
	st.Floor = b.floor.Load()
	return st
}

// enter checks the buffer and engine are usable and registers an
// operation; end it with b.e.release.
func (b *pebbleBuffer) enter() error {
	if b.dropped.Load() {
		return ErrClosed
	}
	return b.e.acquire()
}

func (b *pebbleBuffer) Add(rows ...Row) error { return addRows(b, rows) }

func (b *pebbleBuffer) Scan(upTo uint64, fn func(Row) error) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.e.release()
	floor := b.floor.Load()
	if upTo <= floor {
		return nil
	}
	bounds := make([]byte, 0, 2*(prefixLen+8))
	bounds = rowsLowerBound(bounds, b.uid, floor+1)
	lo := bounds[:len(bounds):len(bounds)]
	hi := rowsUpperBound(bounds[len(bounds):], b.uid, upTo)
	opts := pebble.IterOptions{LowerBound: lo, UpperBound: hi}
	var filter sstable.BlockIntervalFilter
	if rowFilter(&filter, floor+1, upTo) {
		opts.PointKeyFilters = []pebble.BlockPropertyFilter{&filter}
	}
	it, err := b.s.db.NewIter(&opts)
	if err != nil {
		return fmt.Errorf("sortbuf: scan range %d: %w", b.uid, err)
	}
	var row Row
	for ok := it.First(); ok; ok = it.Next() {
		var kok bool
		row.CommitTs, row.StartTs, row.Key, kok = decodeRowKey(it.Key())
		if !kok {
			err = fmt.Errorf("%w: row key %x", errCorrupt, it.Key())
			break
		}
		var v []byte
		if v, err = it.ValueAndErr(); err != nil {
			break
		}
		if err = decodeValue(v, &row); err != nil {
			break
		}
		if err = fn(row); err != nil {
			return errors.Join(err, it.Close())
		}
	}
	if err == nil {
		err = it.Error()
	}
	if cerr := it.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sortbuf: scan range %d: %w", b.uid, err)
	}
	return nil
}

func (b *pebbleBuffer) Has(commitTs, startTs uint64, key []byte) (bool, error) {
	if err := b.enter(); err != nil {
		return false, err
	}
	defer b.e.release()
	if commitTs <= b.floor.Load() {
		return false, nil
	}
	b.key = appendRowKey(b.key[:0], b.uid, commitTs, startTs, key)
	return get(b.s.db, b.key, nil)
}

// get reports whether k exists, appending its value to dst if dst is not
// nil.
func get(db *pebble.DB, k []byte, dst *[]byte) (bool, error) {
	v, closer, err := db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if dst != nil {
		*dst = append(*dst, v...)
	}
	return true, closer.Close()
}

func (b *pebbleBuffer) DeleteUpTo(ts uint64) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.e.release()
	if ts <= b.floor.Load() {
		return nil
	}
	// Raise the floor first: from here on the rows are invisible and adds
	// below it are ignored, whenever the tombstone itself is written.
	b.floor.Store(ts)
	b.stats.deleteUpTo(ts)
	return b.s.gc.add(b.s.db, &b.e.cfg, b.uid, ts, b.e.now())
}

func (b *pebbleBuffer) Drop() error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.e.release()
	b.dropped.Store(true)
	b.e.forget(b)
	return b.s.gc.drop(b.s.db, b.uid)
}

func (b *pebbleBuffer) Spill() SpillStore { return &pebbleSpill{b: b} }
