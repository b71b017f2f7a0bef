package conformance

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pingcap/tidb/pkg/kv"
	"github.com/pingcap/tidb/pkg/tablecodec"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tidb/pkg/util/codec"
	"github.com/stretchr/testify/require"
	"github.com/tikv/client-go/v2/tikv"
	pd "github.com/tikv/pd/client"
	"github.com/tikv/pd/client/pkg/caller"

	tc "github.com/tistream/tistream/libs/tidbcodec"
)

// interestingInts are the edges of the memcomparable int form plus random
// values of every magnitude.
func interestingInts(r *rand.Rand, n int) []int64 {
	out := []int64{0, 1, -1, 2, -2, 127, 128, -128, -129, 255, 256, 1 << 31, -1 << 31, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1}
	for range n {
		out = append(out, int64(r.Uint64())>>r.IntN(64))
	}
	return out
}

func TestMemcomparableMatchesTiDB(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, v := range interestingInts(r, 500) {
		require.Equal(t, codec.EncodeInt(nil, v), tc.EncodeInt(nil, v), "EncodeInt(%d)", v)
		require.Equal(t, codec.EncodeUint(nil, uint64(v)), tc.EncodeUint(nil, uint64(v)))
		f := math.Float64frombits(uint64(v))
		require.Equal(t, codec.EncodeFloat(nil, f), tc.EncodeFloat(nil, f))
	}
	for range 500 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(4)) * 85 // 0x00, 0x55, 0xAA, 0xFF: markers and padding look-alikes
		}
		ours := tc.EncodeBytes(nil, b)
		require.Equal(t, codec.EncodeBytes(nil, b), ours)
		_, theirs, err := codec.DecodeBytes(ours, nil)
		require.NoError(t, err)
		require.Equal(t, b, theirs)
	}
}

func TestTableKeysMatchTiDB(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	ids := interestingInts(r, 200)
	for i, table := range ids {
		handle := ids[(i*7+3)%len(ids)]
		index := ids[(i*11+5)%len(ids)]

		require.Equal(t, []byte(tablecodec.EncodeTablePrefix(table)), tc.TablePrefix(table))
		require.Equal(t, []byte(tablecodec.GenTablePrefix(table)), tc.TablePrefix(table))
		require.Equal(t, []byte(tablecodec.GenTableRecordPrefix(table)), tc.TableRecordPrefix(table))
		require.Equal(t, []byte(tablecodec.GenTableIndexPrefix(table)), tc.TableIndexPrefix(table))
		require.Equal(t, []byte(tablecodec.EncodeTableIndexPrefix(table, index)), tc.EncodeIndexPrefix(table, index))

		// Ours encodes like TiDB; TiDB's key decodes with ours.
		theirs := tablecodec.EncodeRowKeyWithHandle(table, kv.IntHandle(handle))
		require.Equal(t, []byte(theirs), tc.EncodeRecordKey(table, handle))
		gotTable, gotHandle, err := tc.DecodeRecordKey(theirs)
		require.NoError(t, err)
		require.Equal(t, table, gotTable)
		require.Equal(t, handle, gotHandle)
		tidbTable, tidbHandle, err := tablecodec.DecodeRecordKey(tc.EncodeRecordKey(table, handle))
		require.NoError(t, err)
		require.Equal(t, table, tidbTable)
		require.Equal(t, handle, tidbHandle.IntValue())
		require.Equal(t, tablecodec.DecodeTableID(theirs), mustTableID(t, theirs))

		idx := tc.EncodeIndexPrefix(table, index)
		gotTable, gotIndex, _, err := tc.DecodeIndexPrefix(tablecodec.EncodeIndexSeekKey(table, index, []byte{1, 2}))
		require.NoError(t, err)
		require.Equal(t, [2]int64{table, index}, [2]int64{gotTable, gotIndex})
		headTable, headIndex, isRecord, err := tablecodec.DecodeKeyHead(idx)
		require.NoError(t, err)
		require.False(t, isRecord)
		require.Equal(t, [2]int64{table, index}, [2]int64{headTable, headIndex})

		// TiDB's table spans.
		start, end := tablecodec.GetTableHandleKeyRange(table)
		span := tc.TableRecordSpan(table)
		require.True(t, span.Contains(start) && span.Contains(end))
		if table != math.MaxInt64 {
			require.Equal(t, []byte(tablecodec.EncodeTablePrefix(table+1)), tc.TableSpan(table).End)
		}
	}
}

func mustTableID(t *testing.T, key []byte) int64 {
	id, err := tc.DecodeTableID(key)
	require.NoError(t, err)
	return id
}

func TestCommonHandleKeysMatchTiDB(t *testing.T) {
	for _, datums := range [][]types.Datum{
		{types.NewIntDatum(1)},
		{types.NewStringDatum("a")},
		{types.NewStringDatum("a longer primary key value"), types.NewIntDatum(-5)},
		{types.NewDecimalDatum(types.NewDecFromInt(7))},
	} {
		encoded, err := codec.EncodeKey(time.UTC, nil, datums...)
		require.NoError(t, err)
		h, err := kv.NewCommonHandle(encoded)
		require.NoError(t, err)
		theirs := tablecodec.EncodeRowKeyWithHandle(99, h)
		require.Equal(t, []byte(theirs), tc.EncodeCommonHandleRecordKey(99, encoded), "%x", encoded)

		table, ours, err := tc.DecodeRecordKeyHandle(theirs)
		require.NoError(t, err)
		require.Equal(t, int64(99), table)
		require.Equal(t, h.Encoded(), ours.Common)
		_, back, err := tablecodec.DecodeRecordKey(tc.EncodeCommonHandleRecordKey(99, encoded))
		require.NoError(t, err)
		require.Equal(t, h.Encoded(), back.Encoded())
	}
}

// fakePD is just enough of a PD client for client-go's codec constructor.
type fakePD struct{ pd.Client }

func (f fakePD) WithCallerComponent(caller.Component) pd.Client { return f }

func TestRegionKeysMatchClientGo(t *testing.T) {
	codecV1 := tikv.NewCodecPDClient(tikv.ModeTxn, fakePD{}).GetCodec()
	r := rand.New(rand.NewPCG(3, 3))
	keys := [][]byte{nil, {}, tc.TablePrefix(1), tc.EncodeRecordKey(5, -1), tc.MetaDBKey(3)}
	for range 100 {
		k := make([]byte, r.IntN(30))
		for i := range k {
			k[i] = byte(r.Uint32())
		}
		keys = append(keys, k)
	}
	for _, raw := range keys {
		if len(raw) > 0 {
			// client-go encodes every start key; ours keeps "" as unbounded.
			require.Equal(t, codecV1.EncodeRegionKey(raw), tc.EncodeRegionKey(raw))
		}
		_, end := codecV1.EncodeRegionRange(nil, raw)
		require.Equal(t, len(end) == 0, len(tc.EncodeRegionKey(raw)) == 0)

		enc := codecV1.EncodeRegionKey(raw)
		theirs, err := codecV1.DecodeRegionKey(enc)
		require.NoError(t, err)
		ours, err := tc.DecodeRegionKey(enc)
		require.NoError(t, err)
		require.Equal(t, len(theirs), len(ours))
		require.Equal(t, string(theirs), string(ours))
	}
	theirs, err := codecV1.DecodeRegionKey(nil)
	require.NoError(t, err)
	require.Empty(t, theirs)
}
