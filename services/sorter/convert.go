package sorter

import (
	"fmt"

	"github.com/pingcap/kvproto/pkg/cdcpb"

	"github.com/tistream/tistream/libs/route"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// fromProtoEvents converts a RangeBatch's events to the routed form
// libs/sorter applies; the inverse of the dispatcher's toProtoEvents. Keys
// and values are shared with the request, not copied.
func fromProtoEvents(evs []*sorterv1.Event) ([]route.Event, error) {
	out := make([]route.Event, len(evs))
	for i, pe := range evs {
		ev := &out[i]
		ev.Inc, ev.Ts = fromProtoRef(pe.GetInc()), pe.GetTs()
		switch pe.GetKind() {
		case sorterv1.Event_KIND_ROW:
			ev.Kind = route.KindRow
			row, err := fromProtoRow(pe.GetRow())
			if err != nil {
				return nil, fmt.Errorf("event %d: %w", i, err)
			}
			ev.Row = row
		case sorterv1.Event_KIND_REGION_START:
			ev.Kind = route.KindRegionStart
			ev.Start, ev.End = pe.GetStartKey(), pe.GetEndKey()
			for _, p := range pe.GetPreds() {
				ev.Preds = append(ev.Preds, fromProtoRef(p))
			}
		case sorterv1.Event_KIND_REGION_END:
			ev.Kind = route.KindRegionEnd
			ev.Start, ev.End = pe.GetStartKey(), pe.GetEndKey()
		case sorterv1.Event_KIND_RESOLVED:
			ev.Kind = route.KindResolved
			for _, r := range pe.GetRefs() {
				ev.Refs = append(ev.Refs, fromProtoRef(r))
			}
		default:
			return nil, fmt.Errorf("event %d: unknown kind %v", i, pe.GetKind())
		}
	}
	return out, nil
}

func fromProtoRef(r *sorterv1.Incarnation) route.Ref {
	return route.Ref{RegionID: r.GetRegionId(), Version: r.GetVersion(), Term: r.GetTerm()}
}

func fromProtoRow(r *sorterv1.Row) (*cdcpb.Event_Row, error) {
	if r == nil {
		return nil, fmt.Errorf("row event without a row")
	}
	row := &cdcpb.Event_Row{Key: r.Key, Value: r.Value, OldValue: r.OldValue, StartTs: r.StartTs, CommitTs: r.CommitTs}
	switch r.Type {
	case sorterv1.RowType_ROW_TYPE_PREWRITE:
		row.Type = cdcpb.Event_PREWRITE
	case sorterv1.RowType_ROW_TYPE_COMMIT:
		row.Type = cdcpb.Event_COMMIT
	case sorterv1.RowType_ROW_TYPE_ROLLBACK:
		row.Type = cdcpb.Event_ROLLBACK
	case sorterv1.RowType_ROW_TYPE_COMMITTED:
		row.Type = cdcpb.Event_COMMITTED
	default:
		// The dispatcher sends no other type; one the range ignores.
		row.Type = cdcpb.Event_UNKNOWN
	}
	switch r.Op {
	case sorterv1.RowOp_ROW_OP_PUT:
		row.OpType = cdcpb.Event_Row_PUT
	case sorterv1.RowOp_ROW_OP_DELETE:
		row.OpType = cdcpb.Event_Row_DELETE
	default:
		// Rollbacks and some commits carry no op: TiKV leaves it unknown.
		row.OpType = cdcpb.Event_Row_UNKNOWN
	}
	return row, nil
}
