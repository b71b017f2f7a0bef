package sim

// Resolved ts in format version 2 cost what changes, not what a store
// leads: a stream writes one LeaderResolvedTs per round for every region it
// leads, except the regions holding locks (regionSet.locked), which get
// their own ts. So a region's resolved ts is not stored per round: a
// region's fields hold what it was last given one by one, and a round that
// covers it adds its leader stream's ts on top.

// covered reports whether the last LeaderResolvedTs of r's leader stream
// gave r's current incarnation its ts: r started before it and was not
// excepted.
func covered(r *region) bool {
	return r.st != nil && r.joinGen < r.st.gen && r.exceptGen != r.st.gen
}

// resolvedOf is r's floor for its next resolved ts.
func resolvedOf(r *region) uint64 {
	if covered(r) {
		return max(r.resolved, r.st.gTs)
	}
	return r.resolved
}

// publishedOf is the last resolved ts r's current incarnation published, 0
// if none.
func publishedOf(r *region) uint64 {
	if covered(r) {
		return max(r.pub, r.st.gTs)
	}
	return r.pub
}

// publishedAtCut is publishedOf as of r's leader stream's last cut, from
// fields unchanged since that cut.
func publishedAtCut(r *region) uint64 {
	st := r.st
	if st != nil && r.joinGen < st.upGen && r.exceptGen != st.upGen {
		return max(r.pub, st.upTs)
	}
	return r.pub
}

// upPublished is the greatest resolved ts of r's current incarnation in its
// leader stream's uploaded files: publishedOf as of that stream's last cut.
func upPublished(r *region) uint64 {
	if r.st != nil && r.upCut == r.st.seq {
		return r.upPub
	}
	return publishedAtCut(r)
}

// save keeps what a reader of the uploaded files knows of r (upPublished)
// before r's fields change for the first time since its stream's last cut.
func save(r *region) {
	if r.st != nil && r.upCut != r.st.seq {
		r.upPub, r.upCut = publishedAtCut(r), r.st.seq
	}
}

// materialize writes what the rounds gave r into its fields (before the
// incarnation ends).
func materialize(r *region) {
	save(r)
	r.resolved, r.pub = resolvedOf(r), publishedOf(r)
	if r.st != nil {
		r.exceptGen = r.st.gen
	}
}

// resolve publishes every led region's resolved ts: the TSO now, held back
// by the oldest lock in the region (TiKV's rule: no later commit at or
// below it). In format version 2 that is one LeaderResolvedTs per stream
// plus the ts of each region that holds a lock below the TSO; in version 1
// a ResolvedTs record per distinct ts naming every region.
func (s *Sim) resolve() {
	ts := s.ts()
	s.maxReadTs = max(s.maxReadTs, ts)
	s.lastResolveTs = ts
	for _, tn := range s.tenants {
		if s.cfg.FormatVersion == 1 {
			s.resolveEach(tn, ts)
			continue
		}
		except := make(map[*stream]map[uint64][]uint64)
		for r := range tn.regions.locked {
			st := tn.streams[r.leader]
			if st.led[r.id] != r {
				continue
			}
			cand := ts
			if ml := r.minLock(); ml != 0 && ml < cand {
				cand = ml
			}
			v := max(resolvedOf(r), cand)
			if v >= ts {
				continue // at the stream's ts: covered by the round
			}
			save(r)
			r.resolved, r.pub, r.exceptGen = v, v, st.gen+1
			if except[st] == nil {
				except[st] = make(map[uint64][]uint64)
			}
			except[st][v] = append(except[st][v], r.id)
		}
		for _, st := range tn.streams {
			if len(st.led) > 0 {
				st.appendLeaderResolved(ts, except[st])
			}
		}
	}
}

// resolveEach is resolve in format version 1: every region one by one.
func (s *Sim) resolveEach(tn *tenant, ts uint64) {
	for _, st := range tn.streams {
		byTs := make(map[uint64][]uint64)
		for _, r := range st.ledSorted() {
			cand := ts
			if ml := r.minLock(); ml != 0 && ml < cand {
				cand = ml
			}
			save(r)
			r.resolved = max(r.resolved, cand)
			r.pub = r.resolved
			byTs[r.resolved] = append(byTs[r.resolved], r.id)
		}
		st.appendResolved(byTs)
	}
}
