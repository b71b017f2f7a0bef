package route

import (
	"errors"
	"fmt"
)

// ErrEpochRegressed is matched (errors.Is) by a Route error for a region
// incarnation older than (or a repeated START of) one the same store
// stream already led: a region epoch or term going backwards.
var ErrEpochRegressed = errors.New("region incarnation goes backwards")

// ErrResolvedRegressed is matched by a Route error for a resolved ts of an
// incarnation below one the same store stream already gave it.
var ErrResolvedRegressed = errors.New("resolved ts goes backwards")

// Tracker checks that a store stream's incarnations and resolved ts never
// go backwards, across the files it has read: for each region id the newest
// incarnation led (header leader lists and STARTs), for each incarnation
// still led its highest resolved ts named one by one, and the stream's last
// LeaderResolvedTs ts. (A regression of one incarnation between a
// LeaderResolvedTs and a later ts of its own is not seen here; the
// watermark map ignores and counts it.) Only files above the last committed
// seq are checked and recorded, so re-reading files after a restart from a
// checkpoint is not mistaken for a regression. A file's changes are
// pending until Commit; routing the next file drops uncommitted ones.
type Tracker struct {
	seq      uint64 // last committed file
	newest   map[uint64]Ref
	resolved map[Ref]uint64
	group    uint64 // the last LeaderResolvedTs ts
	pGroup   uint64

	cur      uint64 // file being routed; 0: not checked (a re-read)
	pNewest  map[uint64]Ref
	pResolve map[Ref]uint64
	pEnded   map[Ref]bool
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{newest: map[uint64]Ref{}, resolved: map[Ref]uint64{},
		pNewest: map[uint64]Ref{}, pResolve: map[Ref]uint64{}, pEnded: map[Ref]bool{}}
}

// Seq is the last file committed.
func (t *Tracker) Seq() uint64 { return t.seq }

func (t *Tracker) begin(seq uint64) {
	// A map never shrinks: let one a large file grew go.
	t.pNewest, t.pResolve, t.pEnded = emptied(t.pNewest), emptied(t.pResolve), emptied(t.pEnded)
	t.pGroup = 0
	t.cur = 0
	if seq > t.seq {
		t.cur = seq
	}
}

// Commit records the file last routed (when it was checked).
func (t *Tracker) Commit() {
	if t.cur == 0 {
		return
	}
	for id, r := range t.pNewest {
		t.newest[id] = r
	}
	for r, ts := range t.pResolve {
		t.resolved[r] = ts
	}
	for r := range t.pEnded {
		delete(t.resolved, r)
	}
	t.group = max(t.group, t.pGroup)
	t.seq = t.cur
	t.begin(0)
}

// older reports whether a is an older incarnation of its region than b.
func older(a, b Ref) bool {
	return a.Version < b.Version || (a.Version == b.Version && a.Term < b.Term)
}

// lead records that the stream leads inc; start is true for a START
// record, which must name a strictly newer incarnation than any led before.
func (t *Tracker) lead(name string, inc Ref, start bool) error {
	if t.cur == 0 {
		return nil
	}
	prev, ok := t.pNewest[inc.RegionID]
	if !ok {
		prev, ok = t.newest[inc.RegionID]
	}
	if ok && (older(inc, prev) || (start && inc == prev)) {
		what := "leads"
		if start {
			what = "starts"
		}
		return fmt.Errorf("%s: store %s region %d version %d term %d after version %d term %d: %w",
			name, what, inc.RegionID, inc.Version, inc.Term, prev.Version, prev.Term, ErrEpochRegressed)
	}
	if !ok || older(prev, inc) {
		t.pNewest[inc.RegionID] = inc
	}
	return nil
}

// resolve records resolved ts ts of inc (end: its END's final ts, which is
// not checked when 0, meaning none was ever published).
func (t *Tracker) resolve(name string, inc Ref, ts uint64, end bool) error {
	if t.cur == 0 {
		return nil
	}
	prev, ok := t.pResolve[inc]
	if !ok && !t.pEnded[inc] {
		prev = t.resolved[inc]
	}
	if ts < prev && (ts != 0 || !end) {
		return fmt.Errorf("%s: region %d version %d term %d: resolved ts %d after %d: %w",
			name, inc.RegionID, inc.Version, inc.Term, ts, prev, ErrResolvedRegressed)
	}
	if end {
		delete(t.pResolve, inc)
		t.pEnded[inc] = true
	} else {
		t.pResolve[inc] = ts
	}
	return nil
}

// leaderResolved records a LeaderResolvedTs of ts, which never goes below
// the stream's previous one.
func (t *Tracker) leaderResolved(name string, ts uint64) error {
	if t.cur == 0 {
		return nil
	}
	if prev := max(t.group, t.pGroup); ts < prev {
		return fmt.Errorf("%s: leader resolved ts %d after %d: %w", name, ts, prev, ErrResolvedRegressed)
	}
	t.pGroup = ts
	return nil
}

// emptied returns m cleared, or a new map if m had grown large.
func emptied[K comparable, V any](m map[K]V) map[K]V {
	if len(m) > 1024 {
		return map[K]V{}
	}
	clear(m)
	return m
}
