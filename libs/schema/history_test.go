package schema_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
	cfg.DDLEvery = 300 * time.Millisecond
	store, truthBytes, st := simtest.Run(t, cfg)
	require.Greater(t, st.DDLs, int64(10))

	_, _, snap := simSnapshot(t, store, cfg.ClusterID)
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

	h.SetResolved(st.FinalResolvedTs)
	require.Equal(t, h.Resolved(), h.ChangesResolved(), "every job arrived")

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
			kinds[l.DDL.Action]++
			checkDDL(t, h, l.DDL)
		case truth.KindRow:
			rows++
			require.Equal(t, l.Row.SchemaVersion, h.SchemaVersionAt(l.Row.CommitTs))
			_, ok := h.Table(l.Row.TableID, l.Row.CommitTs)
			require.True(t, ok, "row of table %d at %d whose table does not exist then", l.Row.TableID, l.Row.CommitTs)
		}
	}
	require.Greater(t, rows, 1000)
	for _, k := range []string{"create_table", "add_column", "drop_column", "add_index", "truncate_table", "rename_table", "drop_table", "alter_table"} {
		require.Greater(t, kinds[k], 0, "no %s in the simulated history", k)
	}
}

// decodeInfo decodes a version's whole TableInfo (the history keeps its
// head decoded; Raw is TiDB's JSON), checking the head agrees with it.
func decodeInfo(t *testing.T, v schema.Table) *tidbcodec.TableInfo {
	t.Helper()
	info, err := v.Decode()
	require.NoError(t, err)
	require.Equal(t, v.Info.ID, info.ID)
	require.Equal(t, v.Info.Name, info.Name)
	return info
}

// checkDDL checks one truth DDL against the history: the schema version,
// the table before and after, its TableInfo, and the DDL job attached to
// the change (only to a statement's last step).
func checkDDL(t *testing.T, h *schema.History, d truth.DDL) {
	t.Helper()
	require.Equal(t, d.SchemaVersion, h.SchemaVersionAt(d.CommitTs), "version at DDL %+v", d)
	require.Equal(t, d.SchemaVersion-1, h.SchemaVersionAt(d.CommitTs-1), "version just before DDL %+v", d)
	after, existsAfter := h.Table(d.TableID, d.CommitTs)
	before, existsBefore := h.Table(d.TableID, d.CommitTs-1)
	switch d.Action {
	case "create_table":
		require.True(t, existsAfter && !existsBefore, "%+v", d)
	case "drop_table":
		require.True(t, !existsAfter && existsBefore, "%+v", d)
	case "truncate_table":
		_, oldBefore := h.Table(d.OldTableID, d.CommitTs-1)
		_, oldAfter := h.Table(d.OldTableID, d.CommitTs)
		require.True(t, existsAfter && !existsBefore && oldBefore && !oldAfter, "%+v", d)
	case "add_column":
		require.Len(t, decodeInfo(t, after).Columns, len(decodeInfo(t, before).Columns)+1, "%+v", d)
	case "drop_column":
		require.Len(t, decodeInfo(t, after).Columns, len(decodeInfo(t, before).Columns)-1, "%+v", d)
	case "add_index":
		idx := decodeInfo(t, after).Indices
		require.Equal(t, tidbcodec.StatePublic, idx[len(idx)-1].State, "%+v", d)
	case "rename_table":
		require.NotEqual(t, before.Info.Name.O, after.Info.Name.O, "%+v", d)
	case "alter_table":
		require.True(t, existsAfter && existsBefore, "%+v", d)
	}
	if existsAfter {
		require.Equal(t, d.DBID, after.DBID, "%+v", d)
		require.Equal(t, d.TableName, after.Info.Name.O)
		require.JSONEq(t, string(d.TableInfo), string(after.Raw))
	} else {
		require.Equal(t, d.DBID, before.DBID, "%+v", d)
	}
	var c *schema.Change
	for _, ch := range h.Changes(d.CommitTs-1, d.CommitTs) {
		if ch.TableID == d.TableID {
			c = &ch
		}
	}
	require.NotNil(t, c, "no change for %+v", d)
	require.Equal(t, d.DBName, c.DBName)
	if d.JobID == 0 {
		require.Nil(t, c.Job, "an intermediate step has no job: %+v", d)
		return
	}
	require.NotNil(t, c.Job, "%+v", d)
	require.Equal(t, d.JobID, c.Job.ID)
	require.Equal(t, d.Query, c.Job.Query)
	require.Equal(t, tidbcodec.JobStateSynced, c.Job.State)
	require.Greater(t, c.Job.CommitTs, d.CommitTs, "TiDB writes the job after its last change")
	if existsBefore {
		require.Equal(t, before.Info.Name.O, c.OldTableName)
	}
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
