package watermark

import (
	"errors"
	"iter"

	"github.com/google/btree"
)

// btreeDegree: nodes of up to 63 items keep the tree shallow (4 levels at
// 270,000 entries) with little per-item overhead.
const btreeDegree = 32

// Map is the range watermark map of one sorter range (its span). It is not
// safe for concurrent use.
type Map struct {
	start, end string // the span; end "" = unbounded

	tree  *btree.BTreeG[*entry] // entries tiling the span, by start
	probe entry                 // search key for tree lookups
	holes int                   // entries owned by nobody
	mins  minTree               // smallest ts of each owner of entries

	byRegion map[uint64]*inc   // the incarnation table (see lookup)
	extra    map[Ref]*inc      // ... further incarnations of a region id
	nIncs    int               // incarnations in the table
	nEnded   int               // ... of which ended
	pending  map[*inc]struct{} // ... of which not ready
	waiters  map[Ref][]*inc    // successors waiting on a predecessor
	loose    map[*inc]struct{} // own nothing and not complete: sweep candidates
	touched  map[*inc]bool     // entries changed in this operation
	queue    []progress        // just completed parts, successors to wake
	scratch  []*entry          // reused by range scans

	sinceSweep int    // claims since the last sweep
	published  uint64 // the monotonic watermark
	counters   Counters

	// sources are the store streams' groups (group.go).
	sources map[uint64]*source

	reads map[uint64]uint64 // store -> last file of its stream the span has read
	held  map[Ref]*heldEnd  // takeover ENDs waiting for their proof (source.go)
	early map[Ref]*earlyEnd // ENDs read before their START
	// foreignEnd remembers, for Diagnose, which store sent an END that was
	// not trusted (not persisted).
	foreignEnd map[Ref]uint64
}

// ErrBadSpan is returned for a span that is empty (start >= end).
var ErrBadSpan = errors.New("watermark: empty span")

// New returns the map of span [start, end) (end empty = unbounded): one hole.
func New(start, end []byte) (*Map, error) {
	s, e := string(start), string(end)
	if (keyRange{s, e}).empty() {
		return nil, ErrBadSpan
	}
	m := newMap(s, e)
	m.tree.ReplaceOrInsert(&entry{start: s})
	m.holes = 1
	return m, nil
}

func newMap(start, end string) *Map {
	return &Map{
		start:      start,
		end:        end,
		tree:       btree.NewG(btreeDegree, entryLess),
		byRegion:   make(map[uint64]*inc),
		extra:      make(map[Ref]*inc),
		pending:    make(map[*inc]struct{}),
		waiters:    make(map[Ref][]*inc),
		loose:      make(map[*inc]struct{}),
		touched:    make(map[*inc]bool),
		sources:    make(map[uint64]*source),
		reads:      make(map[uint64]uint64),
		held:       make(map[Ref]*heldEnd),
		early:      make(map[Ref]*earlyEnd),
		foreignEnd: make(map[Ref]uint64),
	}
}

// Span returns the map's key range; end is nil when unbounded.
func (m *Map) Span() (start, end []byte) {
	start = []byte(m.start)
	if m.end != "" {
		end = []byte(m.end)
	}
	return start, end
}

// Watermark returns the published range watermark: every commit with
// commit_ts <= Watermark() of every key of the span has been delivered. It
// never goes backwards.
func (m *Map) Watermark() uint64 { return m.published }

// raw is the current minimum ts over all entries, 0 while there is a hole.
func (m *Map) raw() uint64 {
	if m.holes > 0 {
		return 0
	}
	if ts := m.mins.min(); ts != noTs {
		return ts
	}
	return 0 // no owner at all: cannot happen while entries tile the span
}

// Entry is one sub-range of the span as All reports it.
type Entry struct {
	Start, End []byte // End nil = unbounded
	Owner      Ref    // zero for a hole
	Ts         uint64 // resolved ts of the sub-range, 0 for a hole
}

// All yields the entries in key order (for debugging and tests).
func (m *Map) All() iter.Seq[Entry] {
	return func(yield func(Entry) bool) {
		var prev *entry
		emit := func(end string) bool {
			out := Entry{Start: []byte(prev.start), Ts: prev.ts()}
			if end != "" {
				out.End = []byte(end)
			}
			if prev.owner != nil {
				out.Owner = prev.owner.ref
			}
			return yield(out)
		}
		stop := false
		m.tree.Ascend(func(e *entry) bool {
			if prev != nil && !emit(e.start) {
				stop = true
				return false
			}
			prev = e
			return true
		})
		if !stop && prev != nil {
			emit(m.end)
		}
	}
}

// MaxTs is the greatest ts the map holds: over its entries and every
// incarnation's latest resolved ts, pending or not. A range restored from
// a snapshot uses it to bound what the input it was built from can have
// delivered (commits at or below it may be replays). O(n).
func (m *Map) MaxTs() uint64 {
	var mx uint64
	m.each(func(x *inc) { mx = max(mx, x.cur()) })
	for e := range m.All() {
		mx = max(mx, e.Ts)
	}
	return mx
}
