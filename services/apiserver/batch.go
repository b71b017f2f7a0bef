package apiserver

import (
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/usage"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// sendFunc sends one response message of events and returns its size.
type sendFunc func(events []*apiv1.PullEvent) (int, error)

// batcher packs events into response messages of at most maxRows rows and
// about maxBytes bytes of row data, in order.
type batcher struct {
	send              sendFunc
	kind              string
	m                 *metrics
	maxRows, maxBytes int
	events            []*apiv1.PullEvent
	rows, bytes       int
	tenant            uint64
	usage             *usage.Meter // served rows and bytes, counted once sent
}

// rowEventOverhead approximates the framing of a row event beyond its bytes.
const rowEventOverhead = 48

func (b *batcher) row(r *pool.Row, tableID, version int64) error {
	op := apiv1.Op_OP_PUT
	if r.Op == formatv1.Op_OP_DELETE {
		op = apiv1.Op_OP_DELETE
	}
	b.events = append(b.events, &apiv1.PullEvent{Event: &apiv1.PullEvent_Row{Row: &apiv1.RowChange{
		TableId: tableID, CommitTs: r.CommitTs, StartTs: r.StartTs, Op: op,
		Key: r.Key, Value: r.Value, OldValue: r.OldValue, SchemaVersion: version}}})
	b.rows++
	b.bytes += len(r.Key) + len(r.Value) + len(r.OldValue) + rowEventOverhead
	b.m.rowsSent.WithLabelValues(b.kind).Inc()
	if b.rows >= b.maxRows || b.bytes >= b.maxBytes {
		return b.flush()
	}
	return nil
}

func (b *batcher) ddl(d *apiv1.DDL) error {
	b.events = append(b.events, &apiv1.PullEvent{Event: &apiv1.PullEvent_Ddl{Ddl: d}})
	b.bytes += len(d.TableInfoJson) + rowEventOverhead
	b.m.ddlsSent.WithLabelValues(b.kind).Inc()
	return nil
}

func (b *batcher) resolved(ts uint64) {
	b.events = append(b.events, &apiv1.PullEvent{Event: &apiv1.PullEvent_Resolved{Resolved: &apiv1.Resolved{Ts: ts}}})
}

// flush sends what is packed. A message is never modified after it is sent.
func (b *batcher) flush() error {
	if len(b.events) == 0 {
		return nil
	}
	n, err := b.send(b.events)
	rows := b.rows
	b.events, b.rows, b.bytes = nil, 0, 0
	if err != nil {
		return err
	}
	b.usage.Served(b.tenant, rows, n)
	b.m.messagesSent.WithLabelValues(b.kind).Inc()
	b.m.bytesSent.WithLabelValues(b.kind).Add(float64(n))
	return nil
}
