package storefile

import (
	"errors"
	"io"
	"testing"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/container"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

func region(id, version uint64, start, end string) *metapb.Region {
	return &metapb.Region{Id: id, StartKey: []byte(start), EndKey: []byte(end),
		RegionEpoch: &metapb.RegionEpoch{ConfVer: 1, Version: version}}
}

func inc(t testing.TB, r *metapb.Region, term uint64) *formatv1.RegionIncarnation {
	ri, err := Incarnation{Region: r, Term: term}.Encode()
	require.NoError(t, err)
	return ri
}

func header(t testing.TB) *formatv1.StoreFileHeader {
	return &formatv1.StoreFileHeader{
		ClusterId: 1, TenantId: 2, StoreId: 3, Seq: 7, PrevMaxTs: 100, MaxTs: 1000,
		LeaderRegions: []*formatv1.RegionIncarnation{inc(t, region(10, 5, "a", "m"), 2)},
	}
}

func rowsEvent(regionID uint64, rows ...*cdcpb.Event_Row) *cdcpb.ChangeDataEvent {
	return &cdcpb.ChangeDataEvent{Events: []*cdcpb.Event{{
		RegionId: regionID,
		Event:    &cdcpb.Event_Entries_{Entries: &cdcpb.Event_Entries{Entries: rows}},
	}}}
}

func resolvedEvent(ts uint64, regions ...uint64) *cdcpb.ChangeDataEvent {
	return &cdcpb.ChangeDataEvent{ResolvedTs: &cdcpb.ResolvedTs{Regions: regions, Ts: ts}}
}

func prewrite(key string, start uint64) *cdcpb.Event_Row {
	return &cdcpb.Event_Row{Type: cdcpb.Event_PREWRITE, OpType: cdcpb.Event_Row_PUT, Key: []byte(key), Value: []byte("v"), StartTs: start}
}

func commit(key string, start, commitTs uint64) *cdcpb.Event_Row {
	return &cdcpb.Event_Row{Type: cdcpb.Event_COMMIT, OpType: cdcpb.Event_Row_PUT, Key: []byte(key), StartTs: start, CommitTs: commitTs}
}

// item is one record to write: an event or a region change.
type item struct {
	ev *cdcpb.ChangeDataEvent
	rc *formatv1.RegionChange
}

func build(t testing.TB, h *formatv1.StoreFileHeader, items ...item) []byte {
	w, err := NewWriter(h)
	require.NoError(t, err)
	for _, it := range items {
		if it.ev != nil {
			require.NoError(t, w.AddEvent(it.ev))
		} else {
			require.NoError(t, w.AddRegionChange(it.rc))
		}
	}
	b, err := w.Finish()
	require.NoError(t, err)
	return b
}

func readAll(name string, b []byte) ([]Record, error) {
	r, err := Open(name, b)
	if err != nil {
		return nil, err
	}
	var out []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
}

func TestRoundTripWithRegionChanges(t *testing.T) {
	h := header(t)
	split := &formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_END, Reason: formatv1.RegionChange_REASON_SPLIT,
		Incarnation: inc(t, region(10, 5, "a", "m"), 2), ResolvedTs: 300}
	left := &formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_START, Reason: formatv1.RegionChange_REASON_SPLIT,
		Incarnation:  inc(t, region(11, 6, "a", "f"), 2),
		Predecessors: []*formatv1.IncarnationRef{{RegionId: 10, Version: 5, Term: 2}}}
	right := &formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_START, Reason: formatv1.RegionChange_REASON_SPLIT,
		Incarnation:  inc(t, region(10, 6, "f", "m"), 2),
		Predecessors: []*formatv1.IncarnationRef{{RegionId: 10, Version: 5, Term: 2}}}
	b := build(t, h,
		item{ev: rowsEvent(10, prewrite("b", 200), commit("b", 200, 250))},
		item{ev: resolvedEvent(300, 10)},
		item{rc: split}, item{rc: left}, item{rc: right},
		item{ev: resolvedEvent(900, 10, 11)},
	)
	recs, err := readAll("k", b)
	require.NoError(t, err)
	require.Len(t, recs, 6)
	require.Equal(t, []byte("b"), recs[0].Event.Events[0].GetEntries().Entries[1].Key)
	require.Equal(t, uint64(250), recs[0].Event.Events[0].GetEntries().Entries[1].CommitTs)
	require.Equal(t, uint64(11), recs[3].Incarnation.Region.Id)
	require.Equal(t, uint64(900), recs[5].Event.ResolvedTs.Ts)
}

// A takeover END (store-change-file spec, "Takeover") ends an incarnation
// the store does not lead, on a crashed leader's behalf; the store's own
// leaderships are untouched by it.
func TestTakeoverEnd(t *testing.T) {
	tk := &formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_END, Reason: formatv1.RegionChange_REASON_TAKEOVER,
		Incarnation: inc(t, region(10, 5, "a", "m"), 1), ResolvedTs: 400,
		Takeover: &formatv1.TakeoverSource{StoreId: 4, ThroughSeq: 9}}
	b := build(t, header(t), item{ev: rowsEvent(10, commit("b", 200, 250))}, item{rc: tk},
		item{ev: resolvedEvent(500, 10)})
	recs, err := readAll("k", b)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	require.Equal(t, uint64(4), recs[1].RegionChange.Takeover.StoreId)
	require.Equal(t, uint64(1), recs[1].Incarnation.Term, "the crashed leader's incarnation, term 1")
}

func TestRulesViolationsAreCorruptErrors(t *testing.T) {
	endOther := &formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_END, Incarnation: inc(t, region(99, 1, "a", "b"), 1)}
	startLed := &formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_START, Reason: formatv1.RegionChange_REASON_BOOTSTRAP,
		Incarnation: inc(t, region(10, 5, "a", "m"), 2)}
	noPred := &formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_START, Reason: formatv1.RegionChange_REASON_LEADER_TRANSFER,
		Incarnation: inc(t, region(12, 5, "m", "z"), 3)}
	takeoverStart := &formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_START, Reason: formatv1.RegionChange_REASON_TAKEOVER,
		Incarnation:  inc(t, region(12, 5, "m", "z"), 3),
		Predecessors: []*formatv1.IncarnationRef{{RegionId: 12, Version: 5, Term: 2}}, Takeover: &formatv1.TakeoverSource{StoreId: 4}}
	takeoverNoSource := &formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_END, Reason: formatv1.RegionChange_REASON_TAKEOVER,
		Incarnation: inc(t, region(99, 1, "a", "b"), 1)}
	takeoverOfLed := &formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_END, Reason: formatv1.RegionChange_REASON_TAKEOVER,
		Incarnation: inc(t, region(10, 5, "a", "m"), 2), Takeover: &formatv1.TakeoverSource{StoreId: 4, ThroughSeq: 9}}
	takeoverAboveMax := &formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_END, Reason: formatv1.RegionChange_REASON_TAKEOVER,
		Incarnation: inc(t, region(99, 1, "a", "b"), 1), Takeover: &formatv1.TakeoverSource{StoreId: 4, ThroughSeq: 9}, ResolvedTs: 1001}
	for _, tc := range []struct {
		name string
		item item
		want string
	}{
		{"rows of a region not led", item{ev: rowsEvent(99, prewrite("b", 200))}, "does not lead"},
		{"resolved of a region not led", item{ev: resolvedEvent(500, 10, 99)}, "does not lead"},
		{"resolved above max_ts", item{ev: resolvedEvent(1001, 10)}, "above the file's max_ts"},
		{"commit above max_ts", item{ev: rowsEvent(10, commit("b", 200, 1200))}, "above the file's max_ts"},
		{"commit not above start", item{ev: rowsEvent(10, commit("b", 200, 200))}, "not above start_ts"},
		{"zero start ts", item{ev: rowsEvent(10, prewrite("b", 0))}, "start_ts is 0"},
		{"empty key", item{ev: rowsEvent(10, prewrite("", 5))}, "empty key"},
		{"initialized rows", item{ev: rowsEvent(10, &cdcpb.Event_Row{Type: cdcpb.Event_INITIALIZED, Key: []byte("k"), StartTs: 1})}, "log type"},
		{"end of a region not led", item{rc: endOther}, "does not lead"},
		{"start of a region already led", item{rc: startLed}, "still leads"},
		{"start without predecessor", item{rc: noPred}, "names no predecessor"},
		{"start with reason takeover", item{rc: takeoverStart}, "a takeover writes only an END"},
		{"takeover end without source", item{rc: takeoverNoSource}, "without the crashed leader's store"},
		{"takeover end of a led region", item{rc: takeoverOfLed}, "which the store leads itself"},
		{"takeover end above max_ts", item{rc: takeoverAboveMax}, "above the file's max_ts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := build(t, header(t), tc.item)
			_, err := readAll("data_change_buffer/x", b)
			require.Error(t, err)
			require.True(t, errors.Is(err, container.ErrCorrupt), "%v", err)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, "data_change_buffer/x")
		})
	}
}

func TestHeaderRules(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(h *formatv1.StoreFileHeader)
		want   string
	}{
		{"zero seq", func(h *formatv1.StoreFileHeader) { h.Seq = 0 }, "seq is 0"},
		{"zero store", func(h *formatv1.StoreFileHeader) { h.StoreId = 0 }, "store_id is 0"},
		{"max below prev", func(h *formatv1.StoreFileHeader) { h.MaxTs = 50 }, "below prev_max_ts"},
		{"bad region bytes", func(h *formatv1.StoreFileHeader) {
			h.LeaderRegions = append(h.LeaderRegions, &formatv1.RegionIncarnation{Region: []byte{0xff, 0xff}, Term: 1})
		}, "metapb.Region"},
		{"duplicate region", func(h *formatv1.StoreFileHeader) {
			h.LeaderRegions = append(h.LeaderRegions, h.LeaderRegions[0])
		}, "listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := header(t)
			tc.mutate(h)
			_, err := NewWriter(h)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func FuzzOpen(f *testing.F) {
	h := header(f)
	f.Add(build(f, h, item{ev: rowsEvent(10, prewrite("b", 200), commit("b", 200, 250))}, item{ev: resolvedEvent(300, 10)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := readAll("fuzz", b)
		if err != nil && !errors.Is(err, container.ErrCorrupt) {
			t.Fatalf("error is not a CorruptError: %v", err)
		}
	})
}

// FuzzRecords wraps fuzzed header and record bytes in a valid container, so
// the fuzzer exercises the record decoding and rule checks instead of
// stopping at the checksums.
func FuzzRecords(f *testing.F) {
	hb, err := protoMarshal(header(f))
	require.NoError(f, err)
	ev, err := rowsEvent(10, prewrite("b", 200), commit("b", 200, 250)).Marshal()
	require.NoError(f, err)
	rec, err := protoMarshal(&formatv1.StoreRecord{Record: &formatv1.StoreRecord_ChangeDataEvent{ChangeDataEvent: ev}})
	require.NoError(f, err)
	f.Add(hb, rec)
	h2 := header(f)
	h2.FormatVersion = FormatVersion
	hb2, err := protoMarshal(h2)
	require.NoError(f, err)
	lr, err := protoMarshal(&formatv1.StoreRecord{Record: &formatv1.StoreRecord_LeaderResolvedTs{
		LeaderResolvedTs: &formatv1.LeaderResolvedTs{Ts: 900, ExceptRegions: []uint64{10}}}})
	require.NoError(f, err)
	f.Add(hb2, lr)
	f.Fuzz(func(t *testing.T, hdr, rec []byte) {
		w := container.NewWriter(container.KindStoreChange, container.Options{})
		if w.Append(hdr) != nil || w.Append(rec) != nil {
			return
		}
		b, err := w.Finish()
		if err != nil {
			return
		}
		if _, err := readAll("fuzz", b); err != nil && !errors.Is(err, container.ErrCorrupt) {
			t.Fatalf("error is not a CorruptError: %v", err)
		}
	})
}
