// Package routepb converts routed events (libs/route) to and from their
// wire form in the sorter's Ingest API (proto/tistream/sorter/v1): the
// dispatcher encodes, the sorter decodes, with one mapping between them.
// Keys and values are shared with the source, not copied.
package routepb

import (
	"fmt"

	"github.com/pingcap/kvproto/pkg/cdcpb"

	"github.com/tistream/tistream/libs/route"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// ToProto encodes routed events and counts the row events among them. The
// messages of a batch are allocated together (an array each of events,
// incarnations and rows), not three per row event: they live and go as
// one, the request they are sent in.
func ToProto(evs []route.Event) (out []*sorterv1.Event, rows int) {
	out = make([]*sorterv1.Event, len(evs))
	pes := make([]sorterv1.Event, len(evs))
	incs := make([]sorterv1.Incarnation, len(evs))
	withRow := 0
	for i := range evs {
		if evs[i].Kind == route.KindRow && evs[i].Row != nil {
			withRow++
		}
	}
	prs := make([]sorterv1.Row, withRow)
	for i := range evs {
		ev := &evs[i]
		pe, inc := &pes[i], &incs[i]
		inc.RegionId, inc.Version, inc.Term = ev.Inc.RegionID, ev.Inc.Version, ev.Inc.Term
		pe.Inc, pe.Ts = inc, ev.Ts
		switch ev.Kind {
		case route.KindRow:
			pe.Kind = sorterv1.Event_KIND_ROW
			if r := ev.Row; r != nil {
				pr := &prs[0]
				prs = prs[1:]
				rowToProto(pr, r)
				pe.Row = pr
			}
			rows++
		case route.KindRegionStart:
			pe.Kind = sorterv1.Event_KIND_REGION_START
			pe.StartKey, pe.EndKey = ev.Start, ev.End
			for _, p := range ev.Preds {
				pe.Preds = append(pe.Preds, refToProto(p))
			}
		case route.KindRegionEnd:
			pe.Kind = sorterv1.Event_KIND_REGION_END
			pe.StartKey, pe.EndKey = ev.Start, ev.End
			pe.TakeoverStore, pe.TakeoverSeq = ev.TakeoverStore, ev.TakeoverSeq
		case route.KindResolved:
			pe.Kind = sorterv1.Event_KIND_RESOLVED
			pe.Refs = refsToProto(ev.Refs)
		case route.KindLeaderResolved:
			pe.Kind = sorterv1.Event_KIND_LEADER_RESOLVED
			pe.Refs = refsToProto(ev.Refs)
		case route.KindLeaders:
			pe.Kind = sorterv1.Event_KIND_LEADERS
			pe.Refs = refsToProto(ev.Refs)
		}
		out[i] = pe
	}
	return out, rows
}

// FromProto decodes events received over Ingest. An event of an unknown
// kind, or a row event without a row, is an error naming its index. The
// rows of a batch are allocated together, as ToProto's messages are.
func FromProto(evs []*sorterv1.Event) ([]route.Event, error) {
	out := make([]route.Event, len(evs))
	withRow := 0
	for _, pe := range evs {
		if pe.GetKind() == sorterv1.Event_KIND_ROW && pe.GetRow() != nil {
			withRow++
		}
	}
	rows := make([]cdcpb.Event_Row, withRow)
	for i, pe := range evs {
		ev := &out[i]
		ev.Inc, ev.Ts = refFromProto(pe.GetInc()), pe.GetTs()
		switch pe.GetKind() {
		case sorterv1.Event_KIND_ROW:
			ev.Kind = route.KindRow
			if pe.GetRow() == nil {
				return nil, fmt.Errorf("event %d: row event without a row", i)
			}
			ev.Row = &rows[0]
			rows = rows[1:]
			rowFromProto(ev.Row, pe.GetRow())
		case sorterv1.Event_KIND_REGION_START:
			ev.Kind = route.KindRegionStart
			ev.Start, ev.End = pe.GetStartKey(), pe.GetEndKey()
			for _, p := range pe.GetPreds() {
				ev.Preds = append(ev.Preds, refFromProto(p))
			}
		case sorterv1.Event_KIND_REGION_END:
			ev.Kind = route.KindRegionEnd
			ev.Start, ev.End = pe.GetStartKey(), pe.GetEndKey()
			ev.TakeoverStore, ev.TakeoverSeq = pe.GetTakeoverStore(), pe.GetTakeoverSeq()
		case sorterv1.Event_KIND_RESOLVED:
			ev.Kind = route.KindResolved
			ev.Refs = refsFromProto(pe.GetRefs())
		case sorterv1.Event_KIND_LEADER_RESOLVED:
			ev.Kind = route.KindLeaderResolved
			ev.Refs = refsFromProto(pe.GetRefs())
		case sorterv1.Event_KIND_LEADERS:
			ev.Kind = route.KindLeaders
			ev.Refs = refsFromProto(pe.GetRefs())
		default:
			return nil, fmt.Errorf("event %d: unknown kind %v", i, pe.GetKind())
		}
	}
	return out, nil
}

func refToProto(r route.Ref) *sorterv1.Incarnation {
	return &sorterv1.Incarnation{RegionId: r.RegionID, Version: r.Version, Term: r.Term}
}

func refsToProto(rs []route.Ref) []*sorterv1.Incarnation {
	if len(rs) == 0 {
		return nil
	}
	out := make([]*sorterv1.Incarnation, len(rs))
	for i, r := range rs {
		out[i] = refToProto(r)
	}
	return out
}

func refsFromProto(rs []*sorterv1.Incarnation) []route.Ref {
	if len(rs) == 0 {
		return nil
	}
	out := make([]route.Ref, len(rs))
	for i, r := range rs {
		out[i] = refFromProto(r)
	}
	return out
}

func refFromProto(r *sorterv1.Incarnation) route.Ref {
	return route.Ref{RegionID: r.GetRegionId(), Version: r.GetVersion(), Term: r.GetTerm()}
}

// The row types and ops of both forms, in one table each way.
var (
	typeToProto = map[cdcpb.Event_LogType]sorterv1.RowType{
		cdcpb.Event_PREWRITE:  sorterv1.RowType_ROW_TYPE_PREWRITE,
		cdcpb.Event_COMMIT:    sorterv1.RowType_ROW_TYPE_COMMIT,
		cdcpb.Event_ROLLBACK:  sorterv1.RowType_ROW_TYPE_ROLLBACK,
		cdcpb.Event_COMMITTED: sorterv1.RowType_ROW_TYPE_COMMITTED,
	}
	opToProto = map[cdcpb.Event_Row_OpType]sorterv1.RowOp{
		cdcpb.Event_Row_PUT:    sorterv1.RowOp_ROW_OP_PUT,
		cdcpb.Event_Row_DELETE: sorterv1.RowOp_ROW_OP_DELETE,
	}
	typeFromProto = invert(typeToProto)
	opFromProto   = invert(opToProto)
)

func invert[K, V comparable](m map[K]V) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

// rowToProto sets pr (a zero Row) from r.
func rowToProto(pr *sorterv1.Row, r *cdcpb.Event_Row) {
	// Types and ops outside the tables stay unspecified (TiKV leaves the op
	// of rollbacks and some commits unknown).
	pr.Type, pr.Op = typeToProto[r.Type], opToProto[r.OpType]
	pr.Key, pr.Value, pr.OldValue = r.Key, r.Value, r.OldValue
	pr.StartTs, pr.CommitTs, pr.Generation = r.StartTs, r.CommitTs, r.Generation
}

// rowFromProto sets row (a zero Event_Row) from r.
func rowFromProto(row *cdcpb.Event_Row, r *sorterv1.Row) {
	row.Key, row.Value, row.OldValue = r.Key, r.Value, r.OldValue
	row.StartTs, row.CommitTs, row.Generation = r.StartTs, r.CommitTs, r.Generation
	row.Type, row.OpType = cdcpb.Event_UNKNOWN, cdcpb.Event_Row_UNKNOWN
	if t, ok := typeFromProto[r.Type]; ok {
		row.Type = t
	}
	if op, ok := opFromProto[r.Op]; ok {
		row.OpType = op
	}
}
