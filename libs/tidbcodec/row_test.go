package tidbcodec

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEncodeRowSmallKnown(t *testing.T) {
	row, err := EncodeRow(nil, []ColumnValue{
		{3, StringValue("ab")},
		{2, NullValue()},
		{1, IntValue(1)},
	})
	require.NoError(t, err)
	require.Equal(t, "8000"+"0200"+"0100"+"010302"+"0100"+"0300"+"016162", hex.EncodeToString(row))

	cols := []ColumnDesc{{ID: 1, Tp: TypeLong}, {ID: 2, Tp: TypeVarchar}, {ID: 3, Tp: TypeVarchar}, {ID: 4, Tp: TypeLong}}
	got, err := DecodeRow(row, cols)
	require.NoError(t, err)
	require.Equal(t, map[int64]Value{1: IntValue(1), 2: NullValue(), 3: StringValue("ab")}, got)
	_, present := got[4]
	require.False(t, present, "a column not in the row is missing, not NULL")
}

func TestEncodeRowEmpty(t *testing.T) {
	row, err := EncodeRow(nil, nil)
	require.NoError(t, err)
	require.Equal(t, "800000000000", hex.EncodeToString(row))
	got, err := DecodeRow(row, []ColumnDesc{{ID: 1, Tp: TypeLong}})
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestEncodeRowLarge(t *testing.T) {
	// A column id above 255 makes ids and offsets 32-bit.
	row, err := EncodeRow(nil, []ColumnValue{{300, IntValue(-2)}, {1, NullValue()}})
	require.NoError(t, err)
	require.Equal(t, "8001"+"0100"+"0100"+"2c010000"+"01000000"+"01000000"+"fe", hex.EncodeToString(row))
	r, err := ParseRow(row)
	require.NoError(t, err)
	require.True(t, r.Large)
	require.Equal(t, []int64{300}, r.NotNullIDs())
	require.Equal(t, []int64{1}, r.NullIDs())

	// So does data past 65535 bytes, even with small ids.
	big := bytes.Repeat([]byte{'x'}, 70000)
	row, err = EncodeRow(nil, []ColumnValue{{1, BytesValue(big)}, {2, IntValue(7)}})
	require.NoError(t, err)
	require.Equal(t, byte(rowFlagLarge), row[1])
	got, err := DecodeRow(row, []ColumnDesc{{ID: 1, Tp: TypeBlob}, {ID: 2, Tp: TypeLong}})
	require.NoError(t, err)
	require.Equal(t, big, got[1].Bytes)
	require.Equal(t, IntValue(7), got[2])

	// 65535 bytes still fit the small form.
	row, err = EncodeRow(nil, []ColumnValue{{1, BytesValue(big[:65535])}})
	require.NoError(t, err)
	require.Equal(t, byte(0), row[1])
}

func TestRowValueKinds(t *testing.T) {
	dec := MustDecimal("-12.345", 10, 3)
	ts := Time{Year: 2024, Month: 2, Day: 29, Hour: 23, Minute: 59, Second: 58, Microsecond: 123456}
	for _, tc := range []struct {
		name string
		col  ColumnDesc
		v    Value
		hex  string // the column's bytes
	}{
		{"tiny", ColumnDesc{Tp: TypeTiny}, IntValue(-128), "80"},
		{"short", ColumnDesc{Tp: TypeShort}, IntValue(-129), "7fff"},
		{"int", ColumnDesc{Tp: TypeLong}, IntValue(1 << 20), "00001000"},
		{"bigint", ColumnDesc{Tp: TypeLonglong}, IntValue(math.MinInt64), "0000000000000080"},
		{"unsigned", ColumnDesc{Tp: TypeLonglong, Flag: UnsignedFlag}, UintValue(math.MaxUint64), "ffffffffffffffff"},
		{"unsigned small", ColumnDesc{Tp: TypeTiny, Flag: UnsignedFlag}, UintValue(255), "ff"},
		{"year", ColumnDesc{Tp: TypeYear}, IntValue(2024), "e807"},
		{"float", ColumnDesc{Tp: TypeFloat}, Float32Value(1.5), "bff8000000000000"},
		{"double", ColumnDesc{Tp: TypeDouble}, Float64Value(-2), "3fffffffffffffff"},
		{"varchar", ColumnDesc{Tp: TypeVarchar}, StringValue("héllo"), hex.EncodeToString([]byte("héllo"))},
		{"empty string", ColumnDesc{Tp: TypeString}, StringValue(""), ""},
		{"blob", ColumnDesc{Tp: TypeBlob}, BytesValue([]byte{0, 1, 2}), "000102"},
		{"decimal", ColumnDesc{Tp: TypeNewDecimal}, DecimalValue(dec), "0a03" + "7ffffff3fea6"},
		{"datetime", ColumnDesc{Tp: TypeDatetime}, TimeValue(ts), hex.EncodeToString(binary.LittleEndian.AppendUint64(nil, ts.Pack()))},
		{"zero date", ColumnDesc{Tp: TypeDate}, TimeValue(Time{}), "00"},
		{"duration", ColumnDesc{Tp: TypeDuration}, DurationValue(-time.Second), "003665c4"},
		{"enum", ColumnDesc{Tp: TypeEnum}, EnumValue(2), "02"},
		{"set", ColumnDesc{Tp: TypeSet}, SetValue(1 << 40), "0000000000010000"},
		{"bit", ColumnDesc{Tp: TypeBit}, BitValue(0x1234), "3412"},
		{"json", ColumnDesc{Tp: TypeJSON}, JSONValue([]byte{0x0c, 0x01, 'a'}), "0c0161"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.col.ID = 1
			row, err := EncodeRow(nil, []ColumnValue{{1, tc.v}})
			require.NoError(t, err)
			r, err := ParseRow(row)
			require.NoError(t, err)
			raw, state := r.Lookup(1)
			require.Equal(t, ColumnPresent, state)
			require.Equal(t, tc.hex, hex.EncodeToString(raw))
			got, err := DecodeRow(row, []ColumnDesc{tc.col})
			require.NoError(t, err)
			require.True(t, tc.v.Equal(got[1]), "got %v want %v", got[1], tc.v)
		})
	}
}

func TestEncodeRowErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cols []ColumnValue
	}{
		{"duplicate id", []ColumnValue{{1, IntValue(1)}, {1, IntValue(2)}}},
		{"duplicate null id", []ColumnValue{{1, NullValue()}, {1, NullValue()}}},
		{"id both null and not", []ColumnValue{{1, IntValue(1)}, {1, NullValue()}}},
		{"negative id", []ColumnValue{{-1, IntValue(1)}}},
		{"id above u32", []ColumnValue{{1 << 32, IntValue(1)}}},
		{"zero decimal", []ColumnValue{{1, Value{Kind: KindDecimal}}}},
		{"empty json", []ColumnValue{{1, JSONValue(nil)}}},
		{"unknown kind", []ColumnValue{{1, Value{Kind: 99}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := EncodeRow(nil, tc.cols)
			require.Error(t, err)
		})
	}
}

func TestParseRowErrors(t *testing.T) {
	good, err := EncodeRow(nil, []ColumnValue{{1, IntValue(1)}, {2, StringValue("ab")}, {3, NullValue()}})
	require.NoError(t, err)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name   string
		row    []byte
		offset int
	}{
		{"empty", nil, 0},
		{"short header", good[:5], 0},
		{"version 1", mut(func(b []byte) []byte { b[0] = 1; return b }), 0},
		{"unknown flag", mut(func(b []byte) []byte { b[1] = 4; return b }), 1},
		{"ids cut", good[:8], 6},
		{"ids descending", mut(func(b []byte) []byte { b[6], b[7] = 2, 1; return b }), 7},
		{"null and not null", mut(func(b []byte) []byte { b[8] = 1; return b }), 6},
		{"offsets descending", mut(func(b []byte) []byte { b[11] = 0; b[12] = 0; return b }), 11},
		{"data cut", good[:len(good)-1], 13},
		{"trailing byte", append(mut(func(b []byte) []byte { return b }), 0), len(good)},
		{"checksum flag without checksum", mut(func(b []byte) []byte { b[1] = rowFlagChecksum; return b }), len(good)},
		{"checksum cut", append(mut(func(b []byte) []byte { b[1] = rowFlagChecksum; return b }), 2, 1), len(good) + 1},
		{"checksum version 3", append(mut(func(b []byte) []byte { b[1] = rowFlagChecksum; return b }), 3, 0, 0, 0, 0), len(good)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRow(tc.row)
			require.ErrorIs(t, err, ErrMalformed)
			require.Equal(t, tc.offset, err.(*DecodeError).Offset, "%v", err)
		})
	}
}

func TestDecodeColumnErrors(t *testing.T) {
	row := []byte{0x80, 0, 1, 0, 0, 0, 1, 3, 0, 0xAA, 0xBB, 0xCC}
	for _, tc := range []struct {
		name string
		tp   byte
		flag uint
	}{
		{"int of 3 bytes", TypeLong, 0},
		{"uint of 3 bytes", TypeLong, UnsignedFlag},
		{"float of 3 bytes", TypeDouble, 0},
		{"time of 3 bytes", TypeDatetime, 0},
		{"decimal of 3 bytes", TypeNewDecimal, 0},
		{"unsupported type", TypeGeometry, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRow(row, []ColumnDesc{{ID: 1, Tp: tc.tp, Flag: tc.flag}})
			require.ErrorIs(t, err, ErrMalformed)
			require.GreaterOrEqual(t, err.(*DecodeError).Offset, 9, "%v", err)
		})
	}
	_, err := DecodeColumn(nil, ColumnDesc{Tp: TypeJSON})
	require.ErrorIs(t, err, ErrMalformed)
}

func TestRowChecksum(t *testing.T) {
	cols := []ColumnValue{{1, IntValue(5)}, {2, NullValue()}}
	handle := EncodeInt(nil, 42)
	row, err := EncodeRowWithChecksum(nil, cols, handle)
	require.NoError(t, err)
	plain, err := EncodeRow(nil, cols)
	require.NoError(t, err)
	require.Equal(t, byte(rowFlagChecksum), row[1])
	body := append(append([]byte(nil), plain...), 2)
	body[1] = rowFlagChecksum
	sum := crc32.Update(crc32.ChecksumIEEE(body), crc32.IEEETable, handle)
	require.Equal(t, binary.LittleEndian.AppendUint32(body, sum), row)

	r, err := ParseRow(row)
	require.NoError(t, err)
	require.Equal(t, &RowChecksum{Version: 2, Sum: sum}, r.Checksum)

	extra := append(append([]byte(nil), body[:len(body)-1]...), 0x09, 1, 0, 0, 0, 2, 0, 0, 0)
	r, err = ParseRow(extra)
	require.NoError(t, err)
	require.Equal(t, &RowChecksum{Version: 1, Sum: 1, Extra: 2, HasExtra: true}, r.Checksum)
}

func TestPackedTime(t *testing.T) {
	ts := Time{Year: 9999, Month: 12, Day: 31, Hour: 23, Minute: 59, Second: 59, Microsecond: 999999}
	require.Equal(t, ts, UnpackTime(ts.Pack()))
	require.Equal(t, uint64(0), Time{}.Pack())
	require.Equal(t, "9999-12-31 23:59:59.999999", ts.String())
	earlier := Time{Year: 9999, Month: 12, Day: 31, Hour: 23, Minute: 59, Second: 59, Microsecond: 999998}
	require.Less(t, earlier.Pack(), ts.Pack())
}
