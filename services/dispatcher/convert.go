package dispatcher

import (
	"github.com/pingcap/kvproto/pkg/cdcpb"

	"github.com/tistream/tistream/libs/route"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// toProtoEvents converts a routed batch's events to the Ingest wire form.
// Keys and values are shared with the decoded file, not copied.
func toProtoEvents(evs []route.Event) (out []*sorterv1.Event, rows int) {
	out = make([]*sorterv1.Event, len(evs))
	for i := range evs {
		ev := &evs[i]
		pe := &sorterv1.Event{Inc: toProtoRef(ev.Inc), Ts: ev.Ts}
		switch ev.Kind {
		case route.KindRow:
			pe.Kind = sorterv1.Event_KIND_ROW
			pe.Row = toProtoRow(ev.Row)
			rows++
		case route.KindRegionStart:
			pe.Kind = sorterv1.Event_KIND_REGION_START
			pe.StartKey, pe.EndKey = ev.Start, ev.End
			for _, p := range ev.Preds {
				pe.Preds = append(pe.Preds, toProtoRef(p))
			}
		case route.KindRegionEnd:
			pe.Kind = sorterv1.Event_KIND_REGION_END
			pe.StartKey, pe.EndKey = ev.Start, ev.End
		case route.KindResolved:
			pe.Kind = sorterv1.Event_KIND_RESOLVED
			for _, r := range ev.Refs {
				pe.Refs = append(pe.Refs, toProtoRef(r))
			}
		}
		out[i] = pe
	}
	return out, rows
}

func toProtoRef(r route.Ref) *sorterv1.Incarnation {
	return &sorterv1.Incarnation{RegionId: r.RegionID, Version: r.Version, Term: r.Term}
}

func toProtoRow(r *cdcpb.Event_Row) *sorterv1.Row {
	if r == nil {
		return nil
	}
	row := &sorterv1.Row{Key: r.Key, Value: r.Value, OldValue: r.OldValue, StartTs: r.StartTs, CommitTs: r.CommitTs}
	switch r.Type {
	case cdcpb.Event_PREWRITE:
		row.Type = sorterv1.RowType_ROW_TYPE_PREWRITE
	case cdcpb.Event_COMMIT:
		row.Type = sorterv1.RowType_ROW_TYPE_COMMIT
	case cdcpb.Event_ROLLBACK:
		row.Type = sorterv1.RowType_ROW_TYPE_ROLLBACK
	case cdcpb.Event_COMMITTED:
		row.Type = sorterv1.RowType_ROW_TYPE_COMMITTED
	}
	switch r.OpType {
	case cdcpb.Event_Row_PUT:
		row.Op = sorterv1.RowOp_ROW_OP_PUT
	case cdcpb.Event_Row_DELETE:
		row.Op = sorterv1.RowOp_ROW_OP_DELETE
	}
	return row
}
