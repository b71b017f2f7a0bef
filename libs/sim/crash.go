package sim

import (
	"fmt"
	"slices"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// storeState is the crash state of one store, shared by every tenant's
// stream of that store.
type storeState struct {
	down bool
	// planned: a crash is coming. From the moment it is planned, no
	// leadership is transferred to the store (only takeovers may make it
	// lead new incarnations), and the regions its splits, merges and
	// transfers make or end are frozen until its next cut, so a crash finds
	// in the open file it loses at most one region change per region (see
	// mayChange), whose successors it can take over.
	planned   bool
	scheduled bool // the crash is on the scheduler
	// cascadeOf >= 0: the crash is the second of a cascade. It happens
	// right after that store's crash, before this store's next cut, so the
	// takeovers it has just written are lost too.
	cascadeOf int
}

// debt is an incarnation a reader knows (its START was uploaded) whose END
// is not uploaded: its leader's store is about to crash with the END in its
// open file, or crashed before writing it. If the END is lost, the next
// leader of its keys writes a takeover END for it.
type debt struct {
	ref      *formatv1.IncarnationRef
	wire     *formatv1.RegionIncarnation
	store    int    // index of its leader's store
	resolved uint64 // greatest resolved ts of it in the uploaded files
	// Filled in when the store crashes: its last uploaded file, which
	// mentions the incarnation (through_seq), and the incarnation's rows in
	// that file, which a "full" takeover writes again.
	filled bool
	seq    uint64
	dup    []*cdcpb.Event_Row
}

func (s *Sim) initStores() {
	s.stores = make([]storeState, len(s.storeIDs))
	for i := range s.stores {
		s.stores[i].cascadeOf = -1
	}
}

// quiet is true for a store that is down or about to crash: no leadership
// is transferred to it.
func (s *Sim) quiet(i int) bool {
	return s.stores[i].planned || s.stores[i].down
}

// mayChange is true when regions rs may take part in one split, merge or
// transfer now. A region an earlier one made or ended in the open file of
// a store about to crash is frozen until that file is cut or lost. With a
// store about to crash involved, the regions' incarnations must be known to
// a reader (STARTs uploaded, no takeover due), no second such store may be
// involved, and resolved ts must be published only at cuts, so that a new
// leader that takes over a lost END has published no resolved ts of its own
// incarnation before it writes the lost rows.
func (s *Sim) mayChange(rs ...*region) bool {
	planned := -1
	for _, r := range rs {
		if r.frozenIn != nil {
			return false
		}
		if s.stores[r.leader].planned {
			if planned >= 0 && planned != r.leader {
				return false
			}
			planned = r.leader
		}
	}
	if planned < 0 {
		return true
	}
	if s.cfg.ResolveEvery < s.cfg.FlushInterval {
		return false
	}
	for _, r := range rs {
		if r.startSeq == 0 || len(r.debts) > 0 {
			return false
		}
	}
	return true
}

// endDebt is, when r's leader is about to crash, the debt r's current
// incarnation leaves if its END is lost; nil otherwise. Call it before
// the END.
func (s *Sim) endDebt(r *region) *debt {
	if !s.stores[r.leader].planned {
		return nil
	}
	return &debt{ref: r.ref(), wire: s.wire(r), store: r.leader, resolved: upPublished(r)}
}

func (s *Sim) freeze(st *stream, rs ...*region) {
	for _, r := range rs {
		r.frozenIn = st
		st.frozen = append(st.frozen, r)
	}
}

// planCrash picks a store to crash soon, and sometimes a second one that
// crashes right after it (a cascade). At least one store stays out of it.
func (s *Sim) planCrash() {
	var free []int
	for i, st := range s.stores {
		if !st.down && !st.planned {
			free = append(free, i)
		}
	}
	busy := len(s.stores) - len(free)
	if busy+2 > len(s.stores) {
		return
	}
	a := free[s.rng.IntN(len(free))]
	s.stores[a].planned = true
	s.stores[a].cascadeOf = -1
	if busy+3 <= len(s.stores) && s.rng.IntN(3) == 0 {
		others := slices.DeleteFunc(slices.Clone(free), func(i int) bool { return i == a })
		c := others[s.rng.IntN(len(others))]
		s.stores[c].planned = true
		s.stores[c].cascadeOf = a
	}
}

// scheduleCrashes runs right after a cut: a planned store crashes at a
// random tick of the file it has just opened, which was opened after the
// plan, so everything in it follows the rules of a store about to crash.
func (s *Sim) scheduleCrashes() {
	n := max(1, s.cfg.FlushInterval.Milliseconds()/tickMs)
	for i := range s.stores {
		st := &s.stores[i]
		if !st.planned || st.scheduled || st.cascadeOf >= 0 || st.down {
			continue
		}
		st.scheduled = true
		s.sched.at(s.now+tickMs*(1+s.rng.Int64N(n)), func() { s.crashPlanned(i) })
	}
}

func (s *Sim) unplan(a int) {
	s.stores[a].planned = false
	for c := range s.stores {
		if s.stores[c].cascadeOf == a {
			s.stores[c].planned, s.stores[c].cascadeOf = false, -1
		}
	}
}

// canCrash is true when every region store a leads has another peer up to
// take it over.
func (s *Sim) canCrash(a int) bool {
	for _, tn := range s.tenants {
		for _, r := range tn.streams[a].led {
			if len(s.takers(r, a)) == 0 {
				return false
			}
		}
	}
	return true
}

func (s *Sim) takers(r *region, a int) []int {
	var out []int
	for _, p := range r.peers {
		if p != a && !s.stores[p].down {
			out = append(out, p)
		}
	}
	return out
}

func (s *Sim) crashPlanned(a int) {
	s.stores[a].scheduled = false
	if !s.stores[a].planned {
		return
	}
	if !s.canCrash(a) {
		if s.stopGen {
			s.unplan(a)
		}
		return // tried again after the next cut
	}
	cascade := -1
	for c := range s.stores {
		if s.stores[c].cascadeOf == a {
			cascade = c
		}
	}
	took := s.crash(a, cascade)
	if cascade < 0 {
		return
	}
	s.stores[cascade].cascadeOf = -1
	if !took[cascade] {
		s.stores[cascade].planned = false
		return
	}
	// Crash it before its next cut, which may be at the end of this very tick.
	flushMs := s.cfg.FlushInterval.Milliseconds()
	next := (s.now + flushMs - 1) / flushMs * flushMs
	at := s.now + tickMs*s.rng.Int64N((next-s.now)/tickMs+1)
	s.sched.at(at, func() {
		if !s.stores[cascade].planned {
			return
		}
		if !s.canCrash(cascade) {
			s.unplan(cascade)
			return
		}
		s.crash(cascade, -1)
	})
}

// crash makes store a lose its open files (one per tenant) and go down.
// For every region whose events the lost files held, a new leader takes
// over what a reader knows (see takeOver). prefer, if >= 0, is a store to
// give the first group of regions it can lead and about half of the others
// (the second store of a cascade). It returns which stores took regions
// over.
func (s *Sim) crash(a int, prefer int) []bool {
	s.stores[a].down, s.stores[a].planned = true, false
	s.stats.Crashes++
	took := make([]bool, len(s.stores))
	first := true
	for _, tn := range s.tenants {
		st := tn.streams[a]
		var lostRows []*cdcpb.Event_Row
		type lostEnd struct {
			d    *debt
			succ *region
		}
		var lostEnds []lostEnd
		for _, rec := range st.recs {
			switch {
			case rec.ev != nil:
				for _, e := range rec.ev.Events {
					if en := e.GetEntries(); en != nil {
						lostRows = append(lostRows, en.Entries...)
					}
				}
			case rec.rc == nil: // a LeaderResolvedTs
			case rec.rc.Reason == formatv1.RegionChange_REASON_TAKEOVER:
				s.stats.TakeoverEnds-- // never uploaded
			case rec.rc.Kind == formatv1.RegionChange_KIND_END:
				switch rec.rc.Reason {
				case formatv1.RegionChange_REASON_SPLIT:
					s.stats.LostSplits++
				case formatv1.RegionChange_REASON_MERGE:
					s.stats.LostMergeEnds++
				case formatv1.RegionChange_REASON_LEADER_TRANSFER:
					s.stats.LostTransfers++
				}
				if rec.lostEnd != nil {
					lostEnds = append(lostEnds, lostEnd{rec.lostEnd, rec.succ})
				}
			}
		}
		led := st.ledSorted()
		lastRecs := st.lastRecs
		for _, r := range st.frozen {
			if r.frozenIn == st {
				r.frozenIn = nil
			}
		}
		st.recs, st.rows, st.lastRecs, st.frozen, st.dirty = nil, 0, nil, nil, nil
		st.led = make(map[uint64]*region)
		st.leaders.Restart()

		// The groups of regions to take over: the regions the store led
		// (those sharing a debt — the parts of a lost split — go
		// together), then the successors other stores lead of ENDs lost
		// here (a transfer away, a merge source).
		type group struct {
			regions []*region
			to      int // -1: a new leader is elected; else the successor's leader
			ends    []*debt
		}
		var groups []*group
		byDebt := make(map[*debt]*group)
		bySucc := make(map[*region]*group)
		owner := make(map[*region]*group)
		for _, r := range led {
			switch {
			case r.startSeq != 0 && len(r.debts) > 0:
				s.fail(fmt.Errorf("sim bug: region %d's START was uploaded with takeovers still due", r.id))
				return took
			case r.startSeq != 0:
				// The reader knows this incarnation: it is taken over.
				r.preds = []*formatv1.IncarnationRef{r.ref()}
				r.debts = []*debt{{ref: r.ref(), wire: s.wire(r), store: a, resolved: upPublished(r)}}
			case r.preds == nil:
				s.fail(fmt.Errorf("sim bug: region %d's START was lost in store %d's crash and nothing names what it follows", r.id, st.storeID))
				return took
			}
			g := byDebt[r.debts[0]]
			if g == nil {
				g = &group{to: -1}
				byDebt[r.debts[0]] = g
				groups = append(groups, g)
			}
			g.regions = append(g.regions, r)
			owner[r] = g
		}
		for _, le := range lostEnds {
			r := le.succ
			if r.leader == a || tn.regions.byID[r.id] != r || len(r.debts) > 0 && bySucc[r] == nil {
				s.fail(fmt.Errorf("sim bug: region %d changed after a region change store %d lost", r.id, st.storeID))
				return took
			}
			g := bySucc[r]
			if g == nil {
				g = &group{regions: []*region{r}, to: r.leader}
				bySucc[r] = g
				groups = append(groups, g)
				owner[r] = g
			}
			r.debts = append(r.debts, le.d)
			tn.streams[r.leader].dirty = append(tn.streams[r.leader].dirty, r)
		}
		for _, g := range groups {
			for _, r := range g.regions {
				for _, d := range r.debts {
					if !slices.Contains(g.ends, d) {
						g.ends = append(g.ends, d)
					}
				}
			}
			for _, d := range g.ends {
				if d.store == a && !d.filled {
					d.filled, d.seq, d.dup = true, st.seq, rowsOf(lastRecs, d.ref.RegionId)
				}
			}
		}
		// Every lost row goes to the region that holds its key now.
		rows := make(map[*region][]*cdcpb.Event_Row)
		for _, row := range lostRows {
			r := tn.regions.lookup(row.Key)
			if owner[r] == nil {
				s.fail(fmt.Errorf("sim bug: store %d lost a row of %x, now in region %d, which nothing takes over", st.storeID, row.Key, r.id))
				return took
			}
			rows[r] = append(rows[r], row)
		}
		for _, g := range groups {
			if g.to >= 0 {
				s.writeTakeover(tn, g.regions, g.ends, g.to, rows, false)
				s.stats.TakeoversOfLostEnds++
				continue
			}
			cands := s.takers(g.regions[0], a)
			to := cands[s.rng.IntN(len(cands))]
			if prefer >= 0 && slices.Contains(cands, prefer) {
				if first || s.rng.IntN(2) == 0 {
					to = prefer
				}
				first = false
			}
			took[to] = true
			s.takeOver(tn, g.regions, g.ends, to, rows)
		}
	}
	s.sched.at(s.now+s.cfg.CrashDown.Milliseconds(), func() {
		s.stores[a].down = false
		s.stats.Restarts++
	})
	return took
}

// rowsOf returns the rows of region id in a file's records that come after
// its last region change there: the rows of the incarnation led at the end.
func rowsOf(recs []pendingRecord, id uint64) []*cdcpb.Event_Row {
	var out []*cdcpb.Event_Row
	for _, rec := range recs {
		if rec.rc != nil {
			if rec.regionID == id {
				out = out[:0]
			}
			continue
		}
		if rec.ev == nil {
			continue // a LeaderResolvedTs
		}
		for _, e := range rec.ev.Events {
			if en := e.GetEntries(); en != nil && e.RegionId == id {
				out = append(out, en.Entries...)
			}
		}
	}
	return out
}

// takeOver makes store to the leader of regions rs (one region, or the
// parts of a lost split) at a new term each and writes, per the spec's
// takeover: their STARTs naming what a reader knows precedes them, then
// the lost rows and takeover ENDs (writeTakeover).
func (s *Sim) takeOver(tn *tenant, rs []*region, ends []*debt, to int, rows map[*region][]*cdcpb.Event_Row) {
	// inherited: the STARTs this takeover replaces were written by an
	// earlier takeover (a cascade) and never uploaded
	inherited := false
	for _, d := range ends {
		inherited = inherited || d.store != rs[0].leader
	}
	for _, r := range rs {
		r.lead(to)
		s.startIncarnation(tn, r, formatv1.RegionChange_REASON_LEADER_TRANSFER, r.preds)
	}
	s.writeTakeover(tn, rs, ends, to, rows, inherited)
}

// writeTakeover writes, in the stream of store to, which leads rs: their
// lost rows (a full takeover first writes again the rows the crashed
// leaders' last files hold of the incarnations taken over) and a takeover
// END of every incarnation in ends, oldest first.
func (s *Sim) writeTakeover(tn *tenant, rs []*region, ends []*debt, to int, rows map[*region][]*cdcpb.Event_Row, inherited bool) {
	full := s.rng.IntN(2) == 0
	st := tn.streams[to]
	if full {
		for _, d := range ends {
			for _, row := range d.dup {
				i := slices.IndexFunc(rs, func(r *region) bool { return r.contains(row.Key) })
				if i < 0 {
					s.fail(fmt.Errorf("sim bug: row %x of region %d outside the regions taking it over", row.Key, d.ref.RegionId))
					return
				}
				st.appendRow(rs[i].id, row)
			}
		}
	}
	for _, r := range rs {
		for _, row := range rows[r] {
			st.appendRow(r.id, row)
		}
	}
	for _, d := range ends {
		st.appendChange(d.ref.RegionId, &formatv1.RegionChange{
			Kind: formatv1.RegionChange_KIND_END, Reason: formatv1.RegionChange_REASON_TAKEOVER, Incarnation: d.wire,
			ResolvedTs: d.resolved, Takeover: &formatv1.TakeoverSource{StoreId: s.storeIDs[d.store], ThroughSeq: d.seq},
		})
		s.stats.TakeoverEnds++
	}
	s.stats.Takeovers++
	if full {
		s.stats.TakeoversFull++
	} else {
		s.stats.TakeoversPartial++
	}
	if inherited {
		s.stats.TakeoversCascaded++
	}
}
