package apiserver

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/pool"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// TestResponseBytesAreProtoMarshals pins the batcher's messages to the
// generated code: for random rows (empty, zero and extreme fields among
// them), resolved and DDL events, each message is byte for byte
// proto.Marshal of the PullTenantResponse (and so of PullTableResponse and
// PullDBResponse, the same message) holding the same events, and its
// reported size is its length.
func TestResponseBytesAreProtoMarshals(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 9))
	bytesOf := func() []byte {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return []byte{}
		default:
			b := make([]byte, rng.IntN(300))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			return b
		}
	}
	u64 := func() uint64 {
		switch rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return math.MaxUint64
		default:
			return rng.Uint64() >> rng.IntN(64)
		}
	}
	var sent []*response
	b := &batcher{maxRows: 7, maxBytes: 2000, m: newMetrics(prometheus.NewRegistry(), nil), kind: kindTenant,
		send: func(m *response) (int, error) {
			// As the servers' codec does: the bytes are copied by the time
			// SendMsg returns (the batcher writes the next message over them).
			sent = append(sent, &response{b: m.AppendWire(nil)})
			return m.WireSize(), nil
		}}
	var want [][]*apiv1.PullEvent
	var cur []*apiv1.PullEvent
	for i := 0; i < 3000; i++ {
		switch k := rng.IntN(20); {
		case k == 0:
			ts := u64()
			b.resolved(ts)
			cur = append(cur, &apiv1.PullEvent{Event: &apiv1.PullEvent_Resolved{Resolved: &apiv1.Resolved{Ts: ts}}})
		case k == 1:
			d := &apiv1.DDL{CommitTs: u64(), DbName: "db", TableName: "t", TableInfoJson: bytesOf()}
			require.NoError(t, b.ddl(d))
			cur = append(cur, &apiv1.PullEvent{Event: &apiv1.PullEvent_Ddl{Ddl: d}})
		default:
			op := formatv1.Op_OP_PUT
			if rng.IntN(3) == 0 {
				op = formatv1.Op_OP_DELETE
			}
			r := pool.Row{CommitTs: u64(), StartTs: u64(), Op: op, Key: bytesOf(), Value: bytesOf(), OldValue: bytesOf()}
			table, version := int64(u64()), int64(u64())
			if rng.IntN(5) == 0 {
				table, version = -table, -version
			}
			before := len(sent)
			require.NoError(t, b.row(&r, table, version))
			wantOp := apiv1.Op_OP_PUT
			if op == formatv1.Op_OP_DELETE {
				wantOp = apiv1.Op_OP_DELETE
			}
			cur = append(cur, &apiv1.PullEvent{Event: &apiv1.PullEvent_Row{Row: &apiv1.RowChange{TableId: table, CommitTs: r.CommitTs,
				StartTs: r.StartTs, Op: wantOp, Key: r.Key, Value: r.Value, OldValue: r.OldValue, SchemaVersion: version}}})
			if len(sent) > before { // the row closed a message
				want, cur = append(want, cur), nil
			}
		}
	}
	require.NoError(t, b.flush())
	want = append(want, cur)
	require.Len(t, sent, len(want))
	for i, m := range sent {
		pb, err := proto.Marshal(&apiv1.PullTenantResponse{Events: want[i]})
		require.NoError(t, err)
		require.Equal(t, pb, m.b, "message %d", i)
		var back apiv1.PullTableResponse
		require.NoError(t, proto.Unmarshal(m.b, &back), "message %d", i)
		require.Len(t, back.Events, len(want[i]))
	}
}
