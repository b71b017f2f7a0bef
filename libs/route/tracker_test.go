package route

import (
	"testing"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

func trackerInc(t *testing.T, version, term uint64) *formatv1.RegionIncarnation {
	ri, err := storefile.Incarnation{Region: &metapb.Region{Id: 2, RegionEpoch: &metapb.RegionEpoch{ConfVer: 1, Version: version}}, Term: term}.Encode()
	require.NoError(t, err)
	return ri
}

// trackerFile is file seq of store 1: a bootstrap START of region 2
// (version 1 term 5) in file 1, else a header naming (version, term); then a
// resolved ts.
func trackerFile(t *testing.T, seq, version, term, resolved uint64) (string, []byte) {
	h := &formatv1.StoreFileHeader{ClusterId: 1, TenantId: 1, StoreId: 1, Seq: seq, MaxTs: 1000 * seq, PrevMaxTs: 1000 * (seq - 1)}
	if seq > 1 {
		h.LeaderRegions = []*formatv1.RegionIncarnation{trackerInc(t, version, term)}
	}
	w, err := storefile.NewWriter(h)
	require.NoError(t, err)
	if seq == 1 {
		require.NoError(t, w.AddRegionChange(&formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_START,
			Reason: formatv1.RegionChange_REASON_BOOTSTRAP, Incarnation: trackerInc(t, version, term)}))
	}
	require.NoError(t, w.AddEvent(&cdcpb.ChangeDataEvent{ResolvedTs: &cdcpb.ResolvedTs{Regions: []uint64{2}, Ts: resolved}}))
	b, err := w.Finish()
	require.NoError(t, err)
	return layout.StoreFileKey(1, 1, 1, seq, h.MaxTs), b
}

// A store stream's incarnations and resolved ts must not go backwards
// across files; a Tracker that outlives Routers keeps checking after a
// restart, and files re-read below its seq are not checked again.
func TestTrackerRegressions(t *testing.T) {
	tb, err := NewTable([]Range{{ID: 1}})
	require.NoError(t, err)
	k1, f1 := trackerFile(t, 1, 1, 5, 100)
	k2, f2 := trackerFile(t, 2, 1, 5, 150)
	_, older := trackerFile(t, 2, 1, 4, 150)
	_, lower := trackerFile(t, 2, 1, 5, 90)

	tr := NewTracker()
	rt := NewTrackedRouter(tb, tr)
	_, _, err = rt.Route(k1, f1)
	require.NoError(t, err)
	tr.Commit()
	require.Equal(t, uint64(1), tr.Seq())

	_, _, err = rt.Route(k2, older)
	require.ErrorIs(t, err, ErrEpochRegressed)
	// A new Router (a restart from the checkpoint) with the same Tracker
	// still refuses it, and the lower resolved ts too.
	rt = NewTrackedRouter(tb, tr)
	_, _, err = rt.Route(k2, older)
	require.ErrorIs(t, err, ErrEpochRegressed)
	_, _, err = rt.Route(k2, lower)
	require.ErrorIs(t, err, ErrResolvedRegressed)
	// Failed files left nothing behind: the good file passes.
	_, _, err = rt.Route(k2, f2)
	require.NoError(t, err)
	tr.Commit()
	require.Equal(t, uint64(2), tr.Seq())

	// Re-reading files at or below the Tracker's seq is not a regression.
	rt = NewTrackedRouter(tb, tr)
	_, _, err = rt.Route(k1, f1)
	require.NoError(t, err)
	tr.Commit()
	require.Equal(t, uint64(2), tr.Seq())

	// A plain Router checks the files it reads in order.
	rt = NewRouter(tb)
	_, _, err = rt.Route(k1, f1)
	require.NoError(t, err)
	_, _, err = rt.Route(k2, lower)
	require.ErrorIs(t, err, ErrResolvedRegressed)
	_, _, err = Route(k2, lower, tb) // a fresh router has no history
	require.NoError(t, err)
}

// A takeover END (store-change-file spec, "Takeover") reaches every range
// its incarnation overlaps with the proof, and leaves the stream's own
// leadership of the region (a newer incarnation) untouched: its later
// resolved ts still route.
func TestRouteTakeoverEnd(t *testing.T) {
	tb, err := NewTable([]Range{{ID: 1, End: []byte("m")}, {ID: 2, Start: []byte("m")}})
	require.NoError(t, err)
	h := &formatv1.StoreFileHeader{ClusterId: 1, TenantId: 1, StoreId: 3, Seq: 1, MaxTs: 1000}
	w, err := storefile.NewWriter(h)
	require.NoError(t, err)
	own := trackerInc(t, 1, 6)
	require.NoError(t, w.AddRegionChange(&formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_START,
		Reason: formatv1.RegionChange_REASON_LEADER_TRANSFER, Incarnation: own,
		Predecessors: []*formatv1.IncarnationRef{{RegionId: 2, Version: 1, Term: 5}}}))
	require.NoError(t, w.AddRegionChange(&formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_END,
		Reason: formatv1.RegionChange_REASON_TAKEOVER, Incarnation: trackerInc(t, 1, 5), ResolvedTs: 300,
		Takeover: &formatv1.TakeoverSource{StoreId: 1, ThroughSeq: 7}}))
	require.NoError(t, w.AddEvent(&cdcpb.ChangeDataEvent{ResolvedTs: &cdcpb.ResolvedTs{Regions: []uint64{2}, Ts: 400}}))
	b, err := w.Finish()
	require.NoError(t, err)
	out, _, err := Route(layout.StoreFileKey(1, 1, 3, 1, 1000), b, tb)
	require.NoError(t, err)
	for _, id := range []uint64{1, 2} {
		evs := out[id].Events
		require.Len(t, evs, 3, "range %d", id)
		require.Equal(t, KindRegionEnd, evs[1].Kind)
		require.Equal(t, Ref{RegionID: 2, Version: 1, Term: 5}, evs[1].Inc)
		require.Equal(t, uint64(1), evs[1].TakeoverStore)
		require.Equal(t, uint64(7), evs[1].TakeoverSeq)
		require.Equal(t, uint64(300), evs[1].Ts)
		require.Equal(t, KindResolved, evs[2].Kind)
		require.Equal(t, []Ref{{RegionID: 2, Version: 1, Term: 6}}, evs[2].Refs)
	}
}

// A router keeps the spans it routed a led region's rows with; when the
// store leads another incarnation of the region (a split), rows go by the
// new one's keys: a row outside them is refused, not routed by the
// region's old span.
func TestRoutedSpanFollowsTheIncarnation(t *testing.T) {
	tb, err := NewTable([]Range{{ID: 1, End: []byte("m")}, {ID: 2, Start: []byte("m")}})
	require.NoError(t, err)
	incOf := func(id, version uint64, start, end string) *formatv1.RegionIncarnation {
		ri, err := storefile.Incarnation{Region: &metapb.Region{Id: id, StartKey: tidbcodec.EncodeRegionKey([]byte(start)),
			EndKey: tidbcodec.EncodeRegionKey([]byte(end)), RegionEpoch: &metapb.RegionEpoch{ConfVer: 1, Version: version}}, Term: 1}.Encode()
		require.NoError(t, err)
		return ri
	}
	row := func(key string) *cdcpb.ChangeDataEvent {
		return &cdcpb.ChangeDataEvent{Events: []*cdcpb.Event{{RegionId: 2, Event: &cdcpb.Event_Entries_{Entries: &cdcpb.Event_Entries{
			Entries: []*cdcpb.Event_Row{{Type: cdcpb.Event_COMMITTED, OpType: cdcpb.Event_Row_PUT, Key: []byte(key), StartTs: 5, CommitTs: 6}}}}}}}
	}
	file := func(seq uint64, split bool, key string) (string, []byte) {
		h := &formatv1.StoreFileHeader{ClusterId: 1, TenantId: 1, StoreId: 1, Seq: seq, MaxTs: 1000 * seq, PrevMaxTs: 1000 * (seq - 1)}
		if seq > 1 {
			h.LeaderRegions = []*formatv1.RegionIncarnation{incOf(2, 1, "a", "z")}
		}
		w, err := storefile.NewWriter(h)
		require.NoError(t, err)
		if seq == 1 {
			require.NoError(t, w.AddRegionChange(&formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_START,
				Reason: formatv1.RegionChange_REASON_BOOTSTRAP, Incarnation: incOf(2, 1, "a", "z")}))
		}
		require.NoError(t, w.AddEvent(row("b")))
		if split { // region 2 keeps [n, z); region 3 takes [a, n)
			pred := []*formatv1.IncarnationRef{{RegionId: 2, Version: 1, Term: 1}}
			require.NoError(t, w.AddRegionChange(&formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_END,
				Reason: formatv1.RegionChange_REASON_SPLIT, Incarnation: incOf(2, 1, "a", "z"), ResolvedTs: 10}))
			require.NoError(t, w.AddRegionChange(&formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_START,
				Reason: formatv1.RegionChange_REASON_SPLIT, Incarnation: incOf(3, 2, "a", "n"), Predecessors: pred}))
			require.NoError(t, w.AddRegionChange(&formatv1.RegionChange{Kind: formatv1.RegionChange_KIND_START,
				Reason: formatv1.RegionChange_REASON_SPLIT, Incarnation: incOf(2, 2, "n", "z"), Predecessors: pred}))
			require.NoError(t, w.AddEvent(row(key)))
		}
		b, err := w.Finish()
		require.NoError(t, err)
		return layout.StoreFileKey(1, 1, 1, seq, h.MaxTs), b
	}
	for _, tc := range []struct {
		key string
		ok  bool
	}{{"p", true}, {"c", false}} {
		rt := NewRouter(tb)
		k, b := file(1, false, "")
		batches, _, err := rt.Route(k, b)
		require.NoError(t, err)
		require.Equal(t, []byte("b"), batches[1].Events[len(batches[1].Events)-1].Row.Key)
		k, b = file(2, true, tc.key)
		batches, _, err = rt.Route(k, b)
		if !tc.ok {
			require.ErrorContains(t, err, "lies outside the region", "row %q after the split", tc.key)
			continue
		}
		require.NoError(t, err)
		evs := batches[2].Events
		require.Equal(t, []byte(tc.key), evs[len(evs)-1].Row.Key)
		require.Equal(t, Ref{RegionID: 2, Version: 2, Term: 1}, evs[len(evs)-1].Inc)
	}
}
