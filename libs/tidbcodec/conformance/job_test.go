package conformance

import (
	"testing"

	"github.com/pingcap/tidb/pkg/meta"
	"github.com/pingcap/tidb/pkg/meta/model"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/stretchr/testify/require"

	tc "github.com/tistream/tistream/libs/tidbcodec"
)

// TestJobMatchesTiDB: a finished job as TiDB's own Mutator writes it to the
// DDLJobHistory hash decodes with ours to the same fields, and a job we
// encode (as the simulator writes it) reads back in TiDB's model.Job.
func TestJobMatchesTiDB(t *testing.T) {
	tbl := &model.TableInfo{ID: 35, Name: ast.NewCIStr("orders"), State: model.StatePublic}
	db := &model.DBInfo{ID: 12, Name: ast.NewCIStr("shop"), State: model.StatePublic}
	jobs := []*model.Job{
		{ID: 258, Type: model.ActionTruncateTable, SchemaID: 12, TableID: 34, SchemaName: "shop", TableName: "orders",
			State: model.JobStateSynced, SchemaState: model.StatePublic, StartTS: 464000000000000001, Version: model.JobVersion2,
			Query: "TRUNCATE TABLE `shop`.`orders`", BinlogInfo: &model.HistoryInfo{SchemaVersion: 42, TableInfo: tbl, FinishedTS: 464000000000000009}},
		{ID: 259, Type: model.ActionCreateSchema, SchemaID: 12, SchemaName: "shop", State: model.JobStateSynced, Version: model.JobVersion1,
			Query: "CREATE DATABASE shop", BinlogInfo: &model.HistoryInfo{SchemaVersion: 43, DBInfo: db}},
		{ID: 260, Type: model.ActionAddIndex, SchemaID: 12, TableID: 35, State: model.JobStateRollbackDone, Version: model.JobVersion2,
			Query: "ALTER TABLE orders ADD INDEX k(c)", BinlogInfo: &model.HistoryInfo{SchemaVersion: 47, TableInfo: tbl}},
		{ID: 261, Type: model.ActionDropColumn, State: model.JobStateCancelled, Version: model.JobVersion2,
			Query: "ALTER TABLE orders DROP COLUMN c", BinlogInfo: &model.HistoryInfo{}},
	}
	for _, job := range jobs {
		txn := newRecordingTxn()
		require.NoError(t, meta.NewMutator(txn).AddHistoryDDLJob(job, false))
		written := txn.take()
		require.Equal(t, [][]byte{tc.MetaDDLJobHistoryKey(job.ID)}, written)
		mk, err := tc.DecodeMetaKey(written[0])
		require.NoError(t, err)
		id, err := tc.ParseDDLJobField(mk.Field)
		require.NoError(t, err)
		require.Equal(t, job.ID, id)

		ours, err := tc.DecodeJob(txn.data[string(written[0])])
		require.NoError(t, err)
		sameJob(t, job, ours)

		// TiDB reads what we encode.
		b, err := tc.EncodeJob(ours)
		require.NoError(t, err)
		theirs := &model.Job{}
		require.NoError(t, theirs.Decode(b))
		sameJob(t, theirs, ours)
		require.Equal(t, job.Type.String(), ours.Type.String())
		require.Equal(t, job.State.String(), ours.State.String())
	}
}

func sameJob(t *testing.T, want *model.Job, got *tc.Job) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, int(want.Type), int(got.Type))
	require.Equal(t, want.SchemaID, got.SchemaID)
	require.Equal(t, want.TableID, got.TableID)
	require.Equal(t, want.SchemaName, got.SchemaName)
	require.Equal(t, want.TableName, got.TableName)
	require.Equal(t, int(want.State), int(got.State))
	require.Equal(t, int(want.SchemaState), int(got.SchemaState))
	require.Equal(t, want.StartTS, got.StartTS)
	require.Equal(t, want.Query, got.Query)
	require.Equal(t, int64(want.Version), got.Version)
	require.Equal(t, want.BinlogInfo.SchemaVersion, got.SchemaVersion())
	require.Equal(t, want.BinlogInfo.FinishedTS, got.BinlogInfo.FinishedTS)
	if want.BinlogInfo.TableInfo != nil {
		require.Equal(t, want.BinlogInfo.TableInfo.ID, got.BinlogInfo.TableInfo.ID)
		require.Equal(t, want.BinlogInfo.TableInfo.Name.O, got.BinlogInfo.TableInfo.Name.O)
	} else {
		require.Nil(t, got.BinlogInfo.TableInfo)
	}
	if want.BinlogInfo.DBInfo != nil {
		require.Equal(t, want.BinlogInfo.DBInfo.ID, got.BinlogInfo.DBInfo.ID)
		require.Equal(t, want.BinlogInfo.DBInfo.Name.O, got.BinlogInfo.DBInfo.Name.O)
	} else {
		require.Nil(t, got.BinlogInfo.DBInfo)
	}
}
