package conformance

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/pingcap/tidb/pkg/parser/mysql"
	ptypes "github.com/pingcap/tidb/pkg/parser/types"
	"github.com/pingcap/tidb/pkg/types"

	tc "github.com/tistream/tistream/libs/tidbcodec"
)

// source is where generators take their choices from: math/rand in the
// random tests, the fuzzer's bytes in the fuzz targets.
type source interface {
	Uint64() uint64
	IntN(n int) int
}

// colType is one column type the tests cover, with a generator that makes
// the same logical value for both codecs.
type colType struct {
	name string
	ft   func() *ptypes.FieldType
	tp   byte
	flag uint
	gen  func(s source) (tc.Value, types.Datum)
}

func fieldType(tp byte, flag uint, flen, decimal int, elems ...string) func() *ptypes.FieldType {
	return func() *ptypes.FieldType {
		ft := ptypes.NewFieldType(tp)
		ft.SetFlag(flag)
		ft.SetFlen(flen)
		ft.SetDecimal(decimal)
		if len(elems) > 0 {
			ft.SetElems(elems)
		}
		return ft
	}
}

// anyInt returns integers of every magnitude, so every storage width (1, 2,
// 4, 8 bytes) and its edges come up.
func anyInt(s source) int64 {
	switch s.IntN(4) {
	case 0:
		edges := []int64{0, -1, 127, -128, 128, -129, 32767, -32768, 32768, math.MaxInt32, math.MinInt32, math.MaxInt32 + 1, math.MaxInt64, math.MinInt64}
		return edges[s.IntN(len(edges))]
	default:
		return int64(s.Uint64()) >> s.IntN(64)
	}
}

func anyBytes(s source, maxLen int) []byte {
	b := make([]byte, s.IntN(maxLen+1))
	for i := range b {
		b[i] = byte(s.Uint64())
	}
	return b
}

func intCol(name string, tp byte, unsigned bool, bits uint) colType {
	flag := uint(0)
	if unsigned {
		flag = mysql.UnsignedFlag
	}
	return colType{name: name, tp: tp, flag: flag, ft: fieldType(tp, flag, 20, 0), gen: func(s source) (tc.Value, types.Datum) {
		if unsigned {
			v := s.Uint64() >> (64 - bits) >> s.IntN(int(bits))
			return tc.UintValue(v), types.NewUintDatum(v)
		}
		v := anyInt(s) << (64 - bits) >> (64 - bits)
		return tc.IntValue(v), types.NewIntDatum(v)
	}}
}

const enumSize = 300 // ENUM members; the row decoder maps values past them to 0

var enumElems, setElems = func() ([]string, []string) {
	var e, st []string
	for i := range enumSize {
		e = append(e, fmt.Sprintf("e%d", i))
	}
	for i := range 64 {
		st = append(st, fmt.Sprintf("s%d", i))
	}
	return e, st
}()

// randomDecimal makes text with up to frac fraction digits that fits
// DECIMAL(p, f), sometimes negative zero, sometimes fewer digits.
func randomDecimal(s source) (text string, p, f int) {
	p = 1 + s.IntN(65)
	f = s.IntN(min(p, 30) + 1)
	var b strings.Builder
	if s.IntN(2) == 0 {
		b.WriteByte('-')
	}
	intDigits := s.IntN(p - f + 1)
	if intDigits == 0 {
		b.WriteByte('0')
	}
	for i := range intDigits {
		d := s.IntN(10)
		if i == 0 && d == 0 && s.IntN(2) == 0 {
			d = 1
		}
		b.WriteByte(byte('0' + d))
	}
	if fd := s.IntN(f + 1); fd > 0 {
		b.WriteByte('.')
		zeros := s.IntN(3) == 0 // all-zero fractions make negative zeros
		for range fd {
			if zeros {
				b.WriteByte('0')
			} else {
				b.WriteByte(byte('0' + s.IntN(10)))
			}
		}
	}
	return b.String(), p, f
}

func randomTime(s source) tc.Time {
	if s.IntN(10) == 0 {
		return tc.Time{}
	}
	return tc.Time{Year: s.IntN(10000), Month: 1 + s.IntN(12), Day: 1 + s.IntN(28), Hour: s.IntN(24),
		Minute: s.IntN(60), Second: s.IntN(60), Microsecond: s.IntN(1000000)}
}

func timeCol(name string, tp byte, fsp int) colType {
	return colType{name: name, tp: tp, ft: fieldType(tp, 0, 26, fsp), gen: func(s source) (tc.Value, types.Datum) {
		t := randomTime(s)
		core := types.FromDate(t.Year, t.Month, t.Day, t.Hour, t.Minute, t.Second, t.Microsecond)
		return tc.TimeValue(t), types.NewTimeDatum(types.NewTime(core, tp, fsp))
	}}
}

func bytesCol(name string, tp byte) colType {
	return colType{name: name, tp: tp, ft: fieldType(tp, 0, 255, 0), gen: func(s source) (tc.Value, types.Datum) {
		b := anyBytes(s, 40)
		return tc.BytesValue(b), types.NewBytesDatum(b)
	}}
}

var jsonDocs = []any{nil, true, false, int64(-5), uint64(1 << 63), 3.25, "text", []any{int64(1), "a", nil}, map[string]any{"k": "v", "n": []any{1.5}}}

// colTypes is every column type row format v2 support covers.
var colTypes = []colType{
	intCol("tinyint", mysql.TypeTiny, false, 8),
	intCol("smallint", mysql.TypeShort, false, 16),
	intCol("mediumint", mysql.TypeInt24, false, 24),
	intCol("int", mysql.TypeLong, false, 32),
	intCol("bigint", mysql.TypeLonglong, false, 64),
	intCol("tinyint unsigned", mysql.TypeTiny, true, 8),
	intCol("smallint unsigned", mysql.TypeShort, true, 16),
	intCol("mediumint unsigned", mysql.TypeInt24, true, 24),
	intCol("int unsigned", mysql.TypeLong, true, 32),
	intCol("bigint unsigned", mysql.TypeLonglong, true, 64),
	{name: "year", tp: mysql.TypeYear, ft: fieldType(mysql.TypeYear, mysql.UnsignedFlag, 4, 0), gen: func(s source) (tc.Value, types.Datum) {
		v := int64(1901 + s.IntN(255))
		return tc.IntValue(v), types.NewIntDatum(v)
	}},
	{name: "float", tp: mysql.TypeFloat, ft: fieldType(mysql.TypeFloat, 0, 12, -1), gen: func(s source) (tc.Value, types.Datum) {
		f := math.Float32frombits(uint32(s.Uint64()))
		if f != f || f == 0 { // NaN is not a SQL value; -0 reads back as +0
			f = 0
		}
		return tc.Float32Value(f), types.NewFloat32Datum(f)
	}},
	{name: "double", tp: mysql.TypeDouble, ft: fieldType(mysql.TypeDouble, 0, 22, -1), gen: func(s source) (tc.Value, types.Datum) {
		f := math.Float64frombits(s.Uint64())
		if f != f || f == 0 {
			f = 0
		}
		return tc.Float64Value(f), types.NewFloat64Datum(f)
	}},
	bytesCol("varchar", mysql.TypeVarchar),
	bytesCol("char", mysql.TypeString),
	bytesCol("varstring", mysql.TypeVarString),
	bytesCol("blob", mysql.TypeBlob),
	bytesCol("tinyblob", mysql.TypeTinyBlob),
	bytesCol("mediumblob", mysql.TypeMediumBlob),
	bytesCol("longblob", mysql.TypeLongBlob),
	{name: "decimal", tp: mysql.TypeNewDecimal, ft: fieldType(mysql.TypeNewDecimal, 0, 65, 30), gen: func(s source) (tc.Value, types.Datum) {
		text, p, f := randomDecimal(s)
		parsed, dec := new(types.MyDecimal), new(types.MyDecimal)
		if err := parsed.FromString([]byte(text)); err != nil {
			panic(err)
		}
		// TiDB rounds a value to the column's scale before storing it; an
		// unrounded datum with fewer fraction digits can make its encoder
		// report a spurious truncation.
		if err := parsed.Round(dec, f, types.ModeHalfUp); err != nil {
			panic(err)
		}
		d := types.NewDecimalDatum(dec)
		d.SetLength(p)
		d.SetFrac(f)
		return tc.DecimalValue(tc.MustDecimal(text, p, f)), d
	}},
	timeCol("date", mysql.TypeDate, 0),
	timeCol("datetime", mysql.TypeDatetime, 6),
	timeCol("timestamp", mysql.TypeTimestamp, 3),
	{name: "time", tp: mysql.TypeDuration, ft: fieldType(mysql.TypeDuration, 0, 17, 6), gen: func(s source) (tc.Value, types.Datum) {
		d := time.Duration(s.IntN(2*838*3600*1000000)-838*3600*1000000) * time.Microsecond
		return tc.DurationValue(d), types.NewDurationDatum(types.Duration{Duration: d, Fsp: 6})
	}},
	{name: "enum", tp: mysql.TypeEnum, ft: fieldType(mysql.TypeEnum, 0, 4, 0, enumElems...), gen: func(s source) (tc.Value, types.Datum) {
		v := uint64(1 + s.IntN(enumSize))
		return tc.EnumValue(v), types.NewMysqlEnumDatum(types.Enum{Name: enumElems[v-1], Value: v})
	}},
	{name: "set", tp: mysql.TypeSet, ft: fieldType(mysql.TypeSet, 0, 64*4, 0, setElems...), gen: func(s source) (tc.Value, types.Datum) {
		v := s.Uint64() >> s.IntN(64)
		return tc.SetValue(v), types.NewMysqlSetDatum(types.Set{Value: v}, "")
	}},
	{name: "bit", tp: mysql.TypeBit, ft: fieldType(mysql.TypeBit, mysql.UnsignedFlag, 64, 0), gen: func(s source) (tc.Value, types.Datum) {
		v := s.Uint64() >> s.IntN(64)
		return tc.BitValue(v), types.NewMysqlBitDatum(types.NewBinaryLiteralFromUint(v, 8))
	}},
	{name: "json", tp: mysql.TypeJSON, ft: fieldType(mysql.TypeJSON, mysql.BinaryFlag, 0, 0), gen: func(s source) (tc.Value, types.Datum) {
		j := types.CreateBinaryJSON(jsonDocs[s.IntN(len(jsonDocs))])
		return tc.JSONValue(append([]byte{byte(j.TypeCode)}, j.Value...)), types.NewJSONDatum(j)
	}},
}

// column is one column of a generated schema.
type column struct {
	id int64
	ct colType
}

// genSchema picks n columns with distinct ids; large ids force the large
// row form.
func genSchema(s source, n int, largeIDs bool) []column {
	seen := map[int64]bool{}
	var cols []column
	for tries := 0; len(cols) < n && tries < 4*n; tries++ { // a fuzzer's source may repeat itself
		id := int64(1 + s.IntN(255))
		if largeIDs && s.IntN(3) == 0 {
			id = int64(256 + s.IntN(1<<20))
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		cols = append(cols, column{id: id, ct: colTypes[s.IntN(len(colTypes))]})
	}
	return cols
}

// genRow fills a schema: each column is a value, NULL, or left out.
func genRow(s source, cols []column) (ours []tc.ColumnValue, ids []int64, datums []types.Datum) {
	for _, c := range cols {
		switch s.IntN(8) {
		case 0: // missing
			continue
		case 1:
			ours = append(ours, tc.ColumnValue{ID: c.id, Value: tc.NullValue()})
			datums = append(datums, types.NewDatum(nil))
		default:
			v, d := c.ct.gen(s)
			ours = append(ours, tc.ColumnValue{ID: c.id, Value: v})
			datums = append(datums, d)
		}
		ids = append(ids, c.id)
	}
	return ours, ids, datums
}
