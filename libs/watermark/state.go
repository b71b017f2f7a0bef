package watermark

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
)

// snapshot is the map's state in plain form: what Encode writes, Decode
// reads, and Split and Merge cut and join. Derived structure (owned counts,
// smallest bases, the min-tree, waiters, GC candidates) is not part of it: build
// recomputes it, so a snapshot from untrusted bytes cannot make it
// inconsistent.
type snapshot struct {
	start, end string
	published  uint64
	sinceSweep uint64
	counters   Counters
	incs       []incState // sorted by Ref
	entries    []entryState
	reads      map[uint64]uint64
	held       map[Ref]heldEnd
	early      map[Ref]earlyEnd
}

type incState struct {
	ref        Ref
	start, end string
	latest     uint64
	store      uint64
	ended      bool
	pending    bool
	unled      bool // its store lost it in a restart (LeadersFrom)
	waiting    []Ref
	covered    []keyRange
}

type entryState struct {
	start string
	owner int // index into incs, -1 for a hole
	base  uint64
}

// ErrCorrupt is wrapped by every error about an inconsistent snapshot.
var ErrCorrupt = errors.New("watermark: corrupt snapshot")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// export captures m's state.
func (m *Map) export() *snapshot {
	s := &snapshot{start: m.start, end: m.end, published: m.published,
		sinceSweep: uint64(m.sinceSweep), counters: m.counters}
	all := make([]*inc, 0, m.nIncs)
	m.each(func(x *inc) { all = append(all, x) })
	sort.Slice(all, func(i, j int) bool { return all[i].ref.Compare(all[j].ref) < 0 })
	idx := make(map[*inc]int, len(all))
	for i, x := range all {
		idx[x] = i
		is := incState{ref: x.ref, start: x.start, end: x.end, latest: x.cur(), store: x.storeID(), ended: x.ended(), unled: x.unled()}
		if x.pend != nil {
			is.pending = true
			is.waiting = append([]Ref(nil), x.pend.waiting...)
			is.covered = append([]keyRange(nil), x.pend.covered...)
		}
		s.incs = append(s.incs, is)
	}
	s.reads = maps.Clone(m.reads)
	s.held = make(map[Ref]heldEnd, len(m.held))
	for r, h := range m.held {
		s.held[r] = heldEnd{final: h.final, proofs: slices.Clone(h.proofs)}
	}
	s.early = make(map[Ref]earlyEnd, len(m.early))
	for r, e := range m.early {
		s.early[r] = earlyEnd{rng: e.rng, ends: slices.Clone(e.ends)}
	}
	s.entries = make([]entryState, 0, m.tree.Len())
	m.tree.Ascend(func(e *entry) bool {
		es := entryState{start: e.start, owner: -1, base: e.base}
		if e.owner != nil {
			es.owner = idx[e.owner]
		}
		s.entries = append(s.entries, es)
		return true
	})
	return s
}

// build makes a map from a snapshot, checking every invariant a snapshot
// must keep. It then settles what the snapshot leaves unsettled (Split and
// Merge change which predecessors are complete or relevant); for a snapshot
// of a settled map that changes nothing. sweep also forgets stale
// incarnations at once.
func build(s *snapshot, sweep bool) (*Map, error) {
	span := keyRange{s.start, s.end}
	if span.empty() {
		return nil, corrupt("empty span")
	}
	m := newMap(s.start, s.end)
	incs := make([]*inc, len(s.incs))
	for i := range s.incs {
		x, err := m.buildInc(&s.incs[i], span)
		if err != nil {
			return nil, err
		}
		incs[i] = x
	}
	if err := m.buildEntries(s.entries, incs); err != nil {
		return nil, err
	}
	if err := m.checkOwnership(incs); err != nil {
		return nil, err
	}
	for _, x := range incs {
		// Share key strings between incarnations and entries.
		x.start, x.end = m.intern(x.start), m.intern(x.end)
	}
	// Split and Merge can leave mergeable neighbours at the cut.
	m.coalesce(span)
	m.published, m.counters = s.published, s.counters
	m.sinceSweep = int(min(s.sinceSweep, 1<<31))
	if err := m.buildSources(s, span); err != nil {
		return nil, err
	}
	for _, x := range incs { // oldest first: predecessors settle first
		for _, w := range append([]Ref(nil), x.waitingRefs()...) {
			if p := m.lookup(w); p != nil && p.ended() {
				m.offer(x, p, p.completeParts())
			}
		}
		if x.pend != nil {
			m.checkReady(x, nil)
		}
	}
	m.finish()
	if sweep {
		m.sweep()
		m.finish()
	}
	return m, nil
}

func (m *Map) buildInc(is *incState, span keyRange) (*inc, error) {
	r := keyRange{is.start, is.end}
	if is.ref.RegionID == 0 {
		return nil, corrupt("incarnation with region id 0")
	}
	if m.lookup(is.ref) != nil {
		return nil, corrupt("incarnation %v twice", is.ref)
	}
	if r.empty() || r.intersect(span) != r {
		return nil, corrupt("incarnation %v range outside the span", is.ref)
	}
	x := &inc{ref: is.ref, start: is.start, end: is.end, latest: is.latest, slot: -1, src: m.source(is.store)}
	if is.ended {
		x.setEnded()
	}
	if is.unled {
		x.setUnled()
	}
	if !is.pending {
		if len(is.waiting) > 0 || len(is.covered) > 0 {
			return nil, corrupt("ready incarnation %v with predecessors", is.ref)
		}
		m.insert(x)
		return x, nil
	}
	waiting, ok := checkPreds(is.ref, is.waiting)
	if !ok || len(waiting) != len(is.waiting) {
		return nil, corrupt("incarnation %v: bad predecessors", is.ref)
	}
	for _, c := range is.covered {
		if c.empty() || c.intersect(r) != c {
			return nil, corrupt("incarnation %v: covered range outside its range", is.ref)
		}
	}
	x.pend = &pending{waiting: waiting, covered: normalize(append([]keyRange(nil), is.covered...))}
	m.insert(x)
	for _, w := range waiting {
		m.waiters[w] = append(m.waiters[w], x)
	}
	return x, nil
}

// checkOwnership checks that every incarnation owns exactly what it claimed:
// where it is ready, every key is its own or a newer one's; where it is not,
// it owns nothing. A snapshot that broke this could make a successor claim
// keys whose older owners were never read to their END.
func (m *Map) checkOwnership(incs []*inc) error {
	for _, x := range incs {
		for _, r := range x.readyParts() {
			for _, e := range m.overlapping(r) {
				if e.owner == nil || e.owner.ref.Compare(x.ref) < 0 {
					return corrupt("%v ready at keys an older owner holds", x.ref)
				}
			}
		}
	}
	var bad error
	m.tree.Ascend(func(e *entry) bool {
		if x := e.owner; x != nil && x.pend != nil {
			if r := (keyRange{e.start, m.endOf(e)}); !covers(x.pend.covered, r) {
				bad = corrupt("%v owns keys it is not ready at", x.ref)
				return false
			}
		}
		return true
	})
	return bad
}

func (m *Map) buildEntries(es []entryState, incs []*inc) error {
	if len(es) == 0 || es[0].start != m.start {
		return corrupt("entries do not start at the span's start")
	}
	for i, e := range es {
		end := m.end
		if i+1 < len(es) {
			end = es[i+1].start
			if end <= e.start {
				return corrupt("entries out of order")
			}
		}
		if !endAfter(m.end, e.start) {
			return corrupt("entry beyond the span")
		}
		n := &entry{start: e.start, base: e.base}
		if e.owner < -1 || e.owner >= len(incs) {
			return corrupt("entry owner out of range")
		}
		if e.owner == -1 {
			if e.base != 0 {
				return corrupt("hole with a ts")
			}
			m.tree.ReplaceOrInsert(n)
			m.holes++
			continue
		}
		x := incs[e.owner]
		if (keyRange{e.start, end}).intersect(x.rng()) != (keyRange{e.start, end}) {
			return corrupt("entry outside its owner %v", x.ref)
		}
		if n.base <= x.latest {
			n.base = 0
		}
		if e.start == x.start {
			n.start = x.start
		}
		n.owner = x
		m.tree.ReplaceOrInsert(n)
		m.gain(x, n.base)
	}
	return nil
}

func (x *inc) waitingRefs() []Ref {
	if x.pend == nil {
		return nil
	}
	return x.pend.waiting
}

// buildSources installs the store positions, held ENDs and early ENDs of a
// snapshot, then applies the held ENDs the positions already prove (Merge
// can join a half that read further).
func (m *Map) buildSources(s *snapshot, span keyRange) error {
	for st, q := range s.reads {
		if st == 0 {
			return corrupt("position of store 0")
		}
		m.reads[st] = q
	}
	for r, h := range s.held {
		x := m.lookup(r)
		if x == nil || x.ended() || len(h.proofs) == 0 || len(h.proofs) > maxPreds {
			return corrupt("held end of %v", r)
		}
		m.held[r] = &heldEnd{final: h.final, proofs: slices.Clone(h.proofs)}
	}
	for r, e := range s.early {
		if r.RegionID == 0 || e.rng.empty() || e.rng.intersect(span) != e.rng || len(e.ends) == 0 || len(e.ends) > maxPreds {
			return corrupt("early end of %v", r)
		}
		if m.lookup(r) != nil {
			return corrupt("early end of started %v", r)
		}
		m.early[r] = &earlyEnd{rng: e.rng, ends: slices.Clone(e.ends)}
	}
	for _, r := range m.heldOrder() {
		if h := m.held[r]; m.proven(h.proofs) {
			delete(m.held, r)
			m.endNow(m.lookup(r), h.final)
		}
	}
	return nil
}
