package storefeed

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/formats/storeline"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

func encode(t *testing.T, lines ...*storeline.Line) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	enc := storeline.NewEncoder(&buf)
	for _, l := range lines {
		require.NoError(t, enc.Encode(l))
	}
	require.NoError(t, enc.Flush())
	return &buf
}

var head = []*storeline.Line{
	{T: storeline.TypeHello, Cluster: 7, Tenant: 1, Producer: "test"},
	{T: storeline.TypeSchema, Schema: &storeline.Schema{Ts: 100, SchemaVersion: 3, Objects: []storeline.Object{
		{Kind: "db", DBID: 2, Info: `{"id":2,"db_name":{"O":"d","L":"d"}}`},
		{Kind: "table", DBID: 2, Info: `{"id":10,"name":{"O":"t","L":"t"}}`}}}},
}

// TestFilesFromLines writes two files of a store (a split between them)
// and reads them back with the store-file reader: the same regions, rows
// and resolved ts, headers chained, the schema snapshot and the
// registration and notifications in order.
func TestFilesFromLines(t *testing.T) {
	k1, k2 := tidbcodec.EncodeRecordKey(10, 1), tidbcodec.EncodeRecordKey(10, 2)
	split := tidbcodec.EncodeRecordKey(10, 2)
	lines := append(head[:2:2],
		&storeline.Line{T: storeline.TypeStart, Store: 1, Region: &storeline.Region{ID: 2, Version: 1, ConfVer: 1}, Term: 6, Reason: storeline.ReasonBootstrap},
		&storeline.Line{T: storeline.TypeRows, Store: 1, RegionID: 2, Rows: []storeline.Row{
			{Type: storeline.RowPrewrite, Op: storeline.OpPut, StartTs: 110, Key: k1, Value: []byte("v1")},
			{Type: storeline.RowCommitted, Op: storeline.OpDelete, StartTs: 111, CommitTs: 112, Key: k2}}},
		&storeline.Line{T: storeline.TypeResolved, Store: 1, Ts: 109, Regions: []uint64{2}},
		&storeline.Line{T: storeline.TypeCut, Store: 1, MaxTs: 120, UnixMs: 5},
		&storeline.Line{T: storeline.TypeEnd, Store: 1, RegionID: 2, Resolved: 109, Reason: storeline.ReasonSplit},
		&storeline.Line{T: storeline.TypeStart, Store: 1, Region: &storeline.Region{ID: 3, End: split, Version: 2, ConfVer: 1}, Term: 6,
			Reason: storeline.ReasonSplit, Preds: []storeline.Ref{{ID: 2, Version: 1, Term: 6}}},
		&storeline.Line{T: storeline.TypeStart, Store: 1, Region: &storeline.Region{ID: 2, Start: split, Version: 2, ConfVer: 1}, Term: 6,
			Reason: storeline.ReasonSplit, Preds: []storeline.Ref{{ID: 2, Version: 1, Term: 6}}},
		&storeline.Line{T: storeline.TypeRows, Store: 1, RegionID: 3, Rows: []storeline.Row{
			{Type: storeline.RowCommit, Op: storeline.OpPut, StartTs: 110, CommitTs: 125, Key: k1}}},
		&storeline.Line{T: storeline.TypeResolved, Store: 1, Ts: 126, Regions: []uint64{2, 3}},
		&storeline.Line{T: storeline.TypeCut, Store: 1, MaxTs: 130, UnixMs: 6},
		// After the last cut: dropped at EOF.
		&storeline.Line{T: storeline.TypeResolved, Store: 1, Ts: 131, Regions: []uint64{2, 3}},
	)
	store := objstore.NewMemory()
	var events []string
	st, err := Run(context.Background(), encode(t, lines...), Options{Store: store,
		OnTenant: func(_ context.Context, c, tn uint64) error { events = append(events, "tenant"); return nil },
		OnFile: func(_ context.Context, key string, h *formatv1.StoreFileHeader) error {
			events = append(events, key)
			return nil
		}})
	require.NoError(t, err)
	require.Equal(t, Stats{Files: 2, Rows: 3, Bytes: st.Bytes, Dropped: 1}, st)
	f1, f2 := layout.StoreFileKey(7, 1, 1, 1, 120), layout.StoreFileKey(7, 1, 1, 2, 130)
	require.Equal(t, []string{"tenant", f1, f2}, events)

	snap, err := store.Get(context.Background(), layout.SchemaSnapshotKey(7, 1, 100))
	require.NoError(t, err)
	sn, err := schemasnap.Decode("snap", snap)
	require.NoError(t, err)
	require.Equal(t, uint64(100), sn.Header.Ts)

	var got []string
	var last *formatv1.StoreFileHeader
	stream := storefile.NewStream(nil) // one store's files, in order
	for _, key := range []string{f1, f2} {
		b, err := store.Get(context.Background(), key)
		require.NoError(t, err)
		r, err := stream.Open(key, b)
		require.NoError(t, err)
		h := r.Header()
		if last != nil {
			require.Equal(t, last.MaxTs, h.PrevMaxTs)
			led := 0
			r.EachLeader(func(storefile.Incarnation) { led++ })
			require.Equal(t, 1, led) // the parent, led when the file opened
		}
		last = h
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			switch {
			case rec.RegionChange != nil:
				got = append(got, rec.RegionChange.Kind.String()+" "+rec.RegionChange.Reason.String())
			case rec.Event.ResolvedTs != nil:
				got = append(got, "resolved")
			default:
				for _, e := range rec.Event.Events {
					for _, row := range e.GetEntries().Entries {
						got = append(got, row.Type.String()+" "+row.OpType.String())
					}
				}
			}
		}
	}
	require.Equal(t, []string{"KIND_START REASON_BOOTSTRAP", "PREWRITE PUT", "COMMITTED DELETE", "resolved",
		"KIND_END REASON_SPLIT", "KIND_START REASON_SPLIT", "KIND_START REASON_SPLIT", "COMMIT PUT", "resolved"}, got)
}

func TestStreamRulesRefused(t *testing.T) {
	start := &storeline.Line{T: storeline.TypeStart, Store: 1, Region: &storeline.Region{ID: 2, Version: 1, ConfVer: 1}, Term: 6, Reason: storeline.ReasonBootstrap}
	for _, tc := range []struct {
		name  string
		lines []*storeline.Line
		want  string
	}{
		{"no hello", []*storeline.Line{head[1]}, "before the hello"},
		{"rows before schema", []*storeline.Line{head[0], start}, "before the schema"},
		{"rows of a region not led", append(head[:2:2], &storeline.Line{T: storeline.TypeRows, Store: 1, RegionID: 9,
			Rows: []storeline.Row{{Type: storeline.RowRollback, StartTs: 5, Key: []byte("k")}}}), "does not lead"},
		{"started twice", append(head[:2:2], start, start), "already leads"},
		{"end not led", append(head[:2:2], &storeline.Line{T: storeline.TypeEnd, Store: 1, RegionID: 2}), "does not lead"},
		{"max_ts too low", append(head[:2:2], start, &storeline.Line{T: storeline.TypeResolved, Store: 1, Ts: 500, Regions: []uint64{2}},
			&storeline.Line{T: storeline.TypeCut, Store: 1, MaxTs: 400}), "below a ts of its file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), encode(t, tc.lines...), Options{Store: objstore.NewMemory()})
			require.Error(t, err)
			require.True(t, strings.Contains(err.Error(), tc.want), err.Error())
		})
	}
}

// TestRetryLandsOnce: a file that already exists with the same bytes (an
// upload retried after it landed) is fine; with other bytes it is
// another producer, an error.
func TestRetryLandsOnce(t *testing.T) {
	lines := append(head[:2:2],
		&storeline.Line{T: storeline.TypeStart, Store: 1, Region: &storeline.Region{ID: 2, Version: 1, ConfVer: 1}, Term: 6, Reason: storeline.ReasonBootstrap},
		&storeline.Line{T: storeline.TypeCut, Store: 1, MaxTs: 120, UnixMs: 5})
	store := objstore.NewMemory()
	_, err := Run(context.Background(), encode(t, lines...), Options{Store: store})
	require.NoError(t, err)
	_, err = Run(context.Background(), encode(t, lines...), Options{Store: store})
	require.NoError(t, err)
	lines[len(lines)-1] = &storeline.Line{T: storeline.TypeCut, Store: 1, MaxTs: 120, UnixMs: 6}
	_, err = Run(context.Background(), encode(t, lines...), Options{Store: store})
	require.ErrorContains(t, err, "another producer")
}
