package schema_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/schema"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

func dbJSON(t testing.TB, id int64, name, charset string) []byte {
	d := tidbcodec.NewDBInfo(id, name)
	d.Charset = charset
	b, err := json.Marshal(d)
	require.NoError(t, err)
	return b
}

func tableJSON(t testing.TB, id int64, name string, cols int) []byte {
	tb := tidbcodec.NewTableBuilder(id, name).IntPrimaryKey("id", tidbcodec.IntType(tidbcodec.TypeLonglong, false))
	for i := 1; i < cols; i++ {
		tb.Column("c"+strconv.Itoa(i), tidbcodec.IntType(tidbcodec.TypeLong, false))
	}
	info, err := tb.Build()
	require.NoError(t, err)
	b, err := json.Marshal(info)
	require.NoError(t, err)
	return b
}

// fixture is a tenant whose snapshot at ts 100 holds db 1 "d1" with table
// 10 "t10" and db 2 "d2", at schema version 5.
func fixture(t testing.TB) *schema.History {
	h := schema.New(7)
	require.NoError(t, h.LoadSnapshot(&schemasnap.Snapshot{
		Header: &formatv1.SchemaSnapshotHeader{TenantId: 7, Ts: 100, SchemaVersion: 5},
		Objects: []*formatv1.SchemaObject{
			{Kind: formatv1.SchemaObject_KIND_DATABASE, DbId: 1, InfoJson: dbJSON(t, 1, "d1", "utf8mb4")},
			{Kind: formatv1.SchemaObject_KIND_TABLE, DbId: 1, InfoJson: tableJSON(t, 10, "t10", 2)},
			{Kind: formatv1.SchemaObject_KIND_DATABASE, DbId: 2, InfoJson: dbJSON(t, 2, "d2", "utf8mb4")},
		},
	}))
	return h
}

type kv struct {
	key   []byte
	value []byte // nil = delete
}

func put(key, value []byte) kv { return kv{key, value} }
func del(key []byte) kv        { return kv{key: key} }
func version(v int64) kv {
	return put(tidbcodec.MetaSchemaVersionKey(), []byte(strconv.FormatInt(v, 10)))
}

// txn applies one transaction at ts the way the pool delivers it: rows in
// key order, then the resolved ts.
func txn(t testing.TB, h *schema.History, ts uint64, kvs ...kv) {
	var b schema.MetaBatch
	for _, w := range kvs {
		op := formatv1.Op_OP_PUT
		if w.value == nil {
			op = formatv1.Op_OP_DELETE
		}
		b.Rows = append(b.Rows, pool.Row{CommitTs: ts, StartTs: ts - 1, Op: op, Key: w.key, Value: w.value})
	}
	slices.SortFunc(b.Rows, func(x, y pool.Row) int { return bytes.Compare(x.Key, y.Key) })
	b.Resolved = ts
	_, err := h.ApplyBatch(b)
	require.NoError(t, err)
}

// ddlHistory applies a DDL of every kind on top of the fixture.
func ddlHistory(t testing.TB) *schema.History {
	h := fixture(t)
	txn(t, h, 200, put(tidbcodec.MetaTableKey(1, 11), tableJSON(t, 11, "t11", 1)), version(6))
	txn(t, h, 250, put(tidbcodec.EncodeMetaHashKey([]byte("DB:1"), []byte("TID:10")), []byte("1")), put(tidbcodec.MetaSchemaDiffKey(6), []byte("{}"))) // no schema change
	txn(t, h, 300, put(tidbcodec.MetaTableKey(1, 10), tableJSON(t, 10, "t10", 3)), version(7))
	// RENAME TABLE d1.t10 TO d2.t10: the delete sorts first.
	txn(t, h, 400, del(tidbcodec.MetaTableKey(1, 10)), put(tidbcodec.MetaTableKey(2, 10), tableJSON(t, 10, "t10", 3)), version(8))
	// And back: now the put sorts first.
	txn(t, h, 450, del(tidbcodec.MetaTableKey(2, 10)), put(tidbcodec.MetaTableKey(1, 10), tableJSON(t, 10, "t10", 3)), version(9))
	txn(t, h, 500, version(10))
	txn(t, h, 600, put(tidbcodec.MetaDBKey(3), dbJSON(t, 3, "d3", "utf8mb4")), version(11))
	txn(t, h, 650, put(tidbcodec.MetaDBKey(3), dbJSON(t, 3, "d3", "latin1")), version(12))
	txn(t, h, 700, del(tidbcodec.MetaTableKey(1, 10)), del(tidbcodec.MetaTableKey(1, 11)), del(tidbcodec.MetaDBKey(1)), version(13))
	txn(t, h, 800, del(tidbcodec.MetaTableKey(2, 99))) // a table that never existed
	return h
}

type change struct {
	Ts        uint64
	Kind      schema.ChangeKind
	Version   int64
	DB, Table int64
	DBName    string
	TableName string
	HasInfo   bool
}

func summarize(cs []schema.Change) []change {
	var out []change
	for _, c := range cs {
		out = append(out, change{c.CommitTs, c.Kind, c.SchemaVersion, c.DBID, c.TableID, c.DBName, c.TableName, c.Info != nil})
	}
	return out
}

func TestChangeLogRecordsEveryKind(t *testing.T) {
	h := ddlHistory(t)
	want := []change{
		{200, schema.ChangeCreateTable, 6, 1, 11, "d1", "t11", true},
		{300, schema.ChangeAlterTable, 7, 1, 10, "d1", "t10", true},
		{400, schema.ChangeAlterTable, 8, 2, 10, "d2", "t10", true},
		{450, schema.ChangeAlterTable, 9, 1, 10, "d1", "t10", true},
		{500, schema.ChangeVersion, 10, 0, 0, "", "", false},
		{600, schema.ChangeCreateDB, 11, 3, 0, "d3", "", true},
		{650, schema.ChangeAlterDB, 12, 3, 0, "d3", "", true},
		{700, schema.ChangeDropTable, 13, 1, 10, "d1", "t10", false},
		{700, schema.ChangeDropTable, 13, 1, 11, "d1", "t11", false},
		{700, schema.ChangeDropDB, 13, 1, 0, "d1", "", false},
	}
	require.Equal(t, want, summarize(h.Changes(0, ^uint64(0))))
	require.Equal(t, want[1:3], summarize(h.Changes(200, 400)), "(from, to]")
	require.Empty(t, h.Changes(400, 400))
	require.Empty(t, h.Changes(500, 100))

	tb, ok := h.Table(10, 400)
	require.True(t, ok)
	require.Equal(t, int64(2), tb.DBID)
	tb, ok = h.Table(10, 450)
	require.True(t, ok)
	require.Equal(t, int64(1), tb.DBID)
	_, ok = h.Table(10, 700)
	require.False(t, ok)
	require.Len(t, h.DBs(699), 3)
	require.Len(t, h.DBs(700), 2)
	require.Equal(t, uint64(800), h.LastApplied())
	require.Equal(t, uint64(800), h.Resolved())
}

func TestBadMetaValuesAreErrors(t *testing.T) {
	h := fixture(t)
	_, err := h.ApplyMeta(200, tidbcodec.MetaTableKey(1, 12), formatv1.Op_OP_PUT, tableJSON(t, 13, "t13", 1))
	require.ErrorContains(t, err, "DB:1/Table:12 has id 13")
	_, err = h.ApplyMeta(200, tidbcodec.MetaTableKey(1, 12), formatv1.Op_OP_PUT, []byte("null"))
	require.ErrorContains(t, err, "not a JSON object")
	_, err = h.ApplyMeta(200, tidbcodec.MetaDBKey(4), formatv1.Op_OP_PUT, []byte(`{"id":`))
	require.ErrorContains(t, err, "DBInfo of db 4 at 200")
}
