package tidbcodec

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// A job as TiDB writes it to DDLJobHistory (fields trimmed to a few of the
// ones we drop, which must not matter).
const tidbJobJSON = `{"id":258,"type":5,"schema_id":12,"table_id":34,"schema_name":"shop","table_name":"orders",
"state":6,"warning":null,"err":null,"err_count":0,"row_count":0,"raw_args":null,"schema_state":5,"snapshot_ver":0,
"real_start_ts":0,"start_ts":464000000000000001,"dependency_id":0,"query":"ALTER TABLE orders ADD COLUMN c2 INT",
"binlog":{"SchemaVersion":42,"DBInfo":null,"TableInfo":{"id":34,"name":{"O":"orders","L":"orders"}},"FinishedTS":464000000000000009,"MultipleTableInfos":null},
"version":2,"reorg_meta":null,"multi_schema_info":null,"priority":0,"seq_num":7,"charset":"","collate":"",
"admin_operator":0,"trace_info":null,"bdr_role":"","cdc_write_source":0,"local_mode":false,"sql_mode":0,"last_schema_version":0}`

func TestDecodeJob(t *testing.T) {
	j, err := DecodeJob([]byte(tidbJobJSON))
	require.NoError(t, err)
	require.Equal(t, int64(258), j.ID)
	require.Equal(t, ActionAddColumn, j.Type)
	require.Equal(t, "add column", j.Type.String())
	require.Equal(t, JobStateSynced, j.State)
	require.True(t, j.State.Succeeded())
	require.Equal(t, "ALTER TABLE orders ADD COLUMN c2 INT", j.Query)
	require.Equal(t, int64(42), j.SchemaVersion())
	require.Equal(t, uint64(464000000000000009), j.BinlogInfo.FinishedTS)
	require.Equal(t, "orders", j.BinlogInfo.TableInfo.Name.O)

	// Our encoding decodes to the same job.
	b, err := EncodeJob(j)
	require.NoError(t, err)
	again, err := DecodeJob(b)
	require.NoError(t, err)
	b2, err := EncodeJob(again)
	require.NoError(t, err)
	require.JSONEq(t, string(b), string(b2))
	require.Equal(t, j.Query, again.Query)
	require.Equal(t, j.BinlogInfo.FinishedTS, again.BinlogInfo.FinishedTS)
}

func TestDecodeJobRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":          ``,
		"array":          `[1]`,
		"truncated":      `{"id":1,`,
		"no id":          `{"type":3}`,
		"negative id":    `{"id":-4}`,
		"type too large": `{"id":1,"type":300}`,
		"bad binlog":     `{"id":1,"binlog":{"SchemaVersion":"x"}}`,
		"neg version":    `{"id":1,"binlog":{"SchemaVersion":-1}}`,
		"bad state":      `{"id":1,"state":"synced"}`,
	} {
		_, err := DecodeJob([]byte(in))
		require.Error(t, err, name)
		require.True(t, errors.Is(err, ErrMalformed), name)
	}
}

func TestDDLJobField(t *testing.T) {
	for _, id := range []int64{1, 258, 1 << 40} {
		f := DDLJobField(id)
		require.Len(t, f, 8)
		got, err := ParseDDLJobField(f)
		require.NoError(t, err)
		require.Equal(t, id, got)
		mk, err := DecodeMetaKey(MetaDDLJobHistoryKey(id))
		require.NoError(t, err)
		require.Equal(t, MetaDDLJobHistory, string(mk.Key))
		require.Equal(t, f, mk.Field)
	}
	_, err := ParseDDLJobField([]byte{1, 2})
	require.ErrorIs(t, err, ErrMalformed)
	require.Equal(t, "truncate table", ActionTruncateTable.String())
	require.Equal(t, "action(99)", ActionType(99).String())
	require.Equal(t, "rollback done", JobStateRollbackDone.String())
}

// FuzzDecodeJob: no input panics the decoder, and a job that decodes
// re-encodes to JSON that decodes to the same job.
func FuzzDecodeJob(f *testing.F) {
	f.Add([]byte(tidbJobJSON))
	f.Add([]byte(`{"id":1,"type":11,"binlog":{"SchemaVersion":3,"TableInfo":{"id":9}}}`))
	f.Add([]byte(`{"id":1,"binlog":null,"query":"\u0000"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := DecodeJob(b)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		enc, err := EncodeJob(j)
		require.NoError(t, err)
		again, err := DecodeJob(enc)
		require.NoError(t, err)
		a, _ := json.Marshal(again)
		require.JSONEq(t, string(enc), string(a))
	})
}
