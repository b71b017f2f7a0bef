package sortbuf

import (
	"bytes"
	"math"
	"sync"

	"github.com/google/btree"
)

// Memory is an in-memory Store with the same behaviour as Engine (it passes
// the same contract suite), for unit tests of callers. Rows are kept in a
// B-tree per range ordered by the same key encoding Engine uses.
type Memory struct {
	mu      sync.Mutex
	buffers map[uint64]*memBuffer
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{buffers: make(map[uint64]*memBuffer)} }

func (m *Memory) Buffer(uid uint64) Buffer {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.buffers[uid]; ok {
		return b
	}
	b := &memBuffer{m: m, uid: uid, rows: btree.NewG(16, lessEntry), stats: newLiveStats()}
	b.spill.items = btree.NewG(16, lessEntry)
	m.buffers[uid] = b
	return b
}

// entry is a stored key and value, both in Engine's encoding.
type entry struct {
	k []byte
	v []byte
}

func lessEntry(a, b entry) bool { return bytes.Compare(a.k, b.k) < 0 }

type memBuffer struct {
	m       *Memory
	uid     uint64
	mu      sync.Mutex
	rows    *btree.BTreeG[entry]
	floor   uint64
	dropped bool
	stats   *liveStats
	spill   memSpill
}

func (b *memBuffer) UID() uint64 { return b.uid }

func (b *memBuffer) Floor() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.floor
}

func (b *memBuffer) Stats() BufferStats {
	st := b.stats.snapshot()
	st.Floor = b.Floor()
	return st
}

func (b *memBuffer) NewBatch() Batch { return &memBatch{b: b} }

func (b *memBuffer) Add(rows ...Row) error {
	batch := b.NewBatch()
	for _, r := range rows {
		if err := batch.Add(r); err != nil {
			return err
		}
	}
	return batch.Commit()
}

func (b *memBuffer) Scan(upTo uint64, fn func(Row) error) error {
	b.mu.Lock()
	if b.dropped {
		b.mu.Unlock()
		return ErrClosed
	}
	floor := b.floor
	if upTo <= floor {
		b.mu.Unlock()
		return nil
	}
	// A consistent view, like a Pebble iterator: copy the entries out (the
	// tree is copy-on-write, so Clone is cheap) and call fn unlocked.
	view := b.rows.Clone()
	b.mu.Unlock()
	lo := entry{k: rowsLowerBound(nil, b.uid, floor+1)}
	var err error
	view.AscendGreaterOrEqual(lo, func(e entry) bool {
		var r Row
		var ok bool
		r.CommitTs, r.StartTs, r.Key, ok = decodeRowKey(e.k)
		if !ok || r.CommitTs > upTo {
			return false
		}
		if err = decodeValue(e.v, &r); err != nil {
			return false
		}
		err = fn(r)
		return err == nil
	})
	return err
}

func (b *memBuffer) Has(commitTs, startTs uint64, key []byte) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped {
		return false, ErrClosed
	}
	if commitTs <= b.floor {
		return false, nil
	}
	_, ok := b.rows.Get(entry{k: appendRowKey(nil, b.uid, commitTs, startTs, key)})
	return ok, nil
}

func (b *memBuffer) DeleteUpTo(ts uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped {
		return ErrClosed
	}
	if ts <= b.floor {
		return nil
	}
	b.floor = ts
	b.stats.deleteUpTo(ts)
	for {
		min, ok := b.rows.Min()
		if !ok {
			return nil
		}
		if commitTsOf(min.k) > ts {
			return nil
		}
		b.rows.DeleteMin()
	}
}

func (b *memBuffer) Drop() error {
	b.mu.Lock()
	if b.dropped {
		b.mu.Unlock()
		return ErrClosed
	}
	b.dropped = true
	b.rows.Clear(false)
	b.mu.Unlock()
	b.spill.drop()
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	if b.m.buffers[b.uid] == b {
		delete(b.m.buffers, b.uid)
	}
	return nil
}

func (b *memBuffer) Spill() SpillStore { return &b.spill }

// memBatch holds encoded rows until Commit, like a Pebble batch.
type memBatch struct {
	b       *memBuffer
	entries []entry
	minTs   uint64
	bytes   int
	delta   statDelta
	closed  bool
}

func (mb *memBatch) Len() int   { return len(mb.entries) }
func (mb *memBatch) Bytes() int { return mb.bytes }

func (mb *memBatch) Add(r Row) error {
	if mb.closed {
		return ErrClosed
	}
	if err := validateRow(&r); err != nil {
		return err
	}
	if r.CommitTs <= mb.b.Floor() {
		mb.delta.late++
		return nil
	}
	if mb.bytes+r.Size() > MaxBatchBytes {
		return ErrBatchFull
	}
	if len(mb.entries) == 0 {
		mb.minTs = math.MaxUint64
	}
	mb.entries = append(mb.entries, entry{k: appendRowKey(nil, mb.b.uid, r.CommitTs, r.StartTs, r.Key), v: appendValue(nil, &r)})
	mb.minTs = min(mb.minTs, r.CommitTs)
	mb.bytes += r.Size()
	mb.delta.add(r.CommitTs, r.Size())
	return nil
}

func (mb *memBatch) Commit() error {
	if mb.closed {
		return ErrClosed
	}
	b := mb.b
	b.mu.Lock()
	if b.dropped {
		b.mu.Unlock()
		return ErrClosed
	}
	for _, e := range mb.entries {
		// Rows the floor passed since Add are dropped, as Engine deletes them.
		if commitTsOf(e.k) > b.floor {
			b.rows.ReplaceOrInsert(e)
		}
	}
	b.mu.Unlock()
	b.stats.apply(&mb.delta)
	mb.delta.reset()
	mb.entries = mb.entries[:0]
	mb.bytes = 0
	return nil
}

func commitTsOf(k []byte) uint64 {
	c, _, _, _ := decodeRowKey(k)
	return c
}

func (mb *memBatch) Close() { mb.closed = true; mb.entries = nil }
