package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	tc "github.com/tistream/tistream/libs/tidbcodec"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	"google.golang.org/grpc"
)

// TestPullDecode: --decode writes rows with their columns by name (old
// values too), DDLs with their statement, and resolved ts.
func TestPullDecode(t *testing.T) {
	info, err := tc.NewTableBuilder(112, "t").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)).
		Column("name", tc.VarcharType(10)).Column("price", tc.DecimalType(8, 2)).Column("at", tc.DatetimeType(0)).Build()
	require.NoError(t, err)
	raw, err := json.Marshal(info)
	require.NoError(t, err)
	row := func(vals ...tc.Value) []byte {
		b, err := tc.EncodeRow(nil, []tc.ColumnValue{{ID: 2, Value: vals[0]}, {ID: 3, Value: vals[1]}, {ID: 4, Value: vals[2]}})
		require.NoError(t, err)
		return b
	}
	v1 := row(tc.StringValue("pen"), tc.DecimalValue(tc.MustDecimal("1.50", 8, 2)), tc.TimeValue(tc.Time{Year: 2026, Month: 1, Day: 2, Hour: 3}))
	msgs := [][]*apiv1.PullEvent{
		{{Event: &apiv1.PullEvent_Ddl{Ddl: &apiv1.DDL{CommitTs: 40, SchemaVersion: 8, Kind: apiv1.DDL_KIND_CREATE_TABLE, DbId: 2, TableId: 112,
			DbName: "db", TableName: "t", TableInfoJson: raw, Query: "CREATE TABLE t (...)", JobId: 9, JobType: 3}}}},
		{{Event: &apiv1.PullEvent_Row{Row: &apiv1.RowChange{TableId: 112, CommitTs: 50, StartTs: 49, Op: apiv1.Op_OP_PUT,
			Key: tc.EncodeRecordKey(112, 7), Value: v1, SchemaVersion: 8}}},
			{Event: &apiv1.PullEvent_Row{Row: &apiv1.RowChange{TableId: 112, CommitTs: 60, StartTs: 59, Op: apiv1.Op_OP_DELETE,
				Key: tc.EncodeRecordKey(112, 7), OldValue: v1, SchemaVersion: 8}}},
			{Event: &apiv1.PullEvent_Resolved{Resolved: &apiv1.Resolved{Ts: 100}}}},
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	apiv1.RegisterTiStreamServiceServer(srv, &stuckAPI{msgs: msgs})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	var stdout, stderr bytes.Buffer
	code := runPull(context.Background(), []string{"--api", lis.Addr().String(), "--insecure", "--tenant", "1", "--decode",
		"--until-resolved", "100", "--timeout", "1m"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	require.Len(t, lines, 4, stdout.String())
	require.JSONEq(t, `{"type":"ddl","tenant":1,"commit_ts":40,"schema_version":8,"kind":"create_table","db_id":2,"table_id":112,
		"db":"db","table":"t","query":"CREATE TABLE t (...)","job_id":9,"job_type":3}`, lines[0])
	require.Equal(t, `{"type":"row","tenant":1,"db":"db","table":"t","table_id":112,"commit_ts":50,"start_ts":49,"op":"put","schema_version":8,`+
		`"columns":{"id":7,"name":"pen","price":"1.50","at":"2026-01-02 03:00:00.000000"}}`, lines[1])
	require.Equal(t, `{"type":"row","tenant":1,"db":"db","table":"t","table_id":112,"commit_ts":60,"start_ts":59,"op":"delete","schema_version":8,`+
		`"old":{"id":7,"name":"pen","price":"1.50","at":"2026-01-02 03:00:00.000000"}}`, lines[2])
	require.Equal(t, `{"type":"resolved","ts":100}`, lines[3])
	require.Contains(t, stderr.String(), "done after 2 rows and 1 DDLs")
}
