package watermark

import (
	"errors"
	"maps"
	"slices"
)

// ErrBadSplitKey is returned by Split for a key not strictly inside the span.
var ErrBadSplitKey = errors.New("watermark: split key not inside the span")

// ErrNotAdjacent is returned by Merge for spans that do not meet.
var ErrNotAdjacent = errors.New("watermark: spans are not adjacent")

// Split returns the maps of [start, key) and [key, end), each in the state a
// map of that span alone would have reached from the same input: entries and
// incarnations are clipped, incarnations outside a half are dropped, and an
// incarnation that only waited for predecessors outside its half becomes
// ready there. m is left unchanged. Counters go to the left half.
func (m *Map) Split(key []byte) (left, right *Map, err error) {
	k := string(key)
	if k <= m.start || !endAfter(m.end, k) {
		return nil, nil, ErrBadSplitKey
	}
	s := m.export()
	ls, rs := s.clip(m.start, k), s.clip(k, m.end)
	rs.counters = Counters{}
	if left, err = build(ls, true); err != nil {
		return nil, nil, err
	}
	if right, err = build(rs, true); err != nil {
		return nil, nil, err
	}
	return left, right, nil
}

// clip returns the part of s within [a, b).
func (s *snapshot) clip(a, b string) *snapshot {
	span := keyRange{a, b}
	out := &snapshot{start: a, end: b, published: s.published, sinceSweep: s.sinceSweep,
		counters: s.counters}
	remap := make([]int, len(s.incs))
	for i, is := range s.incs {
		remap[i] = -1
		r := keyRange{is.start, is.end}.intersect(span)
		if r.empty() {
			continue
		}
		c := is
		c.start, c.end = r.start, r.end
		c.waiting = append([]Ref(nil), is.waiting...)
		c.covered = nil
		for _, cv := range is.covered {
			if cv = cv.intersect(span); !cv.empty() {
				c.covered = append(c.covered, cv)
			}
		}
		remap[i] = len(out.incs)
		out.incs = append(out.incs, c)
	}
	out.reads = maps.Clone(s.reads)
	out.held = make(map[Ref]heldEnd)
	for _, is := range out.incs {
		if h, ok := s.held[is.ref]; ok {
			out.held[is.ref] = h
		}
	}
	out.early = make(map[Ref]earlyEnd)
	for r, e := range s.early {
		if e.rng = e.rng.intersect(span); !e.rng.empty() {
			out.early[r] = e
		}
	}
	for i, e := range s.entries {
		end := s.end
		if i+1 < len(s.entries) {
			end = s.entries[i+1].start
		}
		r := keyRange{e.start, end}.intersect(span)
		if r.empty() {
			continue
		}
		if e.owner >= 0 {
			e.owner = remap[e.owner]
		}
		e.start = r.start
		out.entries = append(out.entries, e)
	}
	return out
}

// Merge returns the map of the union of two adjacent spans (left's end is
// right's start). Both maps should have consumed the same prefix of every
// store stream (the sorter aligns them before merging ranges); where they
// differ, the merge keeps the more conservative state of an incarnation
// (lower latest ts, not ended unless both saw the END, waiting for every
// predecessor either waits for), so it is never less safe than either half.
// The published watermark is the lower of the two; counters add up.
func Merge(left, right *Map) (*Map, error) {
	if left.end == "" || left.end != right.start {
		return nil, ErrNotAdjacent
	}
	ls, rs := left.export(), right.export()
	s := &snapshot{start: ls.start, end: rs.end, published: min(ls.published, rs.published),
		counters: ls.counters}
	s.counters.add(rs.counters)
	lmap := make([]int, len(ls.incs))
	rmap := make([]int, len(rs.incs))
	i, j := 0, 0
	for i < len(ls.incs) || j < len(rs.incs) {
		var c int
		switch {
		case i == len(ls.incs):
			c = 1
		case j == len(rs.incs):
			c = -1
		default:
			c = ls.incs[i].ref.Compare(rs.incs[j].ref)
		}
		switch c {
		case -1:
			lmap[i] = len(s.incs)
			s.incs = append(s.incs, ls.incs[i])
			i++
		case 1:
			rmap[j] = len(s.incs)
			s.incs = append(s.incs, rs.incs[j])
			j++
		default:
			joined, err := joinInc(&ls.incs[i], &rs.incs[j], left.end)
			if err != nil {
				return nil, err
			}
			lmap[i], rmap[j] = len(s.incs), len(s.incs)
			s.incs = append(s.incs, joined)
			i++
			j++
		}
	}
	joinSources(s, ls, rs)
	for _, e := range ls.entries {
		if e.owner >= 0 {
			e.owner = lmap[e.owner]
		}
		s.entries = append(s.entries, e)
	}
	for _, e := range rs.entries {
		if e.owner >= 0 {
			e.owner = rmap[e.owner]
		}
		s.entries = append(s.entries, e)
	}
	return build(s, true)
}

// joinInc joins the two halves' states of one incarnation.
func joinInc(l, r *incState, boundary string) (incState, error) {
	if l.end != boundary || r.start != boundary {
		return incState{}, corrupt("incarnation %v does not meet at the boundary", l.ref)
	}
	j := incState{ref: l.ref, start: l.start, end: r.end, latest: min(l.latest, r.latest),
		store: l.store, ended: l.ended && r.ended, pending: l.pending || r.pending,
		// A half that saw its store's restart file stops applying the
		// store's records: the more conservative.
		unled: l.unled || r.unled}
	if j.store == 0 {
		j.store = r.store // a known leader is the more conservative
	}
	if !j.pending {
		return j, nil
	}
	for _, h := range []*incState{l, r} {
		if !h.pending {
			j.covered = append(j.covered, keyRange{h.start, h.end})
			continue
		}
		j.covered = append(j.covered, h.covered...)
		for _, w := range h.waiting {
			if !(&pending{waiting: j.waiting}).isWaiting(w) {
				j.waiting = append(j.waiting, w)
			}
		}
	}
	j.covered = normalize(j.covered)
	return j, nil
}

// joinSources merges the halves' store positions (the lower one where both
// read a store: the more conservative), held ENDs (every proof either half
// waits for, on incarnations the merge did not end) and early ENDs.
func joinSources(s, l, r *snapshot) {
	s.reads = maps.Clone(l.reads)
	for st, q := range r.reads {
		if lq, ok := s.reads[st]; !ok || q < lq {
			s.reads[st] = q
		}
	}
	ended := make(map[Ref]bool, len(s.incs))
	for _, is := range s.incs {
		ended[is.ref] = is.ended
	}
	s.held = make(map[Ref]heldEnd)
	for _, half := range []*snapshot{l, r} {
		for ref, h := range half.held {
			if e, ok := ended[ref]; !ok || e {
				continue
			}
			j := s.held[ref]
			j.final = max(j.final, h.final)
			j.proofs = addProofs(slices.Clone(j.proofs), h.proofs)
			s.held[ref] = j
		}
	}
	s.early = maps.Clone(l.early)
	for ref, e := range r.early {
		if j, ok := s.early[ref]; ok {
			e.rng = keyRange{min(j.rng.start, e.rng.start), maxEnd(j.rng.end, e.rng.end)}
			ends := slices.Clone(j.ends)
			for _, rec := range e.ends {
				ends = addEnd(ends, rec)
			}
			e.ends = ends
		}
		s.early[ref] = e
	}
}
