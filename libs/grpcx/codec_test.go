package grpcx

import (
	"context"
	"google.golang.org/grpc/mem"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/route/routepb"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// ingestSink is a sorter that hands over the first request it receives,
// decoded as routepb.Received (wire) or as the generated message.
type ingestSink struct {
	sorterv1.UnimplementedSorterServiceServer
	wire bool
	got  chan any
}

func (s *ingestSink) Ingest(stream grpc.BidiStreamingServer[sorterv1.IngestRequest, sorterv1.IngestResponse]) error {
	var m any = &sorterv1.IngestRequest{}
	if s.wire {
		m = &routepb.Received{}
	}
	if err := stream.RecvMsg(m); err != nil {
		return err
	}
	s.got <- m
	return stream.Send(&sorterv1.IngestResponse{Durable: []*sorterv1.Durable{{RangeId: 7}}})
}

func testEvents() []route.Event {
	return []route.Event{
		{Kind: route.KindRegionStart, Inc: route.Ref{RegionID: 2, Version: 1, Term: 1}, Start: []byte("a"), End: []byte("z")},
		{Kind: route.KindRow, Inc: route.Ref{RegionID: 2, Version: 1, Term: 1}, Row: &cdcpb.Event_Row{Type: cdcpb.Event_COMMITTED,
			OpType: cdcpb.Event_Row_PUT, Key: []byte("k"), Value: make([]byte, 300<<10), StartTs: 5, CommitTs: 9}},
		{Kind: route.KindResolved, Refs: []route.Ref{{RegionID: 2, Version: 1, Term: 1}}, Ts: 9},
	}
}

// TestCodecTalksToStockProtobuf: the codec's messages are plain protobuf
// both ways. A client sending routepb.Requests (CallCodec) reaches a
// server with gRPC's own codec and generated messages, and a server of
// NewServerWith reading routepb.Received decodes what a stock client sends
// with generated messages; answers in generated messages pass through the
// codec unchanged. A request above gRPC's pooling threshold takes the
// pooled path.
func TestCodecTalksToStockProtobuf(t *testing.T) {
	evs := testEvents()
	pevs, _ := routepb.ToProto(evs)
	generated := &sorterv1.IngestRequest{TenantId: 1, StoreId: 3, Seq: 4, MaxTs: 9, Dispatcher: "d",
		Batches: []*sorterv1.RangeBatch{{RangeId: 7, RangeEpoch: 2, PrevSeq: 1, Events: pevs}}}
	wire := &routepb.Request{TenantID: 1, StoreID: 3, Seq: 4, MaxTs: 9, Dispatcher: "d",
		Batches: []routepb.Batch{{RangeID: 7, RangeEpoch: 2, PrevSeq: 1, Events: routepb.EncodeEvents(evs)}}}

	send := func(t *testing.T, addr string, req any, opts ...grpc.CallOption) {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := sorterv1.NewSorterServiceClient(cc).Ingest(ctx, opts...)
		require.NoError(t, err)
		require.NoError(t, stream.SendMsg(req))
		resp, err := stream.Recv()
		require.NoError(t, err)
		require.EqualValues(t, 7, resp.Durable[0].RangeId)
	}

	t.Run("wire client, stock server", func(t *testing.T) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		srv := grpc.NewServer()
		sink := &ingestSink{got: make(chan any, 1)}
		sorterv1.RegisterSorterServiceServer(srv, sink)
		go func() { _ = srv.Serve(lis) }()
		defer srv.Stop()
		send(t, lis.Addr().String(), wire, CallCodec())
		got := (<-sink.got).(*sorterv1.IngestRequest)
		require.True(t, proto.Equal(generated, got), "got %v", got)
	})

	t.Run("stock client, wire server", func(t *testing.T) {
		srv, err := NewServer("127.0.0.1:0", slog.New(slog.DiscardHandler), nil)
		require.NoError(t, err)
		sink := &ingestSink{wire: true, got: make(chan any, 1)}
		sorterv1.RegisterSorterServiceServer(srv.Server, sink)
		go func() { _ = srv.Serve() }()
		defer srv.Close()
		send(t, srv.Addr(), generated)
		got := (<-sink.got).(*routepb.Received)
		require.EqualValues(t, 1, got.TenantID)
		require.Equal(t, "d", got.Dispatcher)
		require.Len(t, got.Batches, 1)
		b := got.Batches[0]
		require.NoError(t, b.Err)
		require.Equal(t, []uint64{7, 2, 1}, []uint64{b.RangeID, b.RangeEpoch, b.PrevSeq})
		require.Len(t, b.Events, 3)
		require.Equal(t, "z", string(b.Events[0].End))
		require.Equal(t, evs[1].Row.Value, b.Events[1].Row.Value)
		require.Equal(t, evs[2].Refs, b.Events[2].Refs)
	})
}

// ownBuffer is a WireUnmarshaler that provides its own buffer.
type ownBuffer struct {
	buf, got []byte
	asked    int
}

func (o *ownBuffer) WireBuffer(n int) []byte {
	o.asked = n
	o.buf = make([]byte, n)
	return o.buf
}

func (o *ownBuffer) UnmarshalWire(b []byte) error { o.got = b; return nil }

// A message that provides its buffer gets the whole encoding copied into
// it, from however many buffers the transport holds it in.
func TestCodecCopiesIntoTheMessagesBuffer(t *testing.T) {
	data := mem.BufferSlice{mem.SliceBuffer([]byte("ab")), mem.SliceBuffer([]byte("cde")), mem.SliceBuffer([]byte("f"))}
	var m ownBuffer
	require.NoError(t, Codec().Unmarshal(data, &m))
	require.Equal(t, 6, m.asked)
	require.Equal(t, []byte("abcdef"), m.got)
	require.Same(t, &m.buf[0], &m.got[0], "decoded from the buffer it gave")
}
