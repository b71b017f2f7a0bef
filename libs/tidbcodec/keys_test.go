package tidbcodec

import (
	"encoding/hex"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

func TestRecordKeyKnown(t *testing.T) {
	for _, tc := range []struct {
		table, handle int64
		hex           string
	}{
		{100, 1, "748000000000000064" + "5f72" + "8000000000000001"},
		{0, 0, "748000000000000000" + "5f72" + "8000000000000000"},
		{-1, -1, "747fffffffffffffff" + "5f72" + "7fffffffffffffff"},
		{math.MaxInt64, math.MinInt64, "74ffffffffffffffff" + "5f72" + "0000000000000000"},
	} {
		key := EncodeRecordKey(tc.table, tc.handle)
		require.Equal(t, tc.hex, hex.EncodeToString(key))
		table, handle, err := DecodeRecordKey(key)
		require.NoError(t, err)
		require.Equal(t, tc.table, table)
		require.Equal(t, tc.handle, handle)
		table, err = DecodeTableID(key)
		require.NoError(t, err)
		require.Equal(t, tc.table, table)
		require.Equal(t, KeyRecord, ClassifyKey(key))
	}
}

func TestCommonHandleRecordKey(t *testing.T) {
	short := []byte{0x03, 0x80, 0, 0, 0, 0, 0, 1} // 8 bytes: must be padded
	key := EncodeCommonHandleRecordKey(7, short)
	require.Len(t, key, recordPrefixLen+9)
	table, h, err := DecodeRecordKeyHandle(key)
	require.NoError(t, err)
	require.Equal(t, int64(7), table)
	require.True(t, h.IsCommon())
	require.Equal(t, append(short, 0), h.Common)
	_, _, err = DecodeRecordKey(key)
	require.ErrorIs(t, err, ErrMalformed)

	long := []byte("\x01abcdefgh\xff\x00\x00\x00\x00\x00\x00\x00\x00\xf7")
	_, h, err = DecodeRecordKeyHandle(EncodeCommonHandleRecordKey(7, long))
	require.NoError(t, err)
	require.Equal(t, long, h.Common)
}

func TestIndexPrefix(t *testing.T) {
	key := append(EncodeIndexPrefix(5, 2), 0x03, 0x80, 0, 0, 0, 0, 0, 0, 9)
	require.Equal(t, "748000000000000005"+"5f69"+"8000000000000002", hex.EncodeToString(EncodeIndexPrefix(5, 2)))
	require.Equal(t, KeyIndex, ClassifyKey(key))
	table, index, values, err := DecodeIndexPrefix(key)
	require.NoError(t, err)
	require.Equal(t, int64(5), table)
	require.Equal(t, int64(2), index)
	require.Equal(t, []byte{0x03, 0x80, 0, 0, 0, 0, 0, 0, 9}, values)
	require.Equal(t, TableIndexPrefix(5), EncodeIndexPrefix(5, 2)[:indexPrefixLen-8])
}

func TestKeyDecodeErrors(t *testing.T) {
	rec := EncodeRecordKey(1, 2)
	for _, tc := range []struct {
		name   string
		decode func([]byte) error
		key    []byte
		offset int
	}{
		{"table id of empty key", tableIDErr, nil, 0},
		{"table id of meta key", tableIDErr, []byte("mDBs"), 0},
		{"table id short", tableIDErr, rec[:5], 1},
		{"record key short handle", recordErr, rec[:15], recordPrefixLen},
		{"record key is an index key", recordErr, EncodeIndexPrefix(1, 2), tablePrefixLen},
		{"record key ends after table", recordErr, rec[:tablePrefixLen], tablePrefixLen},
		{"index key is a record key", indexErr, rec, tablePrefixLen},
		{"index key short index id", indexErr, EncodeIndexPrefix(1, 2)[:14], tablePrefixLen + 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.decode(tc.key)
			require.ErrorIs(t, err, ErrMalformed)
			require.Equal(t, tc.offset, err.(*DecodeError).Offset, "%v", err)
		})
	}
}

func tableIDErr(k []byte) error { _, err := DecodeTableID(k); return err }
func recordErr(k []byte) error  { _, _, err := DecodeRecordKey(k); return err }
func indexErr(k []byte) error   { _, _, _, err := DecodeIndexPrefix(k); return err }

func TestClassifyKey(t *testing.T) {
	require.Equal(t, KeyOther, ClassifyKey(nil))
	require.Equal(t, KeyOther, ClassifyKey([]byte("t123")))
	require.Equal(t, KeyTable, ClassifyKey(TablePrefix(3)))
	require.Equal(t, KeyTable, ClassifyKey(TableRecordPrefix(3)))
	require.Equal(t, KeyMeta, ClassifyKey(MetaDBKey(1)))
}

func TestSpans(t *testing.T) {
	s := TableSpan(41)
	require.Equal(t, TablePrefix(41), s.Start)
	require.Equal(t, TablePrefix(42), s.End)
	require.True(t, s.Contains(EncodeRecordKey(41, math.MaxInt64)))
	require.True(t, s.Contains(EncodeIndexPrefix(41, 1)))
	require.False(t, s.Contains(EncodeRecordKey(42, math.MinInt64)))

	last := TableSpan(math.MaxInt64)
	require.Equal(t, []byte("u"), last.End)
	require.True(t, last.Contains(EncodeRecordKey(math.MaxInt64, math.MaxInt64)))

	r := TableRecordSpan(41)
	require.Equal(t, "7480000000000000295f72", hex.EncodeToString(r.Start))
	require.Equal(t, "7480000000000000295f73", hex.EncodeToString(r.End))
	require.True(t, r.Contains(EncodeRecordKey(41, math.MinInt64)))
	require.True(t, r.Contains(EncodeCommonHandleRecordKey(41, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})))
	require.False(t, r.Contains(EncodeIndexPrefix(41, math.MaxInt64)))

	ix := TableIndexSpan(41, 3)
	require.True(t, ix.Contains(append(EncodeIndexPrefix(41, 3), 0xff)))
	require.False(t, ix.Contains(EncodeIndexPrefix(41, 4)))

	require.Nil(t, PrefixEnd([]byte{0xff, 0xff}))
	require.Equal(t, []byte{1, 3}, PrefixEnd([]byte{1, 2, 0xff}))
	require.True(t, Span{Start: []byte("a")}.Contains([]byte{0xff, 0xff}))
}

func TestRegionKeys(t *testing.T) {
	require.Empty(t, EncodeRegionKey(nil))
	raw, err := DecodeRegionKey(nil)
	require.NoError(t, err)
	require.Empty(t, raw)

	key := EncodeRecordKey(1, 1)
	enc := EncodeRegionKey(key)
	require.Equal(t, EncodeBytes(nil, key), enc)
	raw, err = DecodeRegionKey(enc)
	require.NoError(t, err)
	require.Equal(t, key, raw)

	// client-go's encoding of an empty lookup key reads back as unbounded.
	raw, err = DecodeRegionKey(EncodeBytes(nil, nil))
	require.NoError(t, err)
	require.Empty(t, raw)

	// Like client-go, bytes after the encoded key are ignored.
	raw, err = DecodeRegionKey(append(enc, 1, 2, 3))
	require.NoError(t, err)
	require.Equal(t, key, raw)

	_, err = DecodeRegionKey(key) // a raw key is not a region boundary
	require.ErrorIs(t, err, ErrMalformed)

	span, err := DecodeRegionSpan(enc, nil)
	require.NoError(t, err)
	require.Equal(t, Span{Start: key, End: []byte{}}, span)
}
