package sortbuf

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// DefaultMemoryBudget is the memory budget of a sorter's rows when none is
// configured.
const DefaultMemoryBudget = 512 << 20

// spillBatchBytes is how much a spill writes to the disk store per batch.
const spillBatchBytes = 32 << 20

// MemoryFirst is the production Store: every range's committed rows stay in
// memory, sorted, under one byte budget for the whole process, and are
// scanned for a flush straight from memory. A disk Store (the Pebble
// Engine) is the spill space: when the rows in memory pass the budget, the
// ranges holding the most are moved there whole, largest first, until
// memory is an eighth below the budget; the transaction matchers' spill
// (Buffer.Spill) always goes to it. A range's later rows go to memory
// again, and its scans merge both (a row in memory replaces one of the same
// identity on disk: it was added later).
//
// Whole ranges, largest first, rather than every range's oldest rows:
// a flush reads a range's oldest rows next, so moving those out would
// write rows to disk only to read them back at once, while the range
// holding the most is the one whose watermark is held back (by a long
// transaction, a slow store or a takeover), whose rows will wait longest;
// and one range's rows are one sorted run, a single cheap Pebble batch.
//
// Memory is counted as the arena chunks holding the rows' bytes plus the
// row index (48 bytes a row); rows being scanned cannot move, so memory can
// pass the budget by what ranges are scanning and by uncommitted batches.
type MemoryFirst struct {
	disk   Store // nil: memory only, unbounded (NewMemory)
	budget int64
	used   atomic.Int64

	mu      sync.Mutex
	buffers map[uint64]*mfBuffer
	chunks  *chunkCache

	spillMu      sync.Mutex // one spill at a time
	spills       atomic.Int64
	spilledRows  atomic.Int64
	spilledBytes atomic.Int64
}

var _ Store = (*MemoryFirst)(nil)

// NewMemoryFirst returns a memory-first store of budget bytes that spills
// to disk (an *Engine in production). The caller closes disk after use.
func NewMemoryFirst(disk Store, budget int64) (*MemoryFirst, error) {
	if disk == nil {
		return nil, errors.New("sortbuf: a memory-first store needs a disk store to spill to")
	}
	if budget < 0 {
		return nil, fmt.Errorf("sortbuf: memory budget must not be negative, got %d", budget)
	}
	return newMemoryFirst(disk, budget), nil
}

func newMemoryFirst(disk Store, budget int64) *MemoryFirst {
	s := &MemoryFirst{disk: disk, budget: budget, buffers: make(map[uint64]*mfBuffer)}
	s.chunks = &chunkCache{used: &s.used, budget: budget, arena: arena}
	return s
}

// NewMemory returns a store that keeps everything in memory without bound,
// matcher spill included: for tests of callers and small tools.
func NewMemory() *MemoryFirst { return newMemoryFirst(nil, math.MaxInt64) }

func (s *MemoryFirst) Buffer(uid uint64) Buffer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.buffers[uid]; ok {
		return b
	}
	b := &mfBuffer{s: s, uid: uid, stats: newLiveStats()}
	b.mem.cache = s.chunks
	if s.disk != nil {
		b.disk = s.disk.Buffer(uid)
	} else {
		b.mspill = newMemSpill()
	}
	s.buffers[uid] = b
	return b
}

func (s *MemoryFirst) forget(b *mfBuffer) { forget(&s.mu, s.buffers, b.uid, b) }

// MemoryMetrics is a summary of a MemoryFirst store.
type MemoryMetrics struct {
	// Budget, Used and Cached (free arena chunks kept for reuse, within the
	// budget) in bytes.
	Budget, Used, Cached int64
	Buffers              int // ranges with a live buffer
	OnDisk               int // of them, with rows on disk
	// Spills counts ranges moved to disk, with their rows and Row.Size
	// bytes.
	Spills, SpilledRows, SpilledBytes int64
}

// Bytes reads the store's byte counters — rows in memory, chunks and
// indexes cached for reuse, the budget — without visiting its buffers:
// cheap enough for every ingest request.
func (s *MemoryFirst) Bytes() (used, cached, budget int64) {
	return s.used.Load(), s.chunks.cached.Load(), s.budget
}

// Metrics reads the store's counters (it visits every buffer: for a
// metrics scrape, not a hot path).
func (s *MemoryFirst) Metrics() MemoryMetrics {
	m := MemoryMetrics{Budget: s.budget, Used: s.used.Load(), Cached: s.chunks.cached.Load(), Spills: s.spills.Load(),
		SpilledRows: s.spilledRows.Load(), SpilledBytes: s.spilledBytes.Load()}
	s.mu.Lock()
	bufs := make([]*mfBuffer, 0, len(s.buffers))
	for _, b := range s.buffers {
		bufs = append(bufs, b)
	}
	s.mu.Unlock()
	m.Buffers = len(bufs)
	for _, b := range bufs {
		b.mu.Lock()
		if b.diskMax != 0 {
			m.OnDisk++
		}
		b.mu.Unlock()
	}
	return m
}

// maybeSpill moves the largest ranges to disk while memory is over budget.
// A caller finding a spill under way goes on: the spill frees memory for
// it too.
func (s *MemoryFirst) maybeSpill() error {
	s.chunks.trim() // memory in use comes first
	if s.used.Load() <= s.budget || s.disk == nil || !s.spillMu.TryLock() {
		return nil
	}
	defer s.spillMu.Unlock()
	type cand struct {
		b     *mfBuffer
		bytes int64
	}
	s.mu.Lock()
	cands := make([]cand, 0, len(s.buffers))
	for _, b := range s.buffers {
		if n := b.charged.Load(); n > 0 {
			cands = append(cands, cand{b, n})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(b.bytes, a.bytes) })
	low := s.budget - s.budget/8
	for _, c := range cands {
		if s.used.Load() <= low {
			break
		}
		if err := c.b.spillRows(); err != nil && !errors.Is(err, ErrClosed) {
			return fmt.Errorf("sortbuf: spill range %d to disk: %w", c.b.uid, err)
		}
	}
	return nil
}

// mfBuffer is one range of a MemoryFirst store. Its range's goroutine uses
// it; mu guards it against a spill started by another range's commit.
type mfBuffer struct {
	s     *MemoryFirst
	uid   uint64
	floor atomic.Uint64
	stats *liveStats

	mu      sync.Mutex
	dropped bool
	mem     memRows
	// charged mirrors mem.charged() (what the store's used counts for
	// this buffer), readable without mu for choosing what to spill.
	charged atomic.Int64
	disk    Buffer // the range's buffer in the disk store; nil without one
	// diskMax is the highest commit_ts spilled to disk and not yet
	// deleted; 0 when the disk holds none of the range's rows.
	diskMax uint64
	mspill  *memSpill // the matcher's spill without a disk store
}

var _ Buffer = (*mfBuffer)(nil)

func (b *mfBuffer) UID() uint64   { return b.uid }
func (b *mfBuffer) Floor() uint64 { return b.floor.Load() }

func (b *mfBuffer) Stats() BufferStats {
	st := b.stats.snapshot()
	st.Floor = b.floor.Load()
	return st
}

// account passes the change of the buffer's memory on to the store; with
// mu held.
func (b *mfBuffer) account() {
	n := b.mem.charged()
	if d := n - b.charged.Load(); d != 0 {
		b.charged.Store(n)
		b.s.used.Add(d)
	}
}

func (b *mfBuffer) Add(rows ...Row) error { return addRows(b, rows) }

var _ Sizer = (*mfBuffer)(nil)

// SizeUpTo sums the rows of Scan(upTo) held in memory; not ok when some of
// the range's rows are on disk.
func (b *mfBuffer) SizeUpTo(upTo uint64) (rows int, bytes int64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped || b.diskMax != 0 {
		return 0, 0, false
	}
	if upTo <= b.floor.Load() {
		return 0, 0, true
	}
	b.mem.normalize()
	b.account()
	view := b.mem.view(upTo)
	for i := range view {
		r := &view[i]
		bytes += int64(r.klen) + int64(r.vlen) + int64(r.olen)
	}
	return len(view), bytes, true
}

func (b *mfBuffer) Scan(upTo uint64, fn func(Row) error) error {
	b.mu.Lock()
	if b.dropped {
		b.mu.Unlock()
		return ErrClosed
	}
	floor := b.floor.Load()
	if upTo <= floor {
		b.mu.Unlock()
		return nil
	}
	b.mem.normalize()
	b.account()
	view := b.mem.view(upTo)
	onDisk := b.diskMax != 0
	// While shared, the view's rows and chunks stay as they are and no
	// spill touches the buffer, so fn may even use the buffer.
	b.mem.shared++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.mem.shared--
		b.mu.Unlock()
	}()
	i := 0
	if onDisk {
		err := b.disk.Scan(upTo, func(d Row) error {
			for i < len(view) {
				c := compareIdent(&view[i], d.CommitTs, d.StartTs, d.Key)
				if c > 0 {
					break
				}
				if err := fn(view[i].row()); err != nil {
					return err
				}
				i++
				if c == 0 {
					return nil // the row in memory replaced this one
				}
			}
			return fn(d)
		})
		if err != nil {
			return err
		}
	}
	for ; i < len(view); i++ {
		if err := fn(view[i].row()); err != nil {
			return err
		}
	}
	return nil
}

func (b *mfBuffer) Has(commitTs, startTs uint64, key []byte) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped {
		return false, ErrClosed
	}
	if commitTs <= b.floor.Load() {
		return false, nil
	}
	b.mem.normalize()
	b.account()
	if b.mem.has(commitTs, startTs, key) {
		return true, nil
	}
	if b.diskMax != 0 && commitTs <= b.diskMax {
		return b.disk.Has(commitTs, startTs, key)
	}
	return false, nil
}

func (b *mfBuffer) DeleteUpTo(ts uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped {
		return ErrClosed
	}
	if ts <= b.floor.Load() {
		return nil
	}
	b.floor.Store(ts)
	b.stats.deleteUpTo(ts)
	b.mem.deleteUpTo(ts)
	b.account()
	b.s.chunks.trim() // less in use: the cache holds less
	if b.diskMax != 0 {
		if err := b.disk.DeleteUpTo(ts); err != nil {
			return err
		}
		if ts >= b.diskMax {
			b.diskMax = 0
		}
	}
	return nil
}

func (b *mfBuffer) Drop() error {
	b.mu.Lock()
	if b.dropped {
		b.mu.Unlock()
		return ErrClosed
	}
	b.dropped = true
	b.mem.clearAll()
	b.account()
	b.mu.Unlock()
	b.s.forget(b)
	if b.disk != nil {
		return b.disk.Drop()
	}
	b.mspill.drop()
	return nil
}

func (b *mfBuffer) Spill() SpillStore {
	if b.disk != nil {
		return b.disk.Spill()
	}
	return b.mspill
}

// spillRows moves the buffer's rows in memory to disk, unless a scan is
// reading them.
func (b *mfBuffer) spillRows() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped || b.mem.shared > 0 || b.mem.count() == 0 {
		return nil
	}
	b.mem.normalize()
	batch := b.disk.NewBatch()
	defer batch.Close()
	var rows, bytes int64
	for i := b.mem.lo; i < len(b.mem.rows); i++ {
		r := b.mem.rows[i].row()
		if err := batch.Add(r); err != nil {
			return err
		}
		rows++
		bytes += int64(r.Size())
		if i+1 == len(b.mem.rows) || batch.Bytes() >= spillBatchBytes {
			if err := batch.Commit(); err != nil {
				return err
			}
			// What is on disk now is visible to scans (and deleted by
			// DeleteUpTo); the rows in memory still replace it.
			b.diskMax = max(b.diskMax, r.CommitTs)
		}
	}
	b.mem.clearAll()
	b.account()
	b.s.spills.Add(1)
	b.s.spilledRows.Add(rows)
	b.s.spilledBytes.Add(bytes)
	return nil
}

func (b *mfBuffer) NewBatch() Batch { return &mfBatch{b: b} }

// mfBatch copies rows into the buffer's arena as they are added and makes
// them visible at Commit.
type mfBatch struct {
	b       *mfBuffer
	pending []memRow
	bytes   int
	delta   statDelta
	closed  bool
}

func (mb *mfBatch) Len() int   { return len(mb.pending) }
func (mb *mfBatch) Bytes() int { return mb.bytes }

func (mb *mfBatch) Add(r Row) error {
	if mb.closed {
		return ErrClosed
	}
	if err := validateRow(&r); err != nil {
		return err
	}
	b := mb.b
	if r.CommitTs <= b.floor.Load() {
		mb.delta.late++
		return nil
	}
	if mb.bytes+r.Size() > MaxBatchBytes {
		return ErrBatchFull
	}
	b.mu.Lock()
	if b.dropped {
		b.mu.Unlock()
		return ErrClosed
	}
	mr := b.mem.store(&r)
	b.account()
	b.mu.Unlock()
	mb.pending = append(mb.pending, mr)
	mb.bytes += r.Size()
	mb.delta.add(r.CommitTs, r.Size())
	return nil
}

func (mb *mfBatch) Commit() error {
	if mb.closed {
		return ErrClosed
	}
	b := mb.b
	b.mu.Lock()
	if b.dropped {
		b.mu.Unlock()
		return ErrClosed
	}
	floor := b.floor.Load()
	for i := range mb.pending {
		// Rows the floor passed since Add are dropped, as if deleted.
		if mb.pending[i].commitTs > floor {
			b.mem.insert(mb.pending[i])
		} else {
			b.mem.release(&mb.pending[i])
		}
	}
	b.mem.tidy()
	b.account()
	b.mu.Unlock()
	clear(mb.pending)
	mb.pending = mb.pending[:0]
	mb.bytes = 0
	b.stats.apply(&mb.delta)
	mb.delta.reset()
	return b.s.maybeSpill()
}

func (mb *mfBatch) Close() {
	if mb.closed {
		return
	}
	mb.closed = true
	if len(mb.pending) > 0 {
		b := mb.b
		b.mu.Lock()
		for i := range mb.pending {
			b.mem.release(&mb.pending[i])
		}
		b.mem.tidy()
		b.account()
		b.mu.Unlock()
	}
	mb.pending = nil
}
