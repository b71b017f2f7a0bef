package routepb

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/route"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// randomEvents makes events of every kind (and one route does not have),
// with the fields each kind carries and some it does not, zero and
// non-zero, empty and not.
func randomEvents(rng *rand.Rand, n int) []route.Event {
	u := func() uint64 {
		switch rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return rng.Uint64()
		}
		return uint64(rng.IntN(300))
	}
	bs := func() []byte {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return []byte{}
		}
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	refs := func() []route.Ref {
		var rs []route.Ref
		for range rng.IntN(4) {
			rs = append(rs, route.Ref{RegionID: u(), Version: u(), Term: u()})
		}
		return rs
	}
	kinds := []route.Kind{route.KindRow, route.KindRow, route.KindRow, route.KindRegionStart, route.KindRegionEnd,
		route.KindResolved, route.KindLeaderResolved, route.KindLeaders, route.Kind(99)}
	evs := make([]route.Event, n)
	for i := range evs {
		ev := route.Event{Kind: kinds[rng.IntN(len(kinds))], Inc: route.Ref{RegionID: u(), Version: u(), Term: u()}, Ts: u(),
			Refs: refs(), Preds: refs(), Start: bs(), End: bs(), TakeoverStore: u(), TakeoverSeq: u()}
		if rng.IntN(8) > 0 {
			ev.Row = &cdcpb.Event_Row{Type: cdcpb.Event_LogType(rng.IntN(6)), OpType: cdcpb.Event_Row_OpType(rng.IntN(4)),
				Key: bs(), Value: bs(), OldValue: bs(), StartTs: u(), CommitTs: u(), Generation: u()}
		}
		evs[i] = ev
	}
	return evs
}

// both builds one request both ways: as this package's Request and as
// generated messages through ToProto.
func both(rng *rand.Rand) (*Request, *sorterv1.IngestRequest) {
	r := &Request{TenantID: uint64(rng.IntN(3)), StoreID: uint64(rng.IntN(1000)), Seq: rng.Uint64(), MaxTs: uint64(rng.IntN(2)) * rng.Uint64()}
	if rng.IntN(2) == 0 {
		r.Dispatcher = fmt.Sprintf("dispatcher-%d", rng.IntN(10))
	}
	pb := &sorterv1.IngestRequest{TenantId: r.TenantID, StoreId: r.StoreID, Seq: r.Seq, MaxTs: r.MaxTs, Dispatcher: r.Dispatcher}
	for range rng.IntN(5) {
		evs := randomEvents(rng, rng.IntN(20))
		b := Batch{RangeID: uint64(rng.IntN(100)), RangeEpoch: uint64(rng.IntN(5)), PrevSeq: uint64(rng.IntN(3)), Events: EncodeEvents(evs)}
		r.Batches = append(r.Batches, b)
		pevs, rows := ToProto(evs)
		if rows != b.Events.Rows {
			panic(fmt.Sprintf("rows %d, ToProto counted %d", b.Events.Rows, rows))
		}
		pb.Batches = append(pb.Batches, &sorterv1.RangeBatch{RangeId: b.RangeID, RangeEpoch: b.RangeEpoch, PrevSeq: b.PrevSeq, Events: pevs})
	}
	return r, pb
}

// TestRequestBytesAreProtoMarshals pins the encoder to the generated
// code: the same bytes as proto.Marshal of ToProto's messages, for events
// of every kind.
func TestRequestBytesAreProtoMarshals(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		r, pb := both(rng)
		want, err := proto.Marshal(pb)
		require.NoError(t, err)
		got := r.AppendWire(nil)
		require.Equal(t, want, got, "request %d", i)
		require.Equal(t, len(got), r.WireSize(), "request %d", i)
		// Appending goes after what the buffer holds.
		require.Equal(t, append([]byte("xyz"), want...), r.AppendWire([]byte("xyz")))
	}
}

// A request released once sent hands its encoded events back (poisoned,
// with poisoning on), and later batches are encoded into them: the bytes
// are still proto.Marshal's.
func TestReleasedRequestsEncodeTheNextBatches(t *testing.T) {
	PoisonReleased(true)
	defer PoisonReleased(false)
	rng := rand.New(rand.NewPCG(7, 8))
	reused := eventBytes.Reused.Load()
	for i := range 500 {
		r, pb := both(rng)
		want, err := proto.Marshal(pb)
		require.NoError(t, err)
		require.Equal(t, want, r.AppendWire(nil), "request %d", i)
		var held [][]byte
		for _, b := range r.Batches {
			held = append(held, b.Events.b)
		}
		r.Release()
		for j, b := range held {
			if len(b) > 0 {
				require.Equal(t, byte(0xA5), b[0], "batch %d's bytes are poisoned", j)
			}
			require.Zero(t, r.Batches[j].Events.Len(), "the request keeps none")
		}
	}
	require.Greater(t, eventBytes.Reused.Load(), reused, "encoded into released bytes")
}

// fromProto is what the sorter made of a request before Received: the
// generated decoding, then FromProto per batch.
func fromProto(b []byte) (*Received, error) {
	pb := &sorterv1.IngestRequest{}
	if err := proto.Unmarshal(b, pb); err != nil {
		return nil, err
	}
	r := &Received{TenantID: pb.TenantId, StoreID: pb.StoreId, Seq: pb.Seq, MaxTs: pb.MaxTs, Dispatcher: pb.Dispatcher}
	for _, b := range pb.Batches {
		evs, err := FromProto(b.Events)
		r.Batches = append(r.Batches, ReceivedBatch{RangeID: b.RangeId, RangeEpoch: b.RangeEpoch, PrevSeq: b.PrevSeq, Events: evs, Err: err})
	}
	return r, nil
}

// normalize makes empty slices nil (the two decoders may differ there;
// nothing reads the difference) and errors their text.
func normalize(r *Received) *Received {
	nb := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		return b
	}
	nr := func(rs []route.Ref) []route.Ref {
		if len(rs) == 0 {
			return nil
		}
		return rs
	}
	out := *r
	out.Batches, out.buf = nil, nil // what the request's memory came from is no part of it
	for _, b := range r.Batches {
		nb2 := b
		nb2.Events, nb2.evs, nb2.rows = nil, nil, nil
		if b.Err != nil {
			nb2.Err = fmt.Errorf("%s", b.Err.Error())
		}
		for _, ev := range b.Events {
			ev.Start, ev.End, ev.Refs, ev.Preds = nb(ev.Start), nb(ev.End), nr(ev.Refs), nr(ev.Preds)
			if ev.Row != nil {
				row := *ev.Row
				row.Key, row.Value, row.OldValue = nb(row.Key), nb(row.Value), nb(row.OldValue)
				ev.Row = &row
			}
			nb2.Events = append(nb2.Events, ev)
		}
		out.Batches = append(out.Batches, nb2)
	}
	return &out
}

// sameAsProto checks that Received decodes b as the generated code does:
// both fail or neither, to the same request.
func sameAsProto(t testing.TB, b []byte) {
	t.Helper()
	want, werr := fromProto(b)
	var got Received
	gerr := got.UnmarshalWire(bytes.Clone(b))
	if werr != nil || gerr != nil {
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("proto.Unmarshal: %v; UnmarshalWire: %v (input %x)", werr, gerr, b)
		}
		return
	}
	require.Equal(t, normalize(want), normalize(&got), "input %x", b)
}

func TestReceivedIsWhatProtoDecodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		r, _ := both(rng)
		sameAsProto(t, r.AppendWire(nil))
	}
}

// Requests decoded one after another into the memory the last ones
// released (their bytes from WireBuffer, their arrays) are what the
// generated code decodes: nothing of a released request shows through in
// the next. With poisoning on, Release overwrites the bytes it hands back.
func TestReleasedMemoryDecodesTheNextRequests(t *testing.T) {
	PoisonReleased(true)
	defer PoisonReleased(false)
	rng := rand.New(rand.NewPCG(5, 6))
	made := eventArrays.Made.Load()
	for i := range 500 {
		r, _ := both(rng)
		b := r.AppendWire(nil)
		want, err := fromProto(b)
		require.NoError(t, err)
		var got Received
		buf := got.WireBuffer(len(b))
		copy(buf, b)
		require.NoError(t, got.UnmarshalWire(buf))
		require.Equal(t, normalize(want), normalize(&got), "request %d", i)
		got.Release()
		require.Zero(t, got.TenantID, "Release empties the request")
		if len(buf) > 0 {
			require.Equal(t, byte(0xA5), buf[0], "the released bytes are poisoned")
		}
	}
	require.Less(t, eventArrays.Made.Load()-made, int64(250), "event arrays are reused")
	require.Positive(t, eventArrays.Reused.Load())
}

// TestReceivedOddWire covers what an encoder other than ours may send:
// unknown fields of every wire type, known fields of another wire type,
// a singular message field twice (protobuf merges), scalars twice (the
// last wins), and malformed input.
func TestReceivedOddWire(t *testing.T) {
	tag := func(b []byte, n protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(b, n, typ) }
	msg := func(b []byte, n protowire.Number, body []byte) []byte {
		return protowire.AppendBytes(tag(b, n, protowire.BytesType), body)
	}
	vint := func(b []byte, n protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(tag(b, n, protowire.VarintType), v)
	}
	unknowns := func(b []byte) []byte {
		b = protowire.AppendFixed32(tag(b, 90, protowire.Fixed32Type), 7)
		b = protowire.AppendFixed64(tag(b, 91, protowire.Fixed64Type), 8)
		b = vint(b, 92, 9)
		b = msg(b, 93, []byte("??"))
		g := vint(nil, 1, 5)
		b = tag(append(tag(b, 94, protowire.StartGroupType), g...), 94, protowire.EndGroupType)
		return b
	}
	row1 := vint(msg(nil, fRowKey, []byte("k1")), fRowType, 2) // type before key: order is free
	row2 := vint(msg(nil, fRowValue, []byte("v2")), fRowStart, 5)
	inc := vint(vint(nil, fIncRegion, 3), fIncTerm, 4)
	ev := vint(nil, fEvKind, 1)
	ev = msg(ev, fEvRow, unknowns(row1))
	ev = msg(ev, fEvRow, row2) // merged into the first
	ev = msg(ev, fEvInc, unknowns(inc))
	ev = protowire.AppendFixed64(tag(ev, fEvTs, protowire.Fixed64Type), 77) // ts of the wrong wire type: skipped
	ev = vint(ev, fEvTs, 6)
	ev = vint(ev, fEvTs, 8) // the last wins
	ev = unknowns(ev)
	region := vint(nil, fEvKind, 2)
	region = msg(region, fEvStart, []byte("a"))
	region = msg(region, fEvPreds, inc)
	region = msg(region, fEvPreds, nil)
	region = msg(region, fEvEnd, nil) // present and empty
	batch := msg(msg(vint(nil, fBatchRange, 9), fBatchEvents, ev), fBatchEvents, region)
	batch = unknowns(vint(batch, fBatchEpoch, 2))
	bad := msg(vint(nil, fBatchRange, 10), fBatchEvents, vint(nil, fEvKind, 42)) // unknown kind
	norow := msg(vint(nil, fBatchRange, 11), fBatchEvents, vint(nil, fEvKind, 1))
	req := vint(nil, fReqTenant, 1)
	req = msg(req, fReqBatches, batch)
	req = msg(req, fReqBatches, bad)
	req = msg(req, fReqBatches, norow)
	req = unknowns(msg(req, fReqDispatcher, []byte("d")))
	req = vint(req, fReqTenant, 2)
	sameAsProto(t, req)

	var got Received
	require.NoError(t, got.UnmarshalWire(bytes.Clone(req)))
	require.EqualValues(t, 2, got.TenantID)
	require.Len(t, got.Batches, 3)
	b0 := got.Batches[0]
	require.NoError(t, b0.Err)
	require.Len(t, b0.Events, 2)
	row := b0.Events[0].Row
	require.Equal(t, "k1", string(row.Key))
	require.Equal(t, "v2", string(row.Value))
	require.EqualValues(t, 5, row.StartTs)
	require.Equal(t, cdcpb.Event_COMMIT, row.Type)
	require.EqualValues(t, 8, b0.Events[0].Ts)
	require.Equal(t, route.Ref{RegionID: 3, Term: 4}, b0.Events[0].Inc)
	require.Equal(t, []route.Ref{{RegionID: 3, Term: 4}, {}}, b0.Events[1].Preds)
	require.ErrorContains(t, got.Batches[1].Err, "unknown kind")
	require.ErrorContains(t, got.Batches[2].Err, "row event without a row")

	for _, bad := range [][]byte{
		{0x08},             // a varint cut short
		{0x2a, 0x05, 0x08}, // a batch longer than the message
		{0x00, 0x01},       // field number 0
		msg(nil, fReqDispatcher, []byte{0xff, 0xfe}),                      // not UTF-8
		msg(nil, fReqBatches, msg(nil, fBatchEvents, []byte{0x12, 0x09})), // a row longer than its event
		msg(nil, fReqBatches, tag(nil, 5, protowire.EndGroupType)),        // a group's end without its start
	} {
		sameAsProto(t, bad)
		require.Error(t, new(Received).UnmarshalWire(bad), "%x", bad)
	}
}

// TestReceivedKeepsRowsInTheRequest: rows point into the request's bytes
// (no copy per key and value); region keys are copies (a range keeps them
// as long as the region lives, and must not pin a request for it).
func TestReceivedKeepsRowsInTheRequest(t *testing.T) {
	evs := []route.Event{
		{Kind: route.KindRow, Row: &cdcpb.Event_Row{Type: cdcpb.Event_COMMITTED, Key: []byte("key"), Value: []byte("value")}},
		{Kind: route.KindRegionStart, Start: []byte("a"), End: []byte("z")},
	}
	r := &Request{Batches: []Batch{{RangeID: 1, Events: EncodeEvents(evs)}}}
	b := r.AppendWire(nil)
	var got Received
	require.NoError(t, got.UnmarshalWire(b))
	row := got.Batches[0].Events[0].Row
	require.Equal(t, len(row.Key), cap(row.Key), "an append to the key must not write into the request")
	clear(b)
	require.Equal(t, make([]byte, 3), row.Key)
	require.Equal(t, "a", string(got.Batches[0].Events[1].Start))
	require.Equal(t, "z", string(got.Batches[0].Events[1].End))
}

// FuzzReceived checks the decoder against the generated code on any input:
// go test ./libs/route/routepb -run '^$' -fuzz FuzzReceived -fuzztime 60s
func FuzzReceived(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20 {
		r, _ := both(rng)
		f.Add(r.AppendWire(nil))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) { sameAsProto(t, b) })
}

// TestWireEnumsAreTheTables keeps the decoder's switches equal to the
// mapping tables FromProto reads.
func TestWireEnumsAreTheTables(t *testing.T) {
	for v := int32(-1); v < 10; v++ {
		wantType, ok := typeFromProto[sorterv1.RowType(v)]
		if !ok {
			wantType = cdcpb.Event_UNKNOWN
		}
		require.Equal(t, wantType, rowTypeOf(v), "row type %d", v)
		wantOp, ok := opFromProto[sorterv1.RowOp(v)]
		if !ok {
			wantOp = cdcpb.Event_Row_UNKNOWN
		}
		require.Equal(t, wantOp, rowOpOf(v), "row op %d", v)
		require.Equal(t, typeToProto[cdcpb.Event_LogType(v)], rowTypeToWire(cdcpb.Event_LogType(v)), "log type %d", v)
		require.Equal(t, opToProto[cdcpb.Event_Row_OpType(v)], rowOpToWire(cdcpb.Event_Row_OpType(v)), "op type %d", v)
	}
}
