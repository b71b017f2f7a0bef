package conformance

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/pingcap/tidb/pkg/kv"
	"github.com/pingcap/tidb/pkg/tablecodec"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tidb/pkg/util/codec"
	"github.com/pingcap/tidb/pkg/util/rowcodec"
	"github.com/stretchr/testify/require"
	"github.com/tikv/client-go/v2/tikv"

	tc "github.com/tistream/tistream/libs/tidbcodec"
)

// Differential fuzzing: the same input goes to TiDB's code and ours. TiDB's
// row decoder panics on some malformed rows (it does no bounds checks);
// those panics are recovered and count as TiDB rejecting the input.

// byteSource turns fuzzer bytes into the generators' choices.
type byteSource struct{ b []byte }

func (s *byteSource) Uint64() uint64 {
	var buf [8]byte
	n := copy(buf[:], s.b)
	s.b = s.b[n:]
	return binary.LittleEndian.Uint64(buf[:])
}

func (s *byteSource) IntN(n int) int {
	if n <= 1 {
		return 0
	}
	return int(s.Uint64()>>1) % n
}

func FuzzDiffMemcomparable(f *testing.F) {
	f.Add([]byte{1, 2, 3, 0, 0, 0, 0, 0, 0xfa, 7}, int64(-1))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0xf7}, int64(1<<62))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0xf6}, int64(0))
	f.Fuzz(func(t *testing.T, data []byte, v int64) {
		require.Equal(t, codec.EncodeBytes(nil, data), tc.EncodeBytes(nil, data))
		require.Equal(t, codec.EncodeInt(nil, v), tc.EncodeInt(nil, v))
		require.Equal(t, codec.EncodeFloat(nil, float64(v)), tc.EncodeFloat(nil, float64(v)))

		theirRest, theirs, theirErr := codec.DecodeBytes(data, nil)
		ours, ourRest, ourErr := tc.DecodeBytes(data)
		require.Equal(t, theirErr == nil, ourErr == nil, "TiDB: %v, ours: %v", theirErr, ourErr)
		if ourErr == nil {
			require.True(t, bytes.Equal(theirs, ours))
			require.Equal(t, theirRest, ourRest)
		}
		_, ti, theirErr := codec.DecodeInt(data)
		oi, _, ourErr := tc.DecodeInt(data)
		require.Equal(t, theirErr == nil, ourErr == nil)
		require.Equal(t, ti, oi)
		_, tf, theirErr := codec.DecodeFloat(data)
		of, _, ourErr := tc.DecodeFloat(data)
		require.Equal(t, theirErr == nil, ourErr == nil)
		if ourErr == nil {
			require.Equal(t, math.Float64bits(tf), math.Float64bits(of))
		}
	})
}

func FuzzDiffKeys(f *testing.F) {
	f.Add([]byte(tablecodec.EncodeRowKeyWithHandle(5, kv.IntHandle(-3))))
	f.Add([]byte(tablecodec.EncodeIndexSeekKey(5, 2, []byte{3, 0x80, 0, 0, 0, 0, 0, 0, 1})))
	f.Add([]byte(tablecodec.EncodeMetaKey([]byte("DB:1"), []byte("Table:2"))))
	f.Add(tc.EncodeRegionKey(tc.EncodeRecordKey(1, 1)))
	codecV1 := tikv.NewCodecPDClient(tikv.ModeTxn, fakePD{}).GetCodec()
	f.Fuzz(func(t *testing.T, key []byte) {
		// Int-handle record keys: both decode, to the same ids, or neither.
		theirTable, theirHandle, theirErr := tidbDecodeRecordKey(key)
		ourTable, ourHandle, ourErr := tc.DecodeRecordKeyHandle(key)
		if ourErr == nil && !ourHandle.IsCommon() {
			require.NoError(t, theirErr)
			require.True(t, theirHandle.IsInt())
			require.Equal(t, [2]int64{ourTable, ourHandle.Int}, [2]int64{theirTable, theirHandle.IntValue()})
		}
		if theirErr == nil && theirHandle.IsInt() {
			require.NoError(t, ourErr)
			require.Equal(t, theirHandle.IntValue(), ourHandle.Int)
		}
		if theirErr == nil && ourErr == nil && ourHandle.IsCommon() {
			require.Equal(t, theirHandle.Encoded(), ourHandle.Common)
		}

		// Index keys: TiDB's DecodeKeyHead against ours.
		hTable, hIndex, isRecord, headErr := tablecodec.DecodeKeyHead(key)
		iTable, iIndex, _, indexErr := tc.DecodeIndexPrefix(key)
		require.Equal(t, headErr == nil && !isRecord, indexErr == nil, "TiDB: %v, ours: %v", headErr, indexErr)
		if indexErr == nil {
			require.Equal(t, [2]int64{hTable, hIndex}, [2]int64{iTable, iIndex})
		}

		// Meta hash keys: TiDB ignores bytes after the field; we reject them.
		mKey, mField, mErr := tablecodec.DecodeMetaKey(key)
		mk, ourMetaErr := tc.DecodeMetaKey(key)
		if ourMetaErr == nil && mk.Type == tc.MetaHashData {
			require.NoError(t, mErr)
			require.True(t, bytes.Equal(mKey, mk.Key) && bytes.Equal(mField, mk.Field))
		}
		if mErr == nil && (ourMetaErr != nil || mk.Type != tc.MetaHashData) {
			require.NotEqual(t, key, tc.EncodeMetaHashKey(mKey, mField), "TiDB and ours disagree on a canonical meta key")
		}

		// Region boundaries: same success and same raw key as client-go.
		theirRaw, regionErr := codecV1.DecodeRegionKey(key)
		ourRaw, ourRegionErr := tc.DecodeRegionKey(key)
		require.Equal(t, regionErr == nil, ourRegionErr == nil)
		require.True(t, bytes.Equal(theirRaw, ourRaw))
	})
}

func tidbDecodeRecordKey(key []byte) (table int64, h kv.Handle, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errPanic
		}
	}()
	return tablecodec.DecodeRecordKey(key)
}

type panicError struct{}

func (panicError) Error() string { return "TiDB panicked" }

var errPanic = panicError{}

func FuzzDiffRowEncode(f *testing.F) {
	f.Add([]byte{5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add(bytes.Repeat([]byte{0x17, 0xff, 0x03, 0x80}, 40))
	var enc rowcodec.Encoder
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &byteSource{b: data}
		cols := genSchema(s, s.IntN(25), s.IntN(2) == 0)
		ours, ids, datums := genRow(s, cols)
		checkRow(t, &enc, cols, ours, ids, datums, s.IntN(3) == 0, int64(s.Uint64()))
	})
}

// fuzzSchema gives every small column id a type, plus a few large ids.
func fuzzSchema() []column {
	var cols []column
	for id := int64(0); id < 256; id++ {
		cols = append(cols, column{id: id, ct: colTypes[id%int64(len(colTypes))]})
	}
	for _, id := range []int64{256, 1000, 1 << 20, 1<<32 - 1} {
		cols = append(cols, column{id: id, ct: colTypes[id%int64(len(colTypes))]})
	}
	return cols
}

func FuzzDiffRowDecode(f *testing.F) {
	var enc rowcodec.Encoder
	seedRand := &byteSource{b: bytes.Repeat([]byte{0x5a, 0x13, 0xc7}, 200)}
	for i := range 6 {
		cols := genSchema(seedRand, 4+i, i%2 == 0)
		_, ids, datums := genRow(seedRand, cols)
		row, err := enc.Encode(time.UTC, ids, datums, nil, nil)
		require.NoError(f, err)
		f.Add(row)
	}
	schema := fuzzSchema()
	byID := map[int64]colType{}
	for _, c := range schema {
		byID[c.id] = c.ct
	}
	descs := ourDescs(schema)
	f.Fuzz(func(t *testing.T, data []byte) {
		theirs, theirErr := tidbDecode(tidbDecoder(schema), data)
		ours, ourErr := tc.DecodeRow(data, descs)
		if ourErr == nil {
			require.NoError(t, theirErr, "we accept what TiDB rejects")
			require.Len(t, theirs, len(ours))
			for id, v := range ours {
				same, err := sameValue(theirs[id], byID[id], asTiDBSees(v, byID[id]))
				require.NoError(t, err)
				require.True(t, same, "column %d (%s): TiDB %v, ours %v", id, byID[id].name, theirs[id], v)
			}
			return
		}
		if theirErr != nil {
			return
		}
		// TiDB accepts bytes we reject: they must not be what TiDB's encoder
		// writes for the values TiDB read.
		var ids []int64
		var datums []types.Datum
		for id, d := range theirs {
			ids = append(ids, id)
			datums = append(datums, d)
		}
		again, err := enc.Encode(time.UTC, ids, datums, nil, nil)
		require.False(t, err == nil && bytes.Equal(again, data), "we reject a canonical row: %v", ourErr)
	})
}
