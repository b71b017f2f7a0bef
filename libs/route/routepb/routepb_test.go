package routepb

import (
	"testing"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/route"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

func TestRoundTrip(t *testing.T) {
	ref := route.Ref{RegionID: 3, Version: 4, Term: 5}
	in := []route.Event{
		{Kind: route.KindRegionStart, Inc: ref, Start: []byte("a"), End: []byte("z"), Preds: []route.Ref{{RegionID: 1, Version: 2, Term: 3}}},
		{Kind: route.KindRow, Inc: ref, Row: &cdcpb.Event_Row{Type: cdcpb.Event_PREWRITE, OpType: cdcpb.Event_Row_PUT,
			Key: []byte("k"), Value: []byte("v"), OldValue: []byte("o"), StartTs: 10}},
		{Kind: route.KindRow, Inc: ref, Row: &cdcpb.Event_Row{Type: cdcpb.Event_PREWRITE, OpType: cdcpb.Event_Row_PUT,
			Key: []byte("k"), Value: []byte("v2"), StartTs: 10, Generation: 7}},
		{Kind: route.KindRow, Inc: ref, Row: &cdcpb.Event_Row{Type: cdcpb.Event_PREWRITE, OpType: cdcpb.Event_Row_PUT,
			Key: []byte("k"), StartTs: 10, Generation: 1 << 63}}, // a lock refresh of a generation
		{Kind: route.KindRow, Inc: ref, Row: &cdcpb.Event_Row{Type: cdcpb.Event_COMMIT, OpType: cdcpb.Event_Row_DELETE, Key: []byte("k"), StartTs: 10, CommitTs: 11}},
		{Kind: route.KindRow, Inc: ref, Row: &cdcpb.Event_Row{Type: cdcpb.Event_ROLLBACK, Key: []byte("k"), StartTs: 12}},
		{Kind: route.KindRow, Inc: ref, Row: &cdcpb.Event_Row{Type: cdcpb.Event_COMMITTED, OpType: cdcpb.Event_Row_PUT, Key: []byte("k"), Value: []byte("w"), StartTs: 13, CommitTs: 14}},
		{Kind: route.KindResolved, Refs: []route.Ref{ref, {RegionID: 9}}, Ts: 20},
		{Kind: route.KindRegionEnd, Inc: ref, Start: []byte("a"), End: []byte("z"), Ts: 21},
		{Kind: route.KindLeaders, Refs: []route.Ref{ref}},
		{Kind: route.KindLeaders},
		{Kind: route.KindLeaderResolved, Refs: []route.Ref{ref}, Ts: 22},
		{Kind: route.KindLeaderResolved, Ts: 23},
	}
	pb, rows := ToProto(in)
	require.Equal(t, 6, rows)
	require.Equal(t, uint64(13), pb[6].GetRow().GetStartTs(), "each event its own row")
	// A row event without a row (which FromProto refuses) counts as a
	// row and leaves the rows of the others in place.
	gap, n := ToProto([]route.Event{in[1], {Kind: route.KindRow, Inc: ref}, in[4]})
	require.Equal(t, 3, n)
	require.Nil(t, gap[1].GetRow())
	require.Equal(t, []byte("o"), gap[0].GetRow().GetOldValue())
	require.Equal(t, uint64(11), gap[2].GetRow().GetCommitTs())
	require.Equal(t, uint64(7), pb[2].GetRow().GetGeneration())
	out, err := FromProto(pb)
	require.NoError(t, err)
	require.Equal(t, in, out)
}

func TestFromProtoRejects(t *testing.T) {
	_, err := FromProto([]*sorterv1.Event{{Kind: sorterv1.Event_KIND_RESOLVED}, {Kind: sorterv1.Event_KIND_ROW}})
	require.ErrorContains(t, err, "event 1: row event without a row")
	_, err = FromProto([]*sorterv1.Event{{Kind: sorterv1.Event_Kind(42)}})
	require.ErrorContains(t, err, "event 0: unknown kind")
}
