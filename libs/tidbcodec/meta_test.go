package tidbcodec

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMetaKeysKnown(t *testing.T) {
	// m | EncodeBytes("DBs") | EncodeUint('h') | EncodeBytes("DB:1")
	require.Equal(t,
		"6d"+"4442730000000000fa"+"0000000000000068"+"44423a3100000000fb",
		hex.EncodeToString(MetaDBKey(1)))
	// m | EncodeBytes("DB:2") | 'h' | EncodeBytes("Table:42")
	require.Equal(t,
		"6d"+"44423a3200000000fb"+"0000000000000068"+"5461626c653a3432ff0000000000000000f7",
		hex.EncodeToString(MetaTableKey(2, 42)))
	// m | EncodeBytes("SchemaVersionKey") | 's'
	require.Equal(t,
		"6d"+"536368656d615665ff7273696f6e4b6579ff0000000000000000f7"+"0000000000000073",
		hex.EncodeToString(MetaSchemaVersionKey()))
	require.Equal(t, EncodeMetaHashPrefix([]byte("DB:2")), MetaTablesPrefix(2))
	require.Equal(t, MetaTablesPrefix(2), MetaTableKey(2, 42)[:len(MetaTablesPrefix(2))])
}

func TestDecodeMetaKeyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		key  []byte
		want MetaKey
	}{
		{MetaDBKey(12), MetaKey{Type: MetaHashData, Key: []byte("DBs"), Field: []byte("DB:12")}},
		{MetaTableKey(12, 34), MetaKey{Type: MetaHashData, Key: []byte("DB:12"), Field: []byte("Table:34")}},
		{MetaSchemaVersionKey(), MetaKey{Type: MetaStringData, Key: []byte("SchemaVersionKey")}},
		{MetaSchemaDiffKey(7), MetaKey{Type: MetaStringData, Key: []byte("Diff:7")}},
		{MetaDDLJobHistoryKey(258), MetaKey{Type: MetaHashData, Key: []byte("DDLJobHistory"), Field: []byte{0, 0, 0, 0, 0, 0, 1, 2}}},
		{EncodeMetaHashMetaKey([]byte("DBs")), MetaKey{Type: MetaHashMeta, Key: []byte("DBs")}},
		{EncodeMetaListKey([]byte("L"), -3), MetaKey{Type: MetaListData, Key: []byte("L"), Index: -3}},
		{EncodeMetaListMetaKey([]byte("L")), MetaKey{Type: MetaListMeta, Key: []byte("L")}},
		{EncodeMetaHashKey([]byte{}, []byte{}), MetaKey{Type: MetaHashData, Key: []byte{}, Field: []byte{}}},
	} {
		got, err := DecodeMetaKey(tc.key)
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
		require.Equal(t, KeyMeta, ClassifyKey(tc.key))
	}
}

func TestDecodeMetaKeyErrors(t *testing.T) {
	dbs := EncodeBytes([]byte{'m'}, []byte("DBs"))
	for _, tc := range []struct {
		name   string
		key    []byte
		offset int
	}{
		{"empty", nil, 0},
		{"table key", EncodeRecordKey(1, 1), 0},
		{"bad key bytes", []byte("mDBs"), 1},
		{"no type", dbs, 10},
		{"unknown type", EncodeUint(dbs, 'x'), 10},
		{"hash without field", EncodeUint(dbs, 'h'), 18},
		{"list without index", EncodeUint(dbs, 'l'), 18},
		{"string with trailing bytes", append(MetaSchemaVersionKey(), 0), 36},
		{"hash with trailing bytes", append(MetaDBKey(1), 7), 27},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeMetaKey(tc.key)
			require.ErrorIs(t, err, ErrMalformed)
			require.Equal(t, tc.offset, err.(*DecodeError).Offset, "%v", err)
		})
	}
}

func TestParseFields(t *testing.T) {
	for _, tc := range []struct {
		parse func(string) (int64, error)
		in    string
		want  int64
		ok    bool
	}{
		{ParseDBField, "DB:12", 12, true},
		{ParseDBField, DBField(-9), -9, true},
		{ParseDBField, "DB:", 0, false},
		{ParseDBField, "DB:1x", 0, false},
		{ParseDBField, "Table:1", 0, false},
		{ParseDBField, "DB:99999999999999999999", 0, false},
		{ParseTableField, "Table:34", 34, true},
		{ParseTableField, TableField(1 << 40), 1 << 40, true},
		{ParseTableField, "TID:34", 0, false},
		{ParseTableField, "Table34", 0, false},
	} {
		got, err := tc.parse(tc.in)
		if !tc.ok {
			require.ErrorIs(t, err, ErrMalformed, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got)
	}
}
