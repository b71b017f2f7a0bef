package routepb

import (
	"fmt"
	"testing"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/route"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

const benchEvents = 1000

// benchBatch is a range's batch of row events as a busy store's file gives
// it.
func benchBatch() []route.Event {
	evs := make([]route.Event, benchEvents)
	for i := range evs {
		evs[i] = route.Event{Kind: route.KindRow, Inc: route.Ref{RegionID: 7, Version: 3, Term: 2},
			Row: &cdcpb.Event_Row{Type: cdcpb.Event_COMMIT, OpType: cdcpb.Event_Row_PUT, StartTs: uint64(100 + i), CommitTs: uint64(105 + i),
				Key: fmt.Appendf(nil, "t\x80\x00\x00\x00\x00\x00\x00\x64_r%08d", i), Value: make([]byte, 200)}}
	}
	return evs
}

// BenchmarkEncodeBatch is the dispatcher's cost per row event of a range's
// batch on the wire: ToProto, then the request's protobuf encoding.
// go test ./libs/route/routepb -run '^$' -bench 'EncodeBatch|DecodeBatch' -benchmem
func BenchmarkEncodeBatch(b *testing.B) {
	const n = benchEvents
	evs := benchBatch()
	for b.Loop() {
		pb, _ := ToProto(evs)
		req := &sorterv1.IngestRequest{Batches: []*sorterv1.RangeBatch{{RangeId: 1, Events: pb}}}
		if _, err := proto.Marshal(req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/event")
}

// BenchmarkDecodeBatch is the sorter's: the request's protobuf decoding,
// then FromProto.
func BenchmarkDecodeBatch(b *testing.B) {
	pb, _ := ToProto(benchBatch())
	wire, err := proto.Marshal(&sorterv1.IngestRequest{Batches: []*sorterv1.RangeBatch{{RangeId: 1, Events: pb}}})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		req := &sorterv1.IngestRequest{}
		if err := proto.Unmarshal(wire, req); err != nil {
			b.Fatal(err)
		}
		if _, err := FromProto(req.Batches[0].Events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchEvents, "ns/event")
}

// BenchmarkEncodeRequest is the dispatcher's cost per row event today:
// the batch's events encoded once (EncodeEvents), then the request
// written around them (what libs/grpcx's codec does).
// go test ./libs/route/routepb -run '^$' -bench 'Request|Received|Batch' -benchmem
func BenchmarkEncodeRequest(b *testing.B) {
	evs := benchBatch()
	var buf []byte
	for b.Loop() {
		req := &Request{Batches: []Batch{{RangeID: 1, Events: EncodeEvents(evs)}}}
		buf = req.AppendWire(buf[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchEvents, "ns/event")
}

// BenchmarkDecodeReceived is the sorter's: the request's bytes decoded
// into routed events (Received), including the copy of the bytes the
// codec makes.
func BenchmarkDecodeReceived(b *testing.B) {
	wire := (&Request{Batches: []Batch{{RangeID: 1, Events: EncodeEvents(benchBatch())}}}).AppendWire(nil)
	for b.Loop() {
		// As the sorter gets a request: copied by the codec into the
		// buffer the message provides, released once applied.
		var r Received
		buf := r.WireBuffer(len(wire))[:len(wire)]
		copy(buf, wire)
		if err := r.UnmarshalWire(buf); err != nil {
			b.Fatal(err)
		}
		if r.Batches[0].Err != nil || len(r.Batches[0].Events) != benchEvents {
			b.Fatal("decoded wrong")
		}
		r.Release()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchEvents, "ns/event")
}
