package storefeed

import (
	"fmt"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/formats/storeline"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// stream is one store's stream: the regions it leads and its open file.
type stream struct {
	id      uint64
	seq     uint64
	prevMax uint64
	// led writes each header's leader list: in full periodically, else
	// as a delta (store file format version 2).
	led   *storefile.Leaders
	recs  []record
	maxTs uint64 // greatest ts in the open file
	rows  int
}

type record struct {
	ev *cdcpb.ChangeDataEvent
	rc *formatv1.RegionChange
}

func newStream(id uint64) *stream {
	return &stream{id: id, led: storefile.NewLeaders(0)}
}

var reasons = map[string]formatv1.RegionChange_Reason{
	storeline.ReasonBootstrap:      formatv1.RegionChange_REASON_BOOTSTRAP,
	storeline.ReasonLeaderTransfer: formatv1.RegionChange_REASON_LEADER_TRANSFER,
	storeline.ReasonSplit:          formatv1.RegionChange_REASON_SPLIT,
	storeline.ReasonMerge:          formatv1.RegionChange_REASON_MERGE,
	storeline.ReasonRollbackMerge:  formatv1.RegionChange_REASON_ROLLBACK_MERGE,
}

func (s *stream) start(l *storeline.Line) error {
	if _, ok := s.led.Led(l.Region.ID); ok {
		return fmt.Errorf("store %d starts region %d, which it already leads", s.id, l.Region.ID)
	}
	reason, ok := reasons[l.Reason]
	if !ok {
		return fmt.Errorf("store %d: start of region %d: unknown reason %q", s.id, l.Region.ID, l.Reason)
	}
	r := l.Region
	m := &metapb.Region{Id: r.ID, StartKey: tidbcodec.EncodeRegionKey(r.Start), EndKey: tidbcodec.EncodeRegionKey(r.End),
		RegionEpoch: &metapb.RegionEpoch{ConfVer: r.ConfVer, Version: r.Version}}
	for _, p := range r.Peers {
		m.Peers = append(m.Peers, &metapb.Peer{Id: p.ID, StoreId: p.Store})
	}
	inc, err := storefile.Incarnation{Region: m, Term: l.Term}.Encode()
	if err != nil {
		return err
	}
	rc := &formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_START, Reason: reason, Incarnation: inc}
	for _, p := range l.Preds {
		rc.Predecessors = append(rc.Predecessors, &formatv1.IncarnationRef{RegionId: p.ID, Version: p.Version, Term: p.Term})
	}
	s.led.Start(r.ID, inc)
	s.recs = append(s.recs, record{rc: rc})
	return nil
}

func (s *stream) end(l *storeline.Line) error {
	inc, ok := s.led.Led(l.RegionID)
	if !ok {
		return fmt.Errorf("store %d ends region %d, which it does not lead", s.id, l.RegionID)
	}
	rc := &formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_END, Reason: reasons[l.Reason], Incarnation: inc, ResolvedTs: l.Resolved}
	s.led.End(l.RegionID)
	s.recs = append(s.recs, record{rc: rc})
	s.maxTs = max(s.maxTs, l.Resolved)
	return nil
}

var rowTypes = map[string]cdcpb.Event_LogType{
	storeline.RowPrewrite:  cdcpb.Event_PREWRITE,
	storeline.RowCommit:    cdcpb.Event_COMMIT,
	storeline.RowRollback:  cdcpb.Event_ROLLBACK,
	storeline.RowCommitted: cdcpb.Event_COMMITTED,
}

func (s *stream) rowsOf(l *storeline.Line) error {
	if _, ok := s.led.Led(l.RegionID); !ok {
		return fmt.Errorf("store %d writes rows of region %d, which it does not lead", s.id, l.RegionID)
	}
	for i := range l.Rows {
		r := &l.Rows[i]
		row := &cdcpb.Event_Row{StartTs: r.StartTs, CommitTs: r.CommitTs, Type: rowTypes[r.Type], Key: r.Key,
			Value: r.Value, OldValue: r.OldValue, Generation: r.Gen}
		switch r.Op {
		case storeline.OpPut:
			row.OpType = cdcpb.Event_Row_PUT
		case storeline.OpDelete:
			row.OpType = cdcpb.Event_Row_DELETE
		}
		s.maxTs = max(s.maxTs, r.StartTs, r.CommitTs)
		s.appendRow(l.RegionID, row)
	}
	return nil
}

// appendRow groups consecutive rows of one region into one cdcpb.Event.
func (s *stream) appendRow(regionID uint64, row *cdcpb.Event_Row) {
	s.rows++
	var last *cdcpb.ChangeDataEvent
	if n := len(s.recs); n > 0 {
		last = s.recs[n-1].ev
	}
	if ev := storefile.AppendRow(last, regionID, row); ev != nil {
		s.recs = append(s.recs, record{ev: ev})
	}
}

func (s *stream) resolved(l *storeline.Line) error {
	for _, id := range l.Regions {
		if _, ok := s.led.Led(id); !ok {
			return fmt.Errorf("store %d publishes a resolved ts of region %d, which it does not lead", s.id, id)
		}
	}
	s.maxTs = max(s.maxTs, l.Ts)
	s.recs = append(s.recs, record{ev: &cdcpb.ChangeDataEvent{ResolvedTs: &cdcpb.ResolvedTs{Regions: l.Regions, Ts: l.Ts}}})
	return nil
}

// cut encodes the open file and opens the next one.
func (s *stream) cut(l *storeline.Line, cluster, tenant uint64, producer string) (*formatv1.StoreFileHeader, []byte, error) {
	if l.MaxTs < s.maxTs || l.MaxTs < s.prevMax {
		return nil, nil, fmt.Errorf("store %d: cut with max_ts %d below a ts of its file (%d) or the previous max_ts (%d)",
			s.id, l.MaxTs, s.maxTs, s.prevMax)
	}
	h := &formatv1.StoreFileHeader{ClusterId: cluster, TenantId: tenant, StoreId: s.id, Seq: s.seq + 1, PrevMaxTs: s.prevMax,
		MaxTs: l.MaxTs, CreatedUnixMs: l.UnixMs, Producer: producer}
	s.led.Header(h)
	w, err := storefile.NewWriter(h)
	if err != nil {
		return nil, nil, err
	}
	for _, rec := range s.recs {
		if rec.ev != nil {
			err = w.AddEvent(rec.ev)
		} else {
			err = w.AddRegionChange(rec.rc)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	b, err := w.Finish()
	if err != nil {
		return nil, nil, err
	}
	s.seq++
	s.prevMax = l.MaxTs
	s.recs, s.rows, s.maxTs = nil, 0, 0
	s.led.Opened(h)
	return h, b, nil
}
