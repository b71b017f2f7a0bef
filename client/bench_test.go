package client

import (
	"strings"
	"testing"
	"time"

	tc "github.com/tistream/tistream/libs/tidbcodec"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

// BenchmarkDecodeRow is the client's cost of turning a row change into
// column names and typed values (the schema already cached): the
// simulator's sysbench-like row (BIGINT id, INT k, VARCHAR c and pad, 200
// bytes), the same with its old value, and a row with a column of every
// type. Reported per row.
func BenchmarkDecodeRow(b *testing.B) {
	sb, err := tc.NewTableBuilder(100, "sbtest1").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)).
		Column("k", tc.IntType(tc.TypeLong, false)).Column("c", tc.VarcharType(133)).Column("pad", tc.VarcharType(67)).Build()
	if err != nil {
		b.Fatal(err)
	}
	sbRow := encode(b, sb, map[string]tc.Value{"k": tc.IntValue(123456), "c": tc.StringValue(strings.Repeat("x", 133)),
		"pad": tc.StringValue(strings.Repeat("y", 67))})
	every := everyType(b, 101)
	everyRow := encode(b, every, map[string]tc.Value{
		"i8": tc.IntValue(-7), "u16": tc.UintValue(65535), "i24": tc.IntValue(-8), "i32": tc.IntValue(1 << 30),
		"u64": tc.UintValue(1 << 60), "f": tc.Float32Value(1.5), "d": tc.Float64Value(-2.25), "vc": tc.StringValue("héllo"),
		"ch": tc.StringValue("ab"), "tx": tc.StringValue("long text"), "vb": tc.BytesValue([]byte{0, 1, 2}),
		"bn": tc.BytesValue([]byte{9, 9, 0, 0}), "bl": tc.BytesValue([]byte("blob")),
		"dec": tc.DecimalValue(tc.MustDecimal("-1234567890.1234", 14, 4)), "dt": tc.TimeValue(tc.Time{Year: 2024, Month: 2, Day: 29}),
		"dtm": tc.TimeValue(tc.Time{Year: 2024, Month: 5, Day: 6, Hour: 7}), "tsp": tc.TimeValue(tc.Time{Year: 1999, Month: 12, Day: 31}),
		"tm": tc.DurationValue(-(25 * time.Hour)), "yr": tc.IntValue(2155), "bt": tc.BitValue(0xabc), "js": tc.JSONValue([]byte{0x04, 0x01}),
		"en": tc.EnumValue(2), "st": tc.SetValue(0b101), "nul": tc.NullValue()})
	for _, bc := range []struct {
		name string
		info *tc.TableInfo
		row  *apiv1.RowChange
	}{
		{"sysbench", sb, &apiv1.RowChange{TableId: 100, Op: apiv1.Op_OP_PUT, Key: tc.EncodeRecordKey(100, 42), Value: sbRow, SchemaVersion: 1}},
		{"sysbench+old", sb, &apiv1.RowChange{TableId: 100, Op: apiv1.Op_OP_PUT, Key: tc.EncodeRecordKey(100, 42), Value: sbRow, OldValue: sbRow, SchemaVersion: 1}},
		{"every-type", every, &apiv1.RowChange{TableId: 101, Op: apiv1.Op_OP_PUT, Key: tc.EncodeRecordKey(101, 42), Value: everyRow, SchemaVersion: 1}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := (&Client{}).NewSchemas(1)
			s.cache.put(newTableSchema("db", 1, bc.info))
			d := &Decoder{schemas: s}
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.row.Key) + len(bc.row.Value) + len(bc.row.OldValue)))
			for b.Loop() {
				if _, err := d.Decode(b.Context(), bc.row); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
