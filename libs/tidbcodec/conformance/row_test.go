package conformance

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pingcap/tidb/pkg/kv"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tidb/pkg/util/codec"
	"github.com/pingcap/tidb/pkg/util/rowcodec"
	"github.com/stretchr/testify/require"

	tc "github.com/tistream/tistream/libs/tidbcodec"
)

// TestRowMatchesTiDB encodes random rows over every supported type with
// both encoders and requires identical bytes; then each side's decoder reads
// the other's bytes back to the original values.
func TestRowMatchesTiDB(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	var enc rowcodec.Encoder
	rows := 0
	for schemaNo := range 300 {
		cols := genSchema(r, r.IntN(30), schemaNo%3 == 0)
		huge := schemaNo%25 == 0
		if huge { // data past 64 KiB with small ids
			cols = slices.DeleteFunc(cols, func(c column) bool { return c.id == 255 })
			cols = append(cols, column{id: 255, ct: bytesCol("huge", 0xfb)})
		}
		for range 10 {
			ours, ids, datums := genRow(r, cols)
			if huge && len(ours) > 0 && ours[len(ours)-1].ID == 255 && !ours[len(ours)-1].Value.IsNull() {
				big := bytes.Repeat([]byte{byte(r.Uint32())}, 65536+r.IntN(1000))
				ours[len(ours)-1].Value = tc.BytesValue(big)
				datums[len(datums)-1] = types.NewBytesDatum(big)
			}
			checkRow(t, &enc, cols, ours, ids, datums, r.IntN(4) == 0, int64(r.Uint64()))
			rows++
		}
	}
	t.Logf("%d rows compared", rows)
}

func checkRow(t *testing.T, enc *rowcodec.Encoder, cols []column, ours []tc.ColumnValue, ids []int64, datums []types.Datum, checksum bool, handle int64) {
	t.Helper()
	var (
		theirs, mine []byte
		err          error
	)
	if checksum {
		theirs, err = enc.Encode(time.UTC, ids, datums, rowcodec.RawChecksum{Handle: kv.IntHandle(handle)}, nil)
		require.NoError(t, err)
		mine, err = tc.EncodeRowWithChecksum(nil, ours, tc.EncodeInt(nil, handle))
	} else {
		theirs, err = enc.Encode(time.UTC, ids, datums, nil, nil)
		require.NoError(t, err)
		mine, err = tc.EncodeRow(nil, ours)
	}
	require.NoError(t, err)
	require.True(t, bytes.Equal(theirs, mine), "row %s:\nTiDB %s\nours %s", short(ours), short(theirs), short(mine))

	want := map[int64]tc.Value{}
	for _, c := range ours {
		want[c.ID] = c.Value
	}
	byID := map[int64]colType{}
	for _, c := range cols {
		byID[c.id] = c.ct
	}

	// TiDB's decoder reads our bytes to the same values; a column left out
	// is absent from its map too.
	got, err := tidbDecoder(cols).DecodeToDatumMap(mine, nil)
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for id, d := range got {
		same, err := sameValue(d, byID[id], want[id])
		require.NoError(t, err)
		require.True(t, same, "column %d (%s): TiDB read %s, wrote %s", id, byID[id].name, short(d.String()), short(want[id]))
	}

	// Ours reads TiDB's bytes to the same values.
	back, err := tc.DecodeRow(theirs, ourDescs(cols))
	require.NoError(t, err)
	require.Len(t, back, len(want))
	for id, v := range back {
		require.True(t, want[id].Equal(v), "column %d (%s): we read %s, TiDB wrote %s", id, byID[id].name, short(v), short(want[id]))
	}
}

// TestRowEdgeValuesMatchTiDB pins the values where the two codecs could
// most plausibly part ways.
func TestRowEdgeValuesMatchTiDB(t *testing.T) {
	var enc rowcodec.Encoder
	dec := func(text string, p, f int) (tc.Value, types.Datum) {
		parsed, d := new(types.MyDecimal), new(types.MyDecimal)
		require.NoError(t, parsed.FromString([]byte(text)))
		require.NoError(t, parsed.Round(d, f, types.ModeHalfUp))
		datum := types.NewDecimalDatum(d)
		datum.SetLength(p)
		datum.SetFrac(f)
		return tc.DecimalValue(tc.MustDecimal(text, p, f)), datum
	}
	decimalCol := colTypes[indexOfType(t, "decimal")]
	for _, c := range []struct {
		text string
		p, f int
	}{
		{"-0", 5, 2}, {"-0.0", 5, 2}, {"-0.00", 5, 2}, {"0", 1, 0}, {"-0", 1, 0}, {"-0.000", 10, 3},
		{"99999999999999999999999999999999999.999999999999999999999999999999", 65, 30},
		{"-99999999999999999999999999999999999.999999999999999999999999999999", 65, 30},
		{"0.000000001", 9, 9}, {"-123456789.123456789", 18, 9}, {"1", 9, 0}, {"-1", 10, 0},
	} {
		v, d := dec(c.text, c.p, c.f)
		checkRow(t, &enc, []column{{id: 1, ct: decimalCol}}, []tc.ColumnValue{{ID: 1, Value: v}}, []int64{1}, []types.Datum{d}, false, 0)
	}
	// Precision 0 takes the shape from the value, in both.
	d := new(types.MyDecimal)
	require.NoError(t, d.FromString([]byte("-012.50")))
	checkRow(t, &enc, []column{{id: 1, ct: decimalCol}},
		[]tc.ColumnValue{{ID: 1, Value: tc.DecimalValue(tc.MustDecimal("-012.50", 0, 0))}}, []int64{1}, []types.Datum{types.NewDecimalDatum(d)}, false, 0)
}

// short keeps failure messages readable when a row holds 64 KiB values.
func short(x any) string {
	s := fmt.Sprintf("%v", x)
	if b, ok := x.([]byte); ok {
		s = hex.EncodeToString(b)
	}
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// TestNegativeZeroDecimalMatchesTiDB: TiDB's parser never makes a negative
// zero, but its arithmetic can; such a decimal has its own bytes, which
// both codecs must carry through unchanged.
func TestNegativeZeroDecimalMatchesTiDB(t *testing.T) {
	negZero := []byte{10, 3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff} // DECIMAL(10,3) -0.000
	_, dec, p, f, err := codec.DecodeDecimal(negZero)
	require.NoError(t, err)
	require.Equal(t, "-0.000", dec.String())
	d := types.NewDecimalDatum(dec)
	d.SetLength(p)
	d.SetFrac(f)
	var enc rowcodec.Encoder
	theirs, err := enc.Encode(time.UTC, []int64{1}, []types.Datum{d}, nil, nil)
	require.NoError(t, err)
	require.Equal(t, negZero, theirs[len(theirs)-len(negZero):])
	ct := colTypes[indexOfType(t, "decimal")]
	got, err := tc.DecodeRow(theirs, []tc.ColumnDesc{{ID: 1, Tp: ct.tp}})
	require.NoError(t, err)
	require.Equal(t, "-0.000", got[1].Decimal.String())
	checkRow(t, &enc, []column{{id: 1, ct: ct}}, []tc.ColumnValue{{ID: 1, Value: got[1]}}, []int64{1}, []types.Datum{d}, false, 0)
}

func indexOfType(t *testing.T, name string) int {
	for i, c := range colTypes {
		if c.name == name {
			return i
		}
	}
	t.Fatalf("no column type %s", name)
	return -1
}
