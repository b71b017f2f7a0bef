package watermark

import "slices"

// Which store stream a record came from matters in three cases, all of them
// about an incarnation whose leader store crashed (store-change-file spec,
// rule 3 and "Takeover"):
//
//   - A takeover END, written by the new leader on the crashed leader's
//     behalf, ends x only once this map's span has also read the crashed
//     leader's stream through the file the new leader proved holds the
//     rest of x's events (Takeover). Until then x is not ended and its END's
//     ts is not applied: the unread files may hold commits at or below it.
//   - An END or resolved ts of x from a store other than the one that wrote
//     x's START, without the takeover form, proves nothing about the
//     leader's unread files: it is ignored and counted (ForeignEnd,
//     ForeignResolved), and x waits for its own leader. Only a sloppy
//     producer writes one; the stall is reported (Diagnose).
//   - An END of an incarnation whose START has not been read yet (its
//     leader's stream is behind) is kept and applied when the START arrives,
//     instead of being lost.
//
// Store 0 means "unknown": input without a store (tests, tools, maps
// decoded from an older encoding) is trusted as before.

// Takeover is the proof a takeover END carries: the crashed leader's store
// and the last file of its stream that holds the incarnation's events the
// END's writer did not write again.
type Takeover struct {
	Store, ThroughSeq uint64
}

// heldEnd is a takeover END waiting for the crashed leader's stream.
type heldEnd struct {
	final  uint64
	proofs []Takeover // any one of them read through is enough
}

// earlyEnd is what was read of an incarnation's ENDs before its START.
type earlyEnd struct {
	rng  keyRange // clipped to the span
	ends []endRecord
}

// endRecord is one END as read.
type endRecord struct {
	from   uint64 // the store whose stream carried it
	final  uint64
	proofs []Takeover // for a takeover END; empty otherwise
}

// maxEarly bounds the ENDs kept for incarnations not started yet: a
// legitimate stream has a handful (one per takeover whose old leader's
// stream is behind); garbage beyond the bound is dropped and counted.
const maxEarly = 1 << 14

// StartFrom is Start for a record read from store's stream: the store is
// recorded as the incarnation's leader.
func (m *Map) StartFrom(store uint64, x Ref, start, end []byte, preds []Ref) {
	m.start1(store, x, start, end, preds)
	if e, ok := m.early[x]; ok {
		delete(m.early, x)
		for _, r := range e.ends {
			if i := m.lookup(x); i != nil {
				m.end1(i, r.from, r.final, r.proofs)
			}
		}
	}
	m.finish()
}

// ResolvedFrom is Resolved for a record read from store's stream.
func (m *Map) ResolvedFrom(store uint64, x Ref, ts uint64) {
	if i := m.lookup(x); i != nil && foreign(store, i.storeID()) {
		m.counters.ForeignResolved++
		return
	}
	m.Resolved(x, ts)
}

// EndFrom is End for a record read from store's stream, with the range the
// record names (kept when the START has not been read yet) and, for a
// takeover END, its proof.
func (m *Map) EndFrom(store uint64, x Ref, start, end []byte, finalTs uint64, takeover *Takeover) {
	defer m.finish()
	var proofs []Takeover
	if takeover != nil {
		proofs = []Takeover{*takeover}
	}
	i := m.lookup(x)
	if i == nil {
		m.keepEarly(store, x, start, end, finalTs, proofs)
		return
	}
	m.end1(i, store, finalTs, proofs)
}

// Progress records that the span has read store's stream through file seq:
// takeover ENDs waiting for it apply.
func (m *Map) Progress(store, seq uint64) {
	if store == 0 || seq <= m.reads[store] {
		return
	}
	m.reads[store] = seq
	if len(m.held) == 0 {
		return
	}
	for _, x := range m.heldOrder() {
		h := m.held[x]
		if i := m.lookup(x); i != nil && m.proven(h.proofs) {
			delete(m.held, x)
			m.endNow(i, h.final)
		}
	}
	m.finish()
}

// ReadThrough returns how far the span has read each store's stream.
func (m *Map) ReadThrough() map[uint64]uint64 {
	out := make(map[uint64]uint64, len(m.reads))
	for s, q := range m.reads {
		out[s] = q
	}
	return out
}

func foreign(from, leader uint64) bool { return from != 0 && leader != 0 && from != leader }

// end1 applies an END of i read from store from.
func (m *Map) end1(i *inc, from, final uint64, proofs []Takeover) {
	if i.ended() {
		m.counters.DuplicateEnd++
		return
	}
	if len(proofs) == 0 {
		if foreign(from, i.storeID()) {
			m.counters.ForeignEnd++
			m.foreignEnd[i.ref] = from
			return
		}
		delete(m.held, i.ref)
		m.endNow(i, final)
		return
	}
	for _, p := range proofs {
		if p.Store == 0 || foreign(p.Store, i.storeID()) {
			// The proof is about another stream than the leader's.
			m.counters.ForeignEnd++
			m.foreignEnd[i.ref] = from
			return
		}
	}
	if m.proven(proofs) {
		delete(m.held, i.ref)
		m.endNow(i, final)
		return
	}
	h := m.held[i.ref]
	if h == nil {
		h = &heldEnd{}
		m.held[i.ref] = h
		m.counters.TakeoverWaits++
	}
	h.final = max(h.final, final)
	h.proofs = addProofs(h.proofs, proofs)
}

// addProofs adds the proofs dst lacks (a re-delivered END adds nothing),
// keeping at most maxPreds.
func addProofs(dst, src []Takeover) []Takeover {
	for _, p := range src {
		if !slices.Contains(dst, p) && len(dst) < maxPreds {
			dst = append(dst, p)
		}
	}
	return dst
}

// proven reports whether one of the proofs has been read through.
func (m *Map) proven(proofs []Takeover) bool {
	for _, p := range proofs {
		if m.reads[p.Store] >= p.ThroughSeq {
			return true
		}
	}
	return false
}

// heldOrder lists the held ENDs oldest incarnation first, so that
// predecessors end before their successors look at them.
func (m *Map) heldOrder() []Ref {
	refs := make([]Ref, 0, len(m.held))
	for r := range m.held {
		refs = append(refs, r)
	}
	slices.SortFunc(refs, Ref.Compare)
	return refs
}

// keepEarly keeps an END of an incarnation not started yet, unless newer
// incarnations already own all its keys (a re-delivery of an END whose
// incarnation was completed and forgotten).
func (m *Map) keepEarly(from uint64, x Ref, start, end []byte, final uint64, proofs []Takeover) {
	r := keyRange{string(start), string(end)}.intersect(keyRange{m.start, m.end})
	if x.RegionID == 0 || r.empty() || m.allNewer(r, x) {
		m.counters.UnknownIncarnation++
		return
	}
	rec := endRecord{from: from, final: final, proofs: proofs}
	if e, ok := m.early[x]; ok {
		e.ends = addEnd(e.ends, rec)
		return
	}
	if len(m.early) >= maxEarly {
		m.counters.EarlyDropped++
		return
	}
	m.counters.EarlyEnds++
	m.early[x] = &earlyEnd{rng: r, ends: []endRecord{rec}}
}

// sweepEarly drops kept ENDs whose keys newer incarnations all own: their
// START, if it ever comes, would be stale.
func (m *Map) sweepEarly() {
	for x, e := range m.early {
		if m.allNewer(e.rng, x) {
			delete(m.early, x)
			m.counters.UnknownIncarnation++
		}
	}
}

// addEnd adds an END record unless the same one is there (a re-delivery),
// keeping at most maxPreds.
func addEnd(ends []endRecord, rec endRecord) []endRecord {
	for _, e := range ends {
		if e.from == rec.from && e.final == rec.final && slices.Equal(e.proofs, rec.proofs) {
			return ends
		}
	}
	if len(ends) >= maxPreds {
		return ends
	}
	return append(ends, rec)
}
