package client

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

// randomResponse is a pull response of random rows, resolved ts and (with
// ddl) DDL events, with zero, empty, negative and extreme fields; odd adds
// what only proto.Unmarshal reads (an unknown field, a field repeated).
func randomResponse(rng *rand.Rand, ddl bool) *apiv1.PullTenantResponse {
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
	bytesOf := func() []byte {
		if rng.IntN(3) == 0 {
			return nil
		}
		b := make([]byte, rng.IntN(300))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	m := &apiv1.PullTenantResponse{}
	for i := rng.IntN(40); i > 0; i-- {
		switch k := rng.IntN(10); {
		case k == 0:
			m.Events = append(m.Events, &apiv1.PullEvent{Event: &apiv1.PullEvent_Resolved{Resolved: &apiv1.Resolved{Ts: u64()}}})
		case k == 1 && ddl:
			m.Events = append(m.Events, &apiv1.PullEvent{Event: &apiv1.PullEvent_Ddl{Ddl: &apiv1.DDL{CommitTs: u64(), DbName: "db", TableInfoJson: bytesOf()}}})
		default:
			m.Events = append(m.Events, &apiv1.PullEvent{Event: &apiv1.PullEvent_Row{Row: &apiv1.RowChange{
				TableId: int64(u64()), CommitTs: u64(), StartTs: u64(), Op: apiv1.Op(rng.IntN(4) - 1),
				Key: bytesOf(), Value: bytesOf(), OldValue: bytesOf(), SchemaVersion: -int64(u64() >> 1)}}})
		}
	}
	return m
}

// sameAsProto decodes b with the codec and with proto.Unmarshal and wants
// the same outcome: both errors, or messages proto.Equal.
func sameAsProto(t *testing.T, b []byte) {
	t.Helper()
	c := newPullCodec()
	for _, mk := range []func() proto.Message{
		func() proto.Message { return &apiv1.PullTableResponse{} },
		func() proto.Message { return &apiv1.PullDBResponse{} },
		func() proto.Message { return &apiv1.PullTenantResponse{} },
	} {
		want, got := mk(), mk()
		werr := proto.Unmarshal(b, want)
		gerr := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got)
		if werr != nil {
			require.Error(t, gerr, "proto refused %x: %v", b, werr)
			continue
		}
		require.NoError(t, gerr)
		require.True(t, proto.Equal(want, got), "%x:\nproto %v\ncodec %v", b, want, got)
	}
}

// The codec's responses are proto.Unmarshal's: random messages, with DDLs
// (left to proto) and without, an unknown field appended to an event, a
// row or the response, a PullEvent with two oneof fields, a repeated
// scalar; and the rows of a message the codec read point into one copy of
// its bytes, not into the buffer gRPC reuses.
func TestPullCodecIsProtos(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		m := randomResponse(rng, i%3 == 0)
		b, err := proto.Marshal(m)
		require.NoError(t, err)
		sameAsProto(t, b)
	}
	row := protowire.AppendTag(nil, fRowKey, protowire.BytesType)
	row = protowire.AppendBytes(row, []byte("k"))
	withUnknown := protowire.AppendVarint(protowire.AppendTag(append([]byte(nil), row...), 99, protowire.VarintType), 5)
	event := func(num protowire.Number, msg []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), msg)
	}
	resp := func(events ...[]byte) []byte {
		var b []byte
		for _, e := range events {
			b = protowire.AppendBytes(protowire.AppendTag(b, fRespEvents, protowire.BytesType), e)
		}
		return b
	}
	resolved := protowire.AppendVarint(protowire.AppendTag(nil, fResolvedTs, protowire.VarintType), 7)
	for _, b := range [][]byte{
		resp(event(fEvRow, withUnknown)), // unknown field in a row
		resp(append(event(fEvRow, row), protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1)...)), // in an event
		append(resp(event(fEvRow, row)), protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1)...), // in the response
		resp(append(event(fEvRow, row), event(fEvResolved, resolved)...)),                                                 // two oneof fields: the last wins
		resp(append(event(fEvRow, row), event(fEvRow, row)...)),                                                           // a row merged into the first
		resp(event(fEvResolved, append(append([]byte(nil), resolved...), resolved...))),                                   // a repeated scalar
		resp(event(fEvRow, nil)),     // an empty row
		resp(event(fEvRow, row[:2])), // truncated
	} {
		sameAsProto(t, b)
	}

	m := &apiv1.PullTenantResponse{Events: []*apiv1.PullEvent{{Event: &apiv1.PullEvent_Row{Row: &apiv1.RowChange{Key: []byte("key"), Value: []byte("value")}}}}}
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	got := &apiv1.PullTenantResponse{}
	require.NoError(t, newPullCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got))
	clear(b) // gRPC reuses the buffer it received the message in
	require.Equal(t, "value", string(got.Events[0].GetRow().Value))
}

func FuzzPullCodec(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 20; i++ {
		b, err := proto.Marshal(randomResponse(rng, i%2 == 0))
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) { sameAsProto(t, b) })
}

// BenchmarkPullCodec decodes a full pull response (4,096 rows of 200-byte
// values) with the codec and with the proto codec.
func BenchmarkPullCodec(b *testing.B) {
	m := &apiv1.PullTenantResponse{}
	for i := 0; i < 4096; i++ {
		m.Events = append(m.Events, &apiv1.PullEvent{Event: &apiv1.PullEvent_Row{Row: &apiv1.RowChange{TableId: 100, CommitTs: uint64(470000000000000000 + i),
			StartTs: uint64(469999999999999000 + i), Op: apiv1.Op_OP_PUT, Key: make([]byte, 19), Value: make([]byte, 200), SchemaVersion: 3}}})
	}
	wire, err := proto.Marshal(m)
	require.NoError(b, err)
	data := mem.BufferSlice{mem.SliceBuffer(wire)}
	for _, c := range []struct {
		name  string
		codec interface {
			Unmarshal(mem.BufferSlice, any) error
		}
	}{{"codec", newPullCodec()}, {"proto", newPullCodec().proto}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var r apiv1.PullTenantResponse
				if err := c.codec.Unmarshal(data, &r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/4096, "ns/row")
		})
	}
}
