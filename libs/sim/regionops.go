package sim

import (
	"bytes"

	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// startIncarnation makes r's current incarnation start in its leader's stream.
func (s *Sim) startIncarnation(tn *tenant, r *region, reason formatv1.RegionChange_Reason, preds []*formatv1.IncarnationRef) {
	st := tn.streams[r.leader]
	r.st = st
	r.pub, r.joinGen, r.exceptGen = 0, st.gen, 0
	r.upPub, r.upCut = 0, st.seq
	r.startSeq = 0
	st.lead(r, s.wire(r))
	st.appendChange(r.id, &formatv1.RegionChange{
		Kind: formatv1.RegionChange_KIND_START, Reason: reason, Incarnation: s.wire(r), Predecessors: preds,
	})
}

// endIncarnation ends r's current incarnation in its leader's stream.
func (s *Sim) endIncarnation(tn *tenant, r *region, reason formatv1.RegionChange_Reason) {
	st := tn.streams[r.leader]
	materialize(r)
	st.unlead(r)
	st.appendChange(r.id, &formatv1.RegionChange{
		Kind: formatv1.RegionChange_KIND_END, Reason: reason, Incarnation: s.wire(r), ResolvedTs: r.pub,
	})
}

// split divides the region holding a random row key at that key. Hot
// regions (more rows) split more often, as in TiKV. The left part gets a new
// region id; both parts get the next epoch version. The leader stays.
func (s *Sim) split(tn *tenant) {
	live := tn.liveTables()
	if len(live) == 0 {
		return
	}
	tb := live[s.rng.IntN(len(live))]
	var key []byte
	if m, ok := s.pickMutation(tn, tb); ok {
		key = m.key
	} else {
		return
	}
	r := tn.regions.lookup(key)
	if bytes.Equal(key, r.start) || !s.mayChange(r) {
		return
	}
	parent := r.ref()
	lost := s.endDebt(r)
	s.endIncarnation(tn, r, formatv1.RegionChange_REASON_SPLIT)
	tn.regions.remove(r)
	left := &region{id: s.newRegionID(), start: r.start, end: key, version: r.version + 1, confVer: r.confVer,
		term: firstTerm, leader: r.leader, peers: append([]int(nil), r.peers...), resolved: r.resolved}
	r.start = key
	r.version++
	r.changed()
	for k, ts := range r.locks {
		if left.contains([]byte(k)) {
			r.removeLock([]byte(k))
			left.addLock([]byte(k), ts)
		}
	}
	tn.regions.add(left)
	tn.regions.add(r)
	preds := []*formatv1.IncarnationRef{parent}
	s.startIncarnation(tn, left, formatv1.RegionChange_REASON_SPLIT, preds)
	s.startIncarnation(tn, r, formatv1.RegionChange_REASON_SPLIT, preds)
	if lost != nil {
		// If the leader's crash loses the split, a new leader of both
		// parts takes the parent over.
		ds := []*debt{lost}
		left.preds, left.debts = preds, ds
		r.preds, r.debts = preds, ds
		s.freeze(tn.streams[r.leader], left, r)
	}
	s.stats.Splits++
}

// merge folds a random region into its right neighbour (the target keeps
// its id and leader; its version becomes max(both)+1). The source's leader
// may be on another store, so the two ends land in different streams.
func (s *Sim) merge(tn *tenant) {
	if len(tn.regions.list) <= len(s.storeIDs) {
		return
	}
	src := tn.regions.list[s.rng.IntN(len(tn.regions.list))]
	dst := tn.regions.next(src)
	if dst == nil || !s.mayChange(src, dst) {
		return
	}
	if s.cfg.RollbackMergeRatio > 0 && s.rng.Float64() < s.cfg.RollbackMergeRatio {
		s.rollbackMerge(tn, src)
		return
	}
	preds := []*formatv1.IncarnationRef{src.ref(), dst.ref()}
	lostSrc, lostDst := s.endDebt(src), s.endDebt(dst)
	srcStream := tn.streams[src.leader]
	s.endIncarnation(tn, src, formatv1.RegionChange_REASON_MERGE)
	srcEnd := len(srcStream.recs) - 1
	s.endIncarnation(tn, dst, formatv1.RegionChange_REASON_MERGE)
	tn.regions.remove(src)
	tn.regions.remove(dst)
	dst.start = src.start
	dst.version = max(src.version, dst.version) + 1
	dst.resolved = min(src.resolved, dst.resolved)
	dst.changed()
	for k, ts := range src.locks {
		dst.addLock([]byte(k), ts)
	}
	tn.regions.add(dst)
	s.startIncarnation(tn, dst, formatv1.RegionChange_REASON_MERGE, preds)
	switch {
	case lostDst != nil:
		// The target's leader is about to crash: if the merge is lost, a
		// new leader of the merged region takes over what ended with it.
		dst.preds, dst.debts = preds, []*debt{lostDst}
		if lostSrc != nil {
			dst.debts = []*debt{lostSrc, lostDst}
		}
		s.freeze(tn.streams[dst.leader], dst)
	case lostSrc != nil:
		// Only the source's END may be lost: the merged region's leader
		// then takes the source over.
		srcStream.recs[srcEnd].lostEnd, srcStream.recs[srcEnd].succ = lostSrc, dst
		s.freeze(srcStream, dst)
	}
	s.stats.Merges++
}

// transfer moves a random region's leadership to another peer: a new term
// of the same region version, started in another store's stream.
func (s *Sim) transfer(tn *tenant) {
	r := tn.regions.list[s.rng.IntN(len(tn.regions.list))]
	if len(r.peers) < 2 {
		return
	}
	to := r.peers[1+s.rng.IntN(len(r.peers)-1)]
	if s.quiet(to) || !s.mayChange(r) {
		return
	}
	prev := r.ref()
	from := tn.streams[r.leader]
	lost := s.endDebt(r)
	s.endIncarnation(tn, r, formatv1.RegionChange_REASON_LEADER_TRANSFER)
	if lost != nil {
		// If the crash loses the END, the new leader takes the ended
		// incarnation over after its own START.
		rec := &from.recs[len(from.recs)-1]
		rec.lostEnd, rec.succ = lost, r
		s.freeze(from, r)
	}
	r.lead(to)
	s.startIncarnation(tn, r, formatv1.RegionChange_REASON_LEADER_TRANSFER, []*formatv1.IncarnationRef{prev})
	s.stats.Transfers++
}

// rollbackMerge is a merge of src that TiKV rolled back after the source's
// leader applied PrepareMerge: the source ends as for a merge, then starts
// again at version+2 (PrepareMerge and RollbackMerge each raise the version)
// under the same leader and term, naming the ended incarnation. The target
// is untouched.
func (s *Sim) rollbackMerge(tn *tenant, src *region) {
	prev := src.ref()
	lost := s.endDebt(src)
	s.endIncarnation(tn, src, formatv1.RegionChange_REASON_MERGE)
	src.version += 2
	src.changed()
	preds := []*formatv1.IncarnationRef{prev}
	s.startIncarnation(tn, src, formatv1.RegionChange_REASON_ROLLBACK_MERGE, preds)
	if lost != nil {
		src.preds, src.debts = preds, []*debt{lost}
		s.freeze(tn.streams[src.leader], src)
	}
	s.stats.RollbackMerges++
}
