package schema_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/schema"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/sim/simtest"
	"github.com/tistream/tistream/libs/tidbcodec"
	"github.com/tistream/tistream/libs/truth"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// The history built from the simulator's snapshot and committed meta-range
// changes agrees with every DDL and every row's schema version in the truth.
func TestHistoryFollowsSimulatedDDL(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Duration = 20 * time.Second
	cfg.RowsPerSec = 500
	cfg.DDLEvery = 500 * time.Millisecond
	store, truthBytes, st := simtest.Run(t, cfg)
	require.Greater(t, st.DDLs, int64(10))

	ctx := context.Background()
	snaps, _, err := store.List(ctx, layout.SchemaSnapshotPrefix(cfg.ClusterID, 1), "", 1)
	require.NoError(t, err)
	b, err := store.Get(ctx, snaps[0].Key)
	require.NoError(t, err)
	snap, err := schemasnap.Decode(snaps[0].Key, b)
	require.NoError(t, err)
	h := schema.New(1)
	require.NoError(t, h.LoadSnapshot(snap))
	require.Len(t, h.DBs(snap.Header.Ts), cfg.DBs)

	for _, c := range simtest.CommittedChanges(t, store, cfg.ClusterID, 1, cfg.Stores) {
		if c.Key[0] != 'm' {
			continue
		}
		op := formatv1.Op_OP_PUT
		if c.Delete {
			op = formatv1.Op_OP_DELETE
		}
		_, err := h.ApplyMeta(c.CommitTs, c.Key, op, c.Value)
		require.NoError(t, err)
	}

	r := truth.NewReader(bytes.NewReader(truthBytes), "truth")
	kinds := map[string]int{}
	rows := 0
	for {
		l, err := r.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		switch l.Kind {
		case truth.KindDDL:
			d := l.DDL
			kinds[d.Action]++
			require.Equal(t, d.SchemaVersion, h.SchemaVersionAt(d.CommitTs), "version at DDL %+v", d)
			require.Equal(t, d.SchemaVersion-1, h.SchemaVersionAt(d.CommitTs-1), "version just before DDL %+v", d)
			_, existsAfter := h.Table(d.TableID, d.CommitTs)
			_, existsBefore := h.Table(d.TableID, d.CommitTs-1)
			switch d.Action {
			case "create_table":
				require.True(t, existsAfter && !existsBefore, "%+v", d)
			case "drop_table":
				require.True(t, !existsAfter && existsBefore, "%+v", d)
			case "add_column":
				before, _ := h.Table(d.TableID, d.CommitTs-1)
				after, _ := h.Table(d.TableID, d.CommitTs)
				require.Len(t, after.Info.Columns, len(before.Info.Columns)+1, "%+v", d)
			}
			tbl, _ := h.Table(d.TableID, d.CommitTs-1)
			if d.Action == "create_table" {
				tbl, _ = h.Table(d.TableID, d.CommitTs)
			}
			require.Equal(t, d.DBID, tbl.DBID)
		case truth.KindRow:
			rows++
			require.Equal(t, l.Row.SchemaVersion, h.SchemaVersionAt(l.Row.CommitTs))
			_, ok := h.Table(l.Row.TableID, l.Row.CommitTs)
			require.True(t, ok, "row of table %d at %d whose table does not exist then", l.Row.TableID, l.Row.CommitTs)
		}
	}
	require.Greater(t, rows, 1000)
	require.Greater(t, kinds["create_table"], 0)
	require.Greater(t, kinds["add_column"], 0)
	require.Greater(t, kinds["drop_table"], 0)
}

func TestChangesOutOfOrderAreRefused(t *testing.T) {
	h := schema.New(1)
	_, err := h.ApplyMeta(10, []byte("mxx"), formatv1.Op_OP_PUT, nil)
	require.ErrorContains(t, err, "meta key 6d7878 at 10")
	changed, err := h.ApplyMeta(10, tidbcodec.MetaSchemaVersionKey(), formatv1.Op_OP_PUT, []byte("7"))
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, int64(7), h.SchemaVersionAt(10))
	_, err = h.ApplyMeta(5, tidbcodec.MetaSchemaVersionKey(), formatv1.Op_OP_PUT, []byte("8"))
	require.ErrorContains(t, err, "commit order")
}
