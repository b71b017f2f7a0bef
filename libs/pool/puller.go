package pool

import (
	"container/heap"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// privateCacheBytes bounds the cache of a puller given none: its ranges
// share each publication of their group.
const privateCacheBytes = 32 << 20

// Filter selects the rows a puller returns (for example the record keys of
// one table).
type Filter func(key []byte) bool

// Puller merges the ranges that cover a key span into one stream in commit
// order: it returns rows only up to the smallest watermark of the ranges it
// follows, and follows a sealed range into its successors.
type Puller struct {
	store      objstore.Store
	tenant     uint64
	start, end []byte
	filter     Filter
	from       uint64
	ranges     map[uint64]*followed
	seen       map[uint64]bool // ranges ever opened
	resolved   uint64
	opts       ReadOptions
	// returned are the read buffers of the chunks whose rows have all
	// been returned, held until Release.
	returned []*readBuf
	// outs are the slices Poll returned since the last Release: recycled
	// then (into the cache's, when there is one).
	outs [][]Row
}

type followed struct {
	r *RangeReader
	// queue holds the rows not yet returned, in order: the wanted rows of
	// the chunks read, each chunk's own slice (never written through; none
	// empty), so queuing a chunk copies no rows.
	queue []queued
	wm    uint64
	// pending are successors of the sealed range not opened yet: the
	// range's SEAL is published before the manifest that names its
	// successors, so a reader can see it first. The range stays followed
	// (its watermark holds the resolved ts at the seal) until they open.
	pending []uint64
}

// queued is a chunk's rows not yet returned and the read buffer they
// point into (nil: none).
type queued struct {
	rows []Row
	buf  *readBuf
}

// NewPuller opens every range of the tenant's manifest that holds rows of
// [start, end) (end nil = unbounded) with commit_ts >= from.
func NewPuller(ctx context.Context, store objstore.Store, tenant uint64, start, end []byte, filter Filter, from uint64) (*Puller, error) {
	return NewPullerWith(ctx, store, tenant, start, end, filter, from, ReadOptions{})
}

// NewPullerWith is NewPuller with read options (a shared cache, bounded polls).
func NewPullerWith(ctx context.Context, store objstore.Store, tenant uint64, start, end []byte, filter Filter, from uint64, o ReadOptions) (*Puller, error) {
	if o.Cache == nil {
		// Its ranges share their groups' publications: one read of each
		// for all of them (a "not yet" is not remembered: no delay).
		o.Cache = NewCache(privateCacheBytes)
	}
	m, err := loadManifest(ctx, store, tenant, o.Cache)
	if err != nil {
		return nil, err
	}
	p := &Puller{store: store, tenant: tenant, start: start, end: end, filter: filter, from: from,
		ranges: map[uint64]*followed{}, seen: map[uint64]bool{}, opts: o}
	byID := map[uint64]*formatv1.RangeDescriptor{}
	for _, d := range m.Ranges {
		byID[d.RangeId] = d
	}
	for _, d := range m.Ranges {
		if !Overlaps(d, start, end) || !p.frontier(d, byID) {
			continue
		}
		if from <= d.OpenedAtTs && parentsDropped(d, byID) {
			// Its parents held the rows up to OpenedAtTs, and retention
			// deleted them (DeleteRange).
			return nil, fmt.Errorf("tenant %d: range %d keeps rows after ts %d (the oldest start ts is %d), its parents %v expired, asked from %d: %w",
				tenant, d.RangeId, d.OpenedAtTs, d.OpenedAtTs+1, d.ParentRangeIds, from, ErrCompacted)
		}
		if err := p.open(ctx, d.RangeId); err != nil {
			return nil, err
		}
	}
	if len(p.ranges) == 0 {
		return nil, fmt.Errorf("tenant %d: no range holds keys [%x, %x) at ts %d", tenant, start, end, from)
	}
	return p, nil
}

// frontier tells whether d is where a reader starting at p.from begins: it
// holds rows at or after from, and its parents (if any are still listed)
// end before from.
func (p *Puller) frontier(d *formatv1.RangeDescriptor, byID map[uint64]*formatv1.RangeDescriptor) bool {
	if d.State == formatv1.RangeDescriptor_STATE_RETIRED && d.RetiredAtTs < p.from {
		return false
	}
	if d.OpenedAtTs < p.from {
		return true
	}
	for _, id := range d.ParentRangeIds {
		if _, ok := byID[id]; ok {
			return false // a parent still listed covers from; its seal leads here
		}
	}
	return true
}

// parentsDropped: d was split or merged from ranges the manifest no longer
// lists (their data expired as a whole).
func parentsDropped(d *formatv1.RangeDescriptor, byID map[uint64]*formatv1.RangeDescriptor) bool {
	if len(d.ParentRangeIds) == 0 {
		return false
	}
	for _, id := range d.ParentRangeIds {
		if _, ok := byID[id]; ok {
			return false
		}
	}
	return true
}

func (p *Puller) open(ctx context.Context, id uint64) error {
	if p.seen[id] {
		return nil
	}
	r, err := OpenRangeReaderWith(ctx, p.store, p.tenant, id, p.from, p.opts)
	if err != nil {
		return fmt.Errorf("open range %d of tenant %d: %w", id, p.tenant, err)
	}
	p.seen[id] = true
	p.ranges[id] = &followed{r: r, wm: r.Watermark()}
	return nil
}

// Poll reads whatever the followed ranges have published since the last
// call and returns the rows that are now complete (commit_ts <= resolved), in
// commit order, with the new resolved ts. caughtUp is true when every range
// is at its log's head. The rows' keys and values stay valid until Release.
func (p *Puller) Poll(ctx context.Context) (rows []Row, resolved uint64, caughtUp bool, err error) {
	caughtUp = true
	for _, id := range slices.Sorted(maps.Keys(p.ranges)) {
		f := p.ranges[id]
		if len(f.pending) > 0 {
			if err := p.openPending(ctx, f); err != nil {
				return nil, 0, false, err
			}
			if len(f.pending) > 0 {
				caughtUp = false // the next manifest names them
			}
			continue
		}
		var read int64 // bytes of rows read from this range in this poll
		for n := 0; p.opts.MaxEntriesPerPoll <= 0 || n < p.opts.MaxEntriesPerPoll; n++ {
			if p.opts.MaxBytesPerPoll > 0 && read >= p.opts.MaxBytesPerPoll {
				caughtUp = false // the next poll goes on
				break
			}
			c, ok, err := f.r.Next(ctx)
			if err != nil {
				return nil, 0, false, err
			}
			if !ok {
				break
			}
			caughtUp = false
			read += payloadBytes(c.Rows)
			p.enqueue(f, c.Rows, c.buf)
			f.wm = c.Watermark
			if c.Sealed {
				f.pending = slices.Clone(c.Successors)
				if err := p.openPending(ctx, f); err != nil {
					return nil, 0, false, err
				}
				break
			}
		}
	}
	// Sealed ranges whose rows have all been returned drop out; the min
	// watermark is over the ranges still followed.
	lowest := ^uint64(0)
	for _, f := range p.ranges {
		lowest = min(lowest, f.wm)
	}
	if lowest != ^uint64(0) && lowest > p.resolved {
		rows = p.merge(lowest)
		p.resolved = lowest
	}
	// A sealed range whose rows are all returned and whose successors are
	// open is done (also when the resolved ts reached its seal before they
	// opened).
	for id, f := range p.ranges {
		if f.r.sealed && len(f.queue) == 0 && len(f.pending) == 0 && f.wm <= p.resolved {
			delete(p.ranges, id)
		}
	}
	return rows, p.resolved, caughtUp, nil
}

// payloadBytes is what rows hold of keys and values.
func payloadBytes(rows []Row) int64 {
	var n int64
	for i := range rows {
		n += int64(len(rows[i].Key) + len(rows[i].Value) + len(rows[i].OldValue))
	}
	return n
}

// enqueue queues the rows of a chunk that the pull wants: the chunk's own
// slice when it wants them all (the usual case), else a copy of those it
// wants (still pointing into buf).
func (p *Puller) enqueue(f *followed, rows []Row, buf *readBuf) {
	for i := range rows {
		if !p.wants(rows[i].Key) {
			kept := slices.Clone(rows[:i])
			for _, row := range rows[i+1:] {
				if p.wants(row.Key) {
					kept = append(kept, row)
				}
			}
			rows = kept
			break
		}
	}
	if len(rows) == 0 {
		buf.release()
		return
	}
	f.queue = append(f.queue, queued{rows[:len(rows):len(rows)], buf})
}

// head is the first queued row; the queue is not empty.
func (f *followed) head() *Row { return &f.queue[0].rows[0] }

// pop drops the first queued row; the buffer of a chunk whose rows are all
// returned goes to p.returned.
func (p *Puller) pop(f *followed) {
	if q := f.queue[0].rows[1:]; len(q) > 0 {
		f.queue[0].rows = q
		return
	}
	if b := f.queue[0].buf; b != nil && p.opts.Releases {
		p.returned = append(p.returned, b)
	}
	f.queue[0] = queued{}
	f.queue = f.queue[1:]
}

// Release says the caller is done with every row Poll returned so far
// (their keys and values included, and the slices Poll returned them in):
// the buffers they were read into can be read into again. Only a Puller
// opened with ReadOptions.Releases holds them until then; a caller that
// keeps rows across polls calls it once it no longer needs any of them.
// Rows used after their Release may read other data.
func (p *Puller) Release() {
	for i, b := range p.returned {
		b.release()
		p.returned[i] = nil
	}
	p.returned = p.returned[:0]
	if c := p.opts.Cache; c != nil {
		c.rows.put(p.outs...)
	}
	clear(p.outs)
	p.outs = p.outs[:0]
}

func (p *Puller) wants(key []byte) bool {
	return p.inSpan(key) && (p.filter == nil || p.filter(key))
}

func (p *Puller) inSpan(key []byte) bool {
	return string(key) >= string(p.start) && (len(p.end) == 0 || string(key) < string(p.end))
}

// openPending opens the successors of f's sealed range that the manifest
// names by now; those it does not name yet stay pending (an error only for
// a failed read).
func (p *Puller) openPending(ctx context.Context, f *followed) error {
	var m *formatv1.Manifest
	for len(f.pending) > 0 {
		id := f.pending[0]
		if !p.seen[id] {
			if m == nil {
				var err error
				if m, err = loadManifest(ctx, p.store, p.tenant, p.opts.Cache); err != nil {
					return err
				}
			}
			i := slices.IndexFunc(m.Ranges, func(d *formatv1.RangeDescriptor) bool { return d.RangeId == id })
			if i < 0 {
				return nil // not published yet: the next poll looks again
			}
			if Overlaps(m.Ranges[i], p.start, p.end) {
				if err := p.open(ctx, id); err != nil {
					return err
				}
			}
		}
		f.pending = f.pending[1:]
	}
	return nil
}

// merge pops every queued row with commit_ts <= upTo, merged across ranges.
func (p *Puller) merge(upTo uint64) []Row {
	h := &rowHeap{}
	n := 0 // at most this many rows: no regrowing
	for _, id := range slices.Sorted(maps.Keys(p.ranges)) {
		f := p.ranges[id]
		if len(f.queue) > 0 && f.head().CommitTs <= upTo {
			*h = append(*h, f)
			for _, q := range f.queue {
				n += len(q.rows)
			}
		}
	}
	heap.Init(h)
	var out []Row
	if c := p.opts.Cache; c != nil && n > 0 && p.opts.Releases {
		out = c.rows.take(n)
		p.outs = append(p.outs, out)
	} else {
		out = make([]Row, 0, n)
	}
	for h.Len() > 0 {
		f := (*h)[0]
		out = append(out, *f.head())
		p.pop(f)
		if len(f.queue) > 0 && f.head().CommitTs <= upTo {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	return out
}

// rowHeap orders followed ranges by their first queued row.
type rowHeap []*followed

func (h rowHeap) Len() int           { return len(h) }
func (h rowHeap) Less(i, j int) bool { return Compare(h[i].head(), h[j].head()) < 0 }
func (h rowHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *rowHeap) Push(x any)        { *h = append(*h, x.(*followed)) }
func (h *rowHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}
