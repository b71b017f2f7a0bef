package storefile

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tistream/tistream/libs/formats/container"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// randomChangeDataEvent makes a record as producers write them: row
// events grouped as TiKV does, resolved-ts events, a ResolvedTs; every
// row field zero or not, bytes nil, empty or not.
func randomChangeDataEvent(rng *rand.Rand) *cdcpb.ChangeDataEvent {
	u := func() uint64 {
		switch rng.IntN(3) {
		case 0:
			return 0
		case 1:
			return rng.Uint64()
		}
		return uint64(rng.IntN(1000))
	}
	bs := func() []byte {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return []byte{}
		}
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	var ev *cdcpb.ChangeDataEvent
	for range rng.IntN(40) {
		row := &cdcpb.Event_Row{StartTs: u(), CommitTs: u(), Type: cdcpb.Event_LogType(rng.IntN(7) - 1),
			OpType: cdcpb.Event_Row_OpType(rng.IntN(4)), Key: bs(), Value: bs(), OldValue: bs(),
			ExpireTsUnixSecs: u(), TxnSource: u(), Generation: u()}
		if next, e := AppendRowEvent(ev, uint64(rng.IntN(4)), row); next != nil {
			if ev != nil {
				break // one record
			}
			ev = next
		} else if e != nil {
			e.Index, e.RequestId = u(), u()
		}
	}
	if ev == nil {
		ev = &cdcpb.ChangeDataEvent{}
	}
	if rng.IntN(3) == 0 {
		ev.Events = append(ev.Events, &cdcpb.Event{RegionId: u(), Event: &cdcpb.Event_ResolvedTs{ResolvedTs: u()}})
	}
	if rng.IntN(4) == 0 {
		ev.Events = append(ev.Events, &cdcpb.Event{RegionId: u()}) // no oneof set
	}
	if rng.IntN(3) == 0 {
		rt := &cdcpb.ResolvedTs{Ts: u(), RequestId: u()}
		for range rng.IntN(5) {
			rt.Regions = append(rt.Regions, u())
		}
		ev.ResolvedTs = rt
	}
	return ev
}

// generated is kvproto's own decoding of b.
func generated(b []byte) (*cdcpb.ChangeDataEvent, error) {
	ev := &cdcpb.ChangeDataEvent{}
	return ev, ev.Unmarshal(b)
}

// sameAsGenerated checks that when the fast path takes b, it decodes what
// the generated code does (which must then accept b).
func sameAsGenerated(t testing.TB, b []byte) bool {
	t.Helper()
	got, ok := fastChangeDataEvent(bytes.Clone(b), nil)
	if !ok {
		return false
	}
	want, err := generated(b)
	if err != nil {
		t.Fatalf("fast path took what the generated code refuses (%v): %x", err, b)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("fast path decoded\n%v\nthe generated code\n%v\ninput %x", got, want, b)
	}
	return true
}

func TestFastChangeDataEventIsGeneratedUnmarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 3000 {
		ev := randomChangeDataEvent(rng)
		b, err := ev.Marshal()
		require.NoError(t, err)
		require.True(t, sameAsGenerated(t, b), "a record as producers write it takes the fast path: %v", ev)
	}
}

// TestFastChangeDataEventLeavesTheRest: what producers do not write goes
// to the generated code — and the fast path takes what it should of odd
// but valid encodings (unpacked regions, repeated scalars).
func TestFastChangeDataEventLeavesTheRest(t *testing.T) {
	tag := func(b []byte, n protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(b, n, typ) }
	msg := func(b []byte, n protowire.Number, body []byte) []byte {
		return protowire.AppendBytes(tag(b, n, protowire.BytesType), body)
	}
	vint := func(b []byte, n protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(tag(b, n, protowire.VarintType), v)
	}
	row := vint(msg(nil, fRowKey, []byte("k")), fRowStartTs, 5)
	entries := msg(nil, fEntriesRows, row)
	rowEv := msg(vint(nil, fEvRegion, 3), fEvEntries, entries)

	taken := map[string][]byte{
		"unpacked regions":            msg(nil, fCDEResolvedTs, vint(vint(vint(nil, fRTsRegions, 1), fRTsRegions, 2), fRTsTs, 9)),
		"packed and unpacked regions": msg(nil, fCDEResolvedTs, vint(msg(nil, fRTsRegions, []byte{1, 2}), fRTsRegions, 3)),
		"a scalar twice":              msg(nil, fCDEEvents, vint(vint(msg(nil, fEvEntries, entries), fEvRegion, 3), fEvRegion, 4)),
		"a row's key twice":           msg(nil, fCDEEvents, msg(nil, fEvEntries, msg(nil, fEntriesRows, msg(row, fRowKey, []byte("k2"))))),
		"an empty record":             nil,
	}
	for name, b := range taken {
		require.True(t, sameAsGenerated(t, b), name)
	}
	left := map[string][]byte{
		"an admin event":          msg(nil, fCDEEvents, msg(nil, 4, nil)),
		"an error event":          msg(nil, fCDEEvents, msg(nil, 5, nil)),
		"a long-txn event":        msg(nil, fCDEEvents, msg(nil, 8, nil)),
		"an unknown event field":  msg(nil, fCDEEvents, vint(nil, 20, 1)),
		"an unknown row field":    msg(nil, fCDEEvents, msg(nil, fEvEntries, msg(nil, fEntriesRows, vint(row, 20, 1)))),
		"a row field's wire type": msg(nil, fCDEEvents, msg(nil, fEvEntries, msg(nil, fEntriesRows, msg(nil, fRowStartTs, nil)))),
		"two oneofs":              msg(nil, fCDEEvents, vint(msg(nil, fEvEntries, entries), fEvResolvedTs, 5)),
		"entries twice":           msg(nil, fCDEEvents, msg(msg(nil, fEvEntries, entries), fEvEntries, entries)),
		"resolved ts twice":       msg(msg(nil, fCDEResolvedTs, nil), fCDEResolvedTs, nil),
		"an unknown field":        append(msg(nil, fCDEEvents, rowEv), 0x18, 0x01),
		"a cut record":            msg(nil, fCDEEvents, rowEv)[:5],
		"a 10-byte varint":        msg(nil, fCDEEvents, append(tag(nil, fEvRegion, protowire.VarintType), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)),
	}
	for name, b := range left {
		_, ok := fastChangeDataEvent(b, nil)
		require.False(t, ok, name)
	}
}

// TestReadKeepsEveryBlocksRows: an event's rows point into the file's
// blocks, so a block decompressed for one record must not be reused for
// the next: rows read from the first of many blocks are intact after the
// whole file was read.
func TestReadKeepsEveryBlocksRows(t *testing.T) {
	h := &formatv1.StoreFileHeader{ClusterId: 1, TenantId: 2, StoreId: 3, Seq: 7, PrevMaxTs: 100, MaxTs: 1000,
		LeaderRegions: []*formatv1.RegionIncarnation{inc(t, region(10, 5, "a", "m"), 2)}}
	w, err := NewWriterOptions(h, container.Options{Codec: container.CodecZstd, BlockSize: 4 << 10})
	require.NoError(t, err)
	var want [][]byte
	for i := range 300 {
		v := bytes.Repeat([]byte(fmt.Sprintf("value %d ", i)), 20) // compressible: zstd blocks
		want = append(want, v)
		require.NoError(t, w.AddEvent(rowsEvent(10, &cdcpb.Event_Row{Type: cdcpb.Event_PREWRITE, OpType: cdcpb.Event_Row_PUT,
			Key: []byte(fmt.Sprintf("b%03d", i)), Value: v, StartTs: 200})))
	}
	b, err := w.Finish()
	require.NoError(t, err)
	r, err := Open("k", b)
	require.NoError(t, err)
	var got [][]byte
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got = append(got, rec.Event.Events[0].GetEntries().Entries[0].Value)
	}
	require.Greater(t, r.c.Trailer().BlockCount, uint64(10), "the file has many blocks")
	require.Equal(t, want, got)
}

// FuzzChangeDataEvent holds the fast path to the generated code on any
// input: go test ./libs/formats/storefile -run '^$' -fuzz FuzzChangeDataEvent -fuzztime 60s
func FuzzChangeDataEvent(f *testing.F) {
	rng := rand.New(rand.NewPCG(9, 10))
	for range 20 {
		b, err := randomChangeDataEvent(rng).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { sameAsGenerated(t, b) })
}
