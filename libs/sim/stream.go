package sim

import (
	"sort"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/tistream/tistream/libs/formats/storefile"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// maxRowsPerEvent and maxEventsPerBatch bound how rows are grouped into
// cdcpb messages, as TiKV batches them.
const (
	maxRowsPerEvent   = 512
	maxEventsPerBatch = 64
)

// stream is what one store pushes for one tenant: the records of the open
// file and the incarnations it leads.
type stream struct {
	storeID uint64
	seq     uint64 // seq of the last file cut
	prevMax uint64
	led     map[uint64]*region
	// header leaders of the open file: the incarnations led when it opened
	openLeaders []*formatv1.RegionIncarnation
	recs        []pendingRecord
	logIndex    uint64
	rows        int // rows in the open file
}

// pendingRecord is one record of the open file: an event batch or a region change.
type pendingRecord struct {
	ev *cdcpb.ChangeDataEvent
	rc *formatv1.RegionChange
}

func newStream(storeID uint64) *stream {
	return &stream{storeID: storeID, led: make(map[uint64]*region)}
}

// appendRow adds a row of region regionID to the open file, grouping rows of
// consecutive writes to the same region into one cdcpb.Event.
func (s *stream) appendRow(regionID uint64, row *cdcpb.Event_Row) {
	s.rows++
	if n := len(s.recs); n > 0 && s.recs[n-1].ev != nil && s.recs[n-1].ev.ResolvedTs == nil {
		batch := s.recs[n-1].ev
		last := batch.Events[len(batch.Events)-1]
		if last.RegionId == regionID && len(last.GetEntries().Entries) < maxRowsPerEvent {
			en := last.GetEntries()
			en.Entries = append(en.Entries, row)
			return
		}
		if len(batch.Events) < maxEventsPerBatch {
			batch.Events = append(batch.Events, s.newEvent(regionID, row))
			return
		}
	}
	s.recs = append(s.recs, pendingRecord{ev: &cdcpb.ChangeDataEvent{Events: []*cdcpb.Event{s.newEvent(regionID, row)}}})
}

func (s *stream) newEvent(regionID uint64, row *cdcpb.Event_Row) *cdcpb.Event {
	s.logIndex++
	return &cdcpb.Event{
		RegionId: regionID,
		Index:    s.logIndex,
		Event:    &cdcpb.Event_Entries_{Entries: &cdcpb.Event_Entries{Entries: []*cdcpb.Event_Row{row}}},
	}
}

func (s *stream) appendChange(rc *formatv1.RegionChange) {
	s.recs = append(s.recs, pendingRecord{rc: rc})
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

// ledSorted lists the led regions by id, for deterministic output.
func (s *stream) ledSorted() []*region {
	rs := make([]*region, 0, len(s.led))
	for _, r := range s.led {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].id < rs[j].id })
	return rs
}

// cut encodes the open file with the given header fields and opens the next.
func (s *stream) cut(h *formatv1.StoreFileHeader, wire func(*region) *formatv1.RegionIncarnation) ([]byte, error) {
	s.seq++
	h.StoreId = s.storeID
	h.Seq = s.seq
	h.PrevMaxTs = s.prevMax
	h.LeaderRegions = s.openLeaders
	w, err := storefile.NewWriter(h)
	if err != nil {
		return nil, err
	}
	for _, rec := range s.recs {
		if rec.ev != nil {
			err = w.AddEvent(rec.ev)
		} else {
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
	s.prevMax = h.MaxTs
	s.recs = s.recs[:0]
	s.rows = 0
	led := s.ledSorted()
	s.openLeaders = make([]*formatv1.RegionIncarnation, len(led))
	for i, r := range led {
		s.openLeaders[i] = wire(r)
	}
	return b, nil
}
