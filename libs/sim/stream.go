package sim

import (
	"sort"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/tistream/tistream/libs/formats/storefile"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// stream is what one store pushes for one tenant: the records of the open
// file and the incarnations it leads.
type stream struct {
	storeID uint64
	seq     uint64 // seq of the last file cut
	prevMax uint64
	led     map[uint64]*region
	// leaders writes each file's header leader list (full or a delta).
	leaders  *storefile.Leaders
	recs     []pendingRecord
	logIndex uint64
	rows     int // rows in the open file

	// Format version 2 resolved ts: the ts of the stream's last
	// LeaderResolvedTs record and how many it wrote (the generation, see
	// region.joinGen), and their values when the last file was cut.
	gTs, gen    uint64
	upTs, upGen uint64
	// dirty are the regions whose state a reader knows changes at the next
	// cut: started here (startSeq), given predecessors or debts.
	dirty []*region

	// lastRecs are the records of the last uploaded file (a "full"
	// takeover writes its rows again).
	lastRecs []pendingRecord
	// frozen are the regions that split, merge or transfer records of
	// this open file (of a store about to crash) created or ended.
	frozen []*region
}

// pendingRecord is one record of the open file: an event batch or a region change.
type pendingRecord struct {
	ev       *cdcpb.ChangeDataEvent
	lr       *formatv1.LeaderResolvedTs
	rc       *formatv1.RegionChange
	regionID uint64 // for rc: the region id
	// lostEnd, for an END of a store about to crash whose successor another
	// store leads (a transfer away, a merge source): the incarnation that
	// successor's leader (succ) takes over if the END is lost.
	lostEnd *debt
	succ    *region
}

func newStream(storeID uint64, cfg *Config) *stream {
	l := storefile.NewLeaders(cfg.FullListEvery)
	l.Version1 = cfg.FormatVersion == 1
	return &stream{storeID: storeID, led: make(map[uint64]*region), leaders: l}
}

// lead records that the stream leads r's current incarnation.
func (s *stream) lead(r *region, wire *formatv1.RegionIncarnation) {
	s.led[r.id] = r
	s.leaders.Start(r.id, wire)
	s.dirty = append(s.dirty, r)
}

// unlead records that the stream no longer leads r.
func (s *stream) unlead(r *region) {
	delete(s.led, r.id)
	s.leaders.End(r.id)
}

// appendRow adds a row of region regionID to the open file, grouping rows of
// consecutive writes to the same region into one cdcpb.Event.
func (s *stream) appendRow(regionID uint64, row *cdcpb.Event_Row) {
	s.rows++
	var last *cdcpb.ChangeDataEvent
	if n := len(s.recs); n > 0 {
		last = s.recs[n-1].ev
	}
	msg, ev := storefile.AppendRowEvent(last, regionID, row)
	if ev != nil {
		s.logIndex++
		ev.Index = s.logIndex
	}
	if msg != nil {
		s.recs = append(s.recs, pendingRecord{ev: msg})
	}
}

func (s *stream) appendChange(regionID uint64, rc *formatv1.RegionChange) {
	s.recs = append(s.recs, pendingRecord{rc: rc, regionID: regionID})
}

// appendResolved publishes ts for the given regions (one cdcpb.ResolvedTs
// per distinct ts, as TiKV groups them).
func (s *stream) appendResolved(byTs map[uint64][]uint64) {
	tss := make([]uint64, 0, len(byTs))
	for ts := range byTs {
		tss = append(tss, ts)
	}
	sort.Slice(tss, func(i, j int) bool { return tss[i] < tss[j] })
	for _, ts := range tss {
		ids := byTs[ts]
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		s.recs = append(s.recs, pendingRecord{ev: &cdcpb.ChangeDataEvent{ResolvedTs: &cdcpb.ResolvedTs{Regions: ids, Ts: ts}}})
	}
}

// appendLeaderResolved publishes ts for every region the stream leads but
// the excepted ones (format version 2), whose own ts follow in byTs.
func (s *stream) appendLeaderResolved(ts uint64, byTs map[uint64][]uint64) {
	var except []uint64
	for _, ids := range byTs {
		except = append(except, ids...)
	}
	sort.Slice(except, func(i, j int) bool { return except[i] < except[j] })
	s.gen++
	s.gTs = ts
	s.recs = append(s.recs, pendingRecord{lr: &formatv1.LeaderResolvedTs{Ts: ts, ExceptRegions: except}})
	s.appendResolved(byTs)
}

// ledSorted lists the led regions by id, for deterministic output.
func (s *stream) ledSorted() []*region {
	rs := make([]*region, 0, len(s.led))
	for _, r := range s.led {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].id < rs[j].id })
	return rs
}

// cut encodes the open file with the given header fields and opens the
// next. Its cost is what changed in the file, not what the store leads.
func (s *stream) cut(h *formatv1.StoreFileHeader) ([]byte, error) {
	s.seq++
	h.StoreId = s.storeID
	h.Seq = s.seq
	h.PrevMaxTs = s.prevMax
	s.leaders.Header(h)
	w, err := storefile.NewWriter(h)
	if err != nil {
		return nil, err
	}
	for _, rec := range s.recs {
		switch {
		case rec.ev != nil:
			err = w.AddEvent(rec.ev)
		case rec.lr != nil:
			err = w.AddLeaderResolved(rec.lr)
		default:
			err = w.AddRegionChange(rec.rc)
		}
		if err != nil {
			return nil, err
		}
	}
	b, err := w.Finish()
	if err != nil {
		return nil, err
	}
	s.leaders.Opened(h)
	s.prevMax = h.MaxTs
	s.lastRecs = s.recs
	s.recs = nil
	s.rows = 0
	// What a reader now knows: the START of every led incarnation, the
	// last resolved ts each published (see upPublished), and every takeover
	// END that was due with them, which is in this file or in the file of
	// another store cut at the same time (a region led by another store
	// after a takeover here is cleared by that store's cut).
	for _, r := range s.dirty {
		if s.led[r.id] != r {
			continue
		}
		if r.startSeq == 0 {
			r.startSeq = s.seq
		}
		r.preds, r.debts = nil, nil
	}
	s.dirty = nil
	s.upTs, s.upGen = s.gTs, s.gen
	for _, r := range s.frozen {
		if r.frozenIn == s {
			r.frozenIn = nil
		}
	}
	s.frozen = nil
	return b, nil
}
