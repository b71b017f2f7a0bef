package watermark

import "slices"

// maxPreds bounds the predecessors of one START. TiKV names one (transfer,
// split) or two (merge); the bound keeps hostile input from making the
// per-START work large.
const maxPreds = 64

// Start registers incarnation x, which the upstream started leading with the
// key range [start, end) (end empty = unbounded) after predecessors preds.
//
// Keys of x's range become x's once the predecessors over them are complete
// there (ended, and their own predecessors complete there; see settle.go);
// an incarnation without predecessors (a bootstrap) takes its whole range at
// once (but see bootstrap). Predecessors whose range lies outside the span
// are never seen here and do not hold x back: only the keys of the span
// matter.
//
// Ignored and counted: a zero region id, start >= end, a range outside the
// span, a duplicate START, a bad predecessor list (a predecessor not older
// than x, a zero one, or more than maxPreds), and a stale START (every key of
// the range is already owned by incarnations newer than x: x was seen,
// completed and forgotten, and this is a re-delivery).
func (m *Map) Start(x Ref, start, end []byte, preds []Ref) { m.StartFrom(0, x, start, end, preds) }

// start1 is Start without finish; store is the leader's (0 = unknown).
func (m *Map) start1(store uint64, x Ref, start, end []byte, preds []Ref) {
	if x.RegionID == 0 {
		m.counters.InvalidRef++
		return
	}
	r, ok := m.clip(start, end)
	if !ok {
		return
	}
	if m.lookup(x) != nil {
		m.counters.DuplicateStart++
		return
	}
	preds, ok = checkPreds(x, preds)
	if !ok {
		m.counters.BadPredecessor++
		return
	}
	// The entries over r, looked up once for the stale check, the interned
	// start and a bootstrap (a START's cost is mostly these tree searches:
	// a sorter that starts with 1,000,000 regions makes 1,000,000 of them).
	// Nothing below changes the tree before bootstrap has read the list.
	over := m.overlapping(r)
	if newerOwners(over, x) {
		m.counters.Stale++
		m.countConflicts(r, x)
		return
	}
	from := over[0].start // the entry holding r.start (overlapping)
	if from != r.start {
		from = m.intern(r.start)
	}
	n := &inc{ref: x, start: from, end: m.intern(r.end), slot: -1, src: m.source(store)}
	if len(preds) == 0 {
		m.bootstrap(n, over)
		return
	}
	n.pend = &pending{}
	m.insert(n)
	var done []*inc
	for _, p := range preds {
		pi := m.lookup(p)
		if pi == nil || !pi.complete() {
			n.pend.waiting = append(n.pend.waiting, p)
			m.waiters[p] = append(m.waiters[p], n)
		}
		if pi != nil && pi.ended() {
			done = append(done, pi)
		}
	}
	// Offer only after every waiting predecessor is listed, so that a part
	// two predecessors overlap (bad input) waits for both.
	for _, p := range done {
		m.offer(n, p, p.completeParts())
	}
	m.checkReady(n, nil)
}

// clip validates [start, end) and clips it to the span.
func (m *Map) clip(start, end []byte) (keyRange, bool) {
	r := keyRange{string(start), string(end)}
	if r.empty() {
		m.counters.BadRange++
		return keyRange{}, false
	}
	r = r.intersect(keyRange{m.start, m.end})
	if r.empty() {
		m.counters.OutsideSpan++
		return keyRange{}, false
	}
	return r, true
}

// checkPreds validates and deduplicates a predecessor list. Requiring every
// predecessor to be strictly older than x also rules out cycles.
func checkPreds(x Ref, preds []Ref) ([]Ref, bool) {
	if len(preds) > maxPreds {
		return nil, false
	}
	out := make([]Ref, 0, len(preds))
next:
	for _, p := range preds {
		if p.RegionID == 0 || p.Compare(x) >= 0 {
			return nil, false
		}
		for _, q := range out {
			if q == p {
				continue next
			}
		}
		out = append(out, p)
	}
	return out, true
}

// allNewer reports whether every key of r is owned by an incarnation newer
// than x.
func (m *Map) allNewer(r keyRange, x Ref) bool { return newerOwners(m.overlapping(r), x) }

// newerOwners reports whether every entry of list is owned by an
// incarnation newer than x.
func newerOwners(list []*entry, x Ref) bool {
	for _, e := range list {
		if e.owner == nil || e.owner.ref.Compare(x) <= 0 {
			return false
		}
	}
	return true
}

// countConflicts counts the owners in r that share x's version but not its
// region id: the tie-break decided, but the input broke TiKV's rules.
func (m *Map) countConflicts(r keyRange, x Ref) {
	for _, e := range m.overlapping(r) {
		if e.owner != nil && e.owner.ref.Version == x.Version && e.owner.ref.RegionID != x.RegionID {
			m.counters.VersionConflicts++
		}
	}
}

// bootstrap registers n, started without predecessors. Normally its keys are
// holes and it takes them at once. If older incarnations that have not
// ended own some of them, n cannot be a first leadership: it is their
// successor started in a store's first file (where the protocol writes every
// START as a bootstrap), and trusting its resolved ts before their END is
// read would let the watermark pass their unread commits. So n waits for
// them as if they were named predecessors. (The reverse arrival order,
// n's START read before theirs, cannot be detected; docs/watermarks.md.)
// over is m.overlapping(n.rng()), as the caller found it.
func (m *Map) bootstrap(n *inc, over []*entry) {
	var live []*inc
	for _, e := range over {
		if o := e.owner; o != nil && !o.ended() && before(o.ref, n.ref) && !slices.Contains(live, o) {
			live = append(live, o)
		}
	}
	if len(live) == 0 {
		m.insert(n)
		m.claimOver(n, n.rng(), over)
		return
	}
	m.counters.BootstrapWaits++
	n.pend = &pending{}
	m.insert(n)
	var held []keyRange
	for _, o := range live {
		n.pend.waiting = append(n.pend.waiting, o.ref)
		m.waiters[o.ref] = append(m.waiters[o.ref], n)
		held = append(held, o.rng())
	}
	free := subtract(n.rng(), normalize(held))
	n.pend.covered = normalize(append([]keyRange(nil), free...))
	for _, f := range free {
		m.claim(n, f)
	}
	m.checkReady(n, nil)
}

// before reports whether incarnation a can precede b over the same keys in
// TiKV: an older version, or an older term of the same region version. Two
// regions of one version never overlap; for that conflict the plain
// tie-break applies.
func before(a, b Ref) bool {
	if a.Version != b.Version {
		return a.Version < b.Version
	}
	return a.RegionID == b.RegionID && a.Term < b.Term
}
