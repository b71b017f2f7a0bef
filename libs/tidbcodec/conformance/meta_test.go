package conformance

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/tidb/pkg/kv"
	"github.com/pingcap/tidb/pkg/meta"
	"github.com/pingcap/tidb/pkg/meta/model"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/structure"
	"github.com/pingcap/tidb/pkg/tablecodec"
	"github.com/stretchr/testify/require"

	tc "github.com/tistream/tistream/libs/tidbcodec"
)

// recordingTxn is an in-memory transaction that drives TiDB's real meta
// Mutator and records every key it writes. Only the methods the meta and
// structure packages call are implemented; the embedded nil interface makes
// any other call fail loudly.
type recordingTxn struct {
	kv.Transaction
	data    map[string][]byte
	written [][]byte
}

func newRecordingTxn() *recordingTxn { return &recordingTxn{data: map[string][]byte{}} }

func (*recordingTxn) SetOption(int, any)                 {}
func (*recordingTxn) SetDiskFullOpt(kvrpcpb.DiskFullOpt) {}
func (*recordingTxn) StartTS() uint64                    { return 424242 }

func (r *recordingTxn) Get(_ context.Context, k kv.Key) ([]byte, error) {
	if v, ok := r.data[string(k)]; ok {
		return v, nil
	}
	return nil, kv.ErrNotExist
}

func (r *recordingTxn) Set(k kv.Key, v []byte) error {
	r.data[string(k)] = v
	r.written = append(r.written, append([]byte(nil), k...))
	return nil
}

func (r *recordingTxn) take() [][]byte {
	w := r.written
	r.written = nil
	return w
}

// TestMetaKeysMatchTiDBMutator runs TiDB's own CREATE DATABASE, CREATE
// TABLE, schema-version and DDL-history writes and checks that each key it
// writes is the one our builders produce, and that ours decode it.
func TestMetaKeysMatchTiDBMutator(t *testing.T) {
	txn := newRecordingTxn()
	m := meta.NewMutator(txn)

	db := &model.DBInfo{ID: 12, Name: ast.NewCIStr("shop"), State: model.StatePublic}
	require.NoError(t, m.CreateDatabase(db))
	require.Equal(t, [][]byte{tc.MetaDBKey(12)}, txn.take())

	tbl := &model.TableInfo{ID: 34, Name: ast.NewCIStr("orders"), State: model.StatePublic}
	require.NoError(t, m.CreateTableOrView(12, tbl))
	require.Equal(t, [][]byte{tc.MetaTableKey(12, 34)}, txn.take())

	_, err := m.GenSchemaVersion()
	require.NoError(t, err)
	require.Equal(t, [][]byte{tc.MetaSchemaVersionKey()}, txn.take())

	job := &model.Job{ID: 258, Type: model.ActionCreateTable, SchemaID: 12, TableID: 34, Version: model.JobVersion1}
	require.NoError(t, m.AddHistoryDDLJob(job, false))
	require.Equal(t, [][]byte{tc.MetaDDLJobHistoryKey(258)}, txn.take())
	require.Equal(t, []byte(meta.DDLJobHistoryKey(m, 258)), tc.MetaDDLJobHistoryKey(258))

	// The values are the plain JSON of the definitions.
	var ours tc.TableInfo
	require.NoError(t, json.Unmarshal(txn.data[string(tc.MetaTableKey(12, 34))], &ours))
	require.Equal(t, int64(34), ours.ID)

	// TiDB's exported field builders and parsers agree with ours.
	for _, id := range []int64{0, 1, 12, 1 << 40} {
		require.Equal(t, string(meta.DBkey(id)), tc.DBField(id))
		require.Equal(t, string(meta.TableKey(id)), tc.TableField(id))
		got, err := tc.ParseDBField(string(meta.DBkey(id)))
		require.NoError(t, err)
		require.Equal(t, id, got)
		theirs, err := meta.ParseTableKey([]byte(tc.TableField(id)))
		require.NoError(t, err)
		require.Equal(t, id, theirs)
	}

	// Our decoder reads every key TiDB wrote; TiDB's reads ours.
	for k := range txn.data {
		mk, err := tc.DecodeMetaKey([]byte(k))
		require.NoError(t, err)
		if mk.Type == tc.MetaHashData {
			key, field, err := tablecodec.DecodeMetaKey(kv.Key(k))
			require.NoError(t, err)
			require.Equal(t, key, mk.Key)
			require.Equal(t, field, mk.Field)
		}
	}
}

// TestStructureKeysMatchTiDB compares every structure key form with TiDB's
// structure package and tablecodec's meta-key helpers directly.
func TestStructureKeysMatchTiDB(t *testing.T) {
	txn := newRecordingTxn()
	s := structure.NewStructure(txn, txn, []byte{'m'})
	for _, key := range [][]byte{[]byte("DBs"), []byte("DB:7"), {}, []byte("exactly8"), {0, 0xff, 0xf7}} {
		for _, field := range [][]byte{[]byte("Table:9"), {}, []byte("a field longer than sixteen bytes")} {
			require.Equal(t, []byte(s.EncodeHashDataKey(key, field)), tc.EncodeMetaHashKey(key, field))
			require.Equal(t, []byte(tablecodec.EncodeMetaKey(key, field)), tc.EncodeMetaHashKey(key, field))
		}
		require.Equal(t, []byte(tablecodec.EncodeMetaKeyPrefix(key)), tc.EncodeMetaHashPrefix(key))
		require.Equal(t, []byte(s.EncodeHashMetaKey(key)), tc.EncodeMetaHashMetaKey(key))
		require.Equal(t, []byte(s.EncodeStringDataKey(key)), tc.EncodeMetaStringKey(key))

		// Writes through the structure API land on our keys.
		require.NoError(t, s.Set(key, []byte("1")))
		require.Equal(t, [][]byte{tc.EncodeMetaStringKey(key)}, txn.take())
		require.NoError(t, s.HSet(key, []byte("f"), []byte("v")))
		require.Equal(t, [][]byte{tc.EncodeMetaHashKey(key, []byte("f"))}, txn.take())

		// Lists: TiDB's list keys are unexported, so check what RPush and
		// LPush write decodes with ours and re-encodes to the same bytes.
		require.NoError(t, s.RPush(key, []byte("x")))
		require.NoError(t, s.LPush(key, []byte("y")))
		written := txn.take()
		require.Len(t, written, 4)
		for _, k := range written {
			mk, err := tc.DecodeMetaKey(k)
			require.NoError(t, err)
			require.Equal(t, key, mk.Key)
			switch mk.Type {
			case tc.MetaListData:
				require.Equal(t, k, tc.EncodeMetaListKey(key, mk.Index))
			case tc.MetaListMeta:
				require.Equal(t, k, tc.EncodeMetaListMetaKey(key))
			default:
				t.Fatalf("unexpected key type %c", mk.Type)
			}
		}
	}
}
