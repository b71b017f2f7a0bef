package sim

import (
	"bytes"

	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// startIncarnation makes r's current incarnation start in its leader's stream.
func (s *Sim) startIncarnation(tn *tenant, r *region, reason formatv1.RegionChange_Reason, preds []*formatv1.IncarnationRef) {
	st := tn.streams[r.leader]
	st.led[r.id] = r
	r.published = 0
	st.appendChange(&formatv1.RegionChange{
		Kind: formatv1.RegionChange_KIND_START, Reason: reason, Incarnation: s.wire(r), Predecessors: preds,
	})
}

// endIncarnation ends r's current incarnation in its leader's stream.
func (s *Sim) endIncarnation(tn *tenant, r *region, reason formatv1.RegionChange_Reason) {
	st := tn.streams[r.leader]
	delete(st.led, r.id)
	st.appendChange(&formatv1.RegionChange{
		Kind: formatv1.RegionChange_KIND_END, Reason: reason, Incarnation: s.wire(r), ResolvedTs: r.published,
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
	if bytes.Equal(key, r.start) {
		return
	}
	parent := r.ref()
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
	if dst == nil {
		return
	}
	preds := []*formatv1.IncarnationRef{src.ref(), dst.ref()}
	s.endIncarnation(tn, src, formatv1.RegionChange_REASON_MERGE)
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
	prev := r.ref()
	s.endIncarnation(tn, r, formatv1.RegionChange_REASON_LEADER_TRANSFER)
	// the new leader becomes peers[0]
	for i, p := range r.peers {
		if p == to {
			r.peers[0], r.peers[i] = r.peers[i], r.peers[0]
		}
	}
	r.leader = to
	r.term++
	r.changed()
	s.startIncarnation(tn, r, formatv1.RegionChange_REASON_LEADER_TRANSFER, []*formatv1.IncarnationRef{prev})
	s.stats.Transfers++
}
