package client

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	tc "github.com/tistream/tistream/libs/tidbcodec"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

// everyType is a table with a column of every type libs/tidbcodec decodes.
func everyType(t testing.TB, id int64) *tc.TableInfo {
	info, err := tc.NewTableBuilder(id, "every").
		IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)).
		Column("i8", tc.IntType(tc.TypeTiny, false)).Column("u16", tc.IntType(tc.TypeShort, true)).
		Column("i24", tc.IntType(tc.TypeInt24, false)).Column("i32", tc.IntType(tc.TypeLong, false)).
		Column("u64", tc.IntType(tc.TypeLonglong, true)).Column("f", tc.FloatType()).Column("d", tc.DoubleType()).
		Column("vc", tc.VarcharType(20)).Column("ch", tc.CharType(4)).Column("tx", tc.TextType()).
		Column("vb", tc.VarbinaryType(8)).Column("bn", tc.BinaryType(4)).Column("bl", tc.BlobType()).
		Column("dec", tc.DecimalType(14, 4)).Column("dt", tc.DateType()).Column("dtm", tc.DatetimeType(6)).
		Column("tsp", tc.TimestampType(0)).Column("tm", tc.TimeType(3)).Column("yr", tc.YearType()).
		Column("bt", tc.BitType(12)).Column("js", tc.JSONType()).
		Column("en", tc.EnumType("a", "b", "c")).Column("st", tc.SetType("x", "y", "z")).
		Column("nul", tc.IntType(tc.TypeLong, false)).
		Build()
	require.NoError(t, err)
	return info
}

func encode(t testing.TB, info *tc.TableInfo, vals map[string]tc.Value) []byte {
	var cols []tc.ColumnValue
	for _, c := range info.Columns {
		if v, ok := vals[c.Name.O]; ok {
			cols = append(cols, tc.ColumnValue{ID: c.ID, Value: v})
		}
	}
	b, err := tc.EncodeRow(nil, cols)
	require.NoError(t, err)
	return b
}

func TestDecodeEveryType(t *testing.T) {
	info := everyType(t, 100)
	ts := newTableSchema("db1", 3, info)
	when := tc.Time{Year: 2024, Month: 5, Day: 6, Hour: 7, Minute: 8, Second: 9, Microsecond: 123456}
	vals := map[string]tc.Value{
		"i8": tc.IntValue(-7), "u16": tc.UintValue(65535), "i24": tc.IntValue(-8388608), "i32": tc.IntValue(1 << 30),
		"u64": tc.UintValue(1<<64 - 1), "f": tc.Float32Value(1.5), "d": tc.Float64Value(-2.25),
		"vc": tc.StringValue("héllo"), "ch": tc.StringValue("ab"), "tx": tc.StringValue("long text"),
		"vb": tc.BytesValue([]byte{0, 1, 2}), "bn": tc.BytesValue([]byte{9, 9, 0, 0}), "bl": tc.BytesValue([]byte("blob")),
		"dec": tc.DecimalValue(tc.MustDecimal("-1234567890.1234", 14, 4)), "dt": tc.TimeValue(tc.Time{Year: 2024, Month: 2, Day: 29}),
		"dtm": tc.TimeValue(when), "tsp": tc.TimeValue(tc.Time{Year: 1999, Month: 12, Day: 31, Hour: 23, Minute: 59, Second: 59}),
		"tm": tc.DurationValue(-(25*time.Hour + 3*time.Millisecond)), "yr": tc.IntValue(2155), "bt": tc.BitValue(0xabc),
		"js": tc.JSONValue([]byte{0x04, 0x01}), "en": tc.EnumValue(2), "st": tc.SetValue(0b101), "nul": tc.NullValue(),
	}
	row := &apiv1.RowChange{TableId: 100, CommitTs: 9, StartTs: 8, Op: apiv1.Op_OP_PUT, Key: tc.EncodeRecordKey(100, 42),
		Value: encode(t, info, vals), SchemaVersion: 3}
	got, err := DecodeRow(ts, row, 100, tc.Handle{Int: 42})
	require.NoError(t, err)
	want := map[string]any{"id": int64(42), "i8": int64(-7), "u16": uint64(65535), "i24": int64(-8388608), "i32": int64(1 << 30),
		"u64": uint64(1<<64 - 1), "f": float32(1.5), "d": -2.25, "vc": "héllo", "ch": "ab", "tx": "long text",
		"vb": []byte{0, 1, 2}, "bn": []byte{9, 9, 0, 0}, "bl": []byte("blob"), "dec": tc.MustDecimal("-1234567890.1234", 14, 4),
		"dt": tc.Time{Year: 2024, Month: 2, Day: 29}, "dtm": when, "tsp": tc.Time{Year: 1999, Month: 12, Day: 31, Hour: 23, Minute: 59, Second: 59},
		"tm": -(25*time.Hour + 3*time.Millisecond), "yr": int64(2155), "bt": uint64(0xabc), "js": BinaryJSON{0x04, 0x01},
		"en": "b", "st": "x,z", "nul": nil}
	require.Len(t, got.Columns, len(want))
	for _, c := range got.Columns {
		require.Equal(t, want[c.Name], c.Value, "column %s", c.Name)
	}
	require.Equal(t, "db1", got.DB)
	require.Equal(t, "every", got.Table)
	require.Nil(t, got.Old)
}

// Columns added after a row was written read as their origin default;
// dropped ones are gone; a delete without an old value knows its handle;
// an old value decodes too.
func TestDecodeAddedDroppedColumnsAndOldValues(t *testing.T) {
	v1, err := tc.NewTableBuilder(7, "t").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)).
		Column("a", tc.IntType(tc.TypeLong, false)).Column("gone", tc.VarcharType(10)).Build()
	require.NoError(t, err)
	old := encode(t, v1, map[string]tc.Value{"a": tc.IntValue(1), "gone": tc.StringValue("x")})

	v2, err := tc.NewTableBuilder(7, "t").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)).
		Column("a", tc.IntType(tc.TypeLong, false)).Column("gone", tc.VarcharType(10)).
		Column("added", tc.VarcharType(10)).Column("added_null", tc.IntType(tc.TypeLong, false)).
		Column("added_dt", tc.DatetimeType(0)).Build()
	require.NoError(t, err)
	v2.Columns[2].State = tc.StateWriteOnly // being dropped: not public
	v2.Columns[3].OriginDefaultValue = json.RawMessage(`"dflt"`)
	v2.Columns[5].OriginDefaultValue = json.RawMessage(`"2020-01-02 03:04:05"`)
	ts := newTableSchema("db", 5, v2)
	row := &apiv1.RowChange{TableId: 7, CommitTs: 20, Op: apiv1.Op_OP_PUT, Key: tc.EncodeRecordKey(7, 3),
		Value: encode(t, v2, map[string]tc.Value{"a": tc.IntValue(2), "added": tc.StringValue("new")}), OldValue: old}
	got, err := DecodeRow(ts, row, 7, tc.Handle{Int: 3})
	require.NoError(t, err)
	names := func(cs []Column) map[string]any {
		m := map[string]any{}
		for _, c := range cs {
			m[c.Name] = c.Value
		}
		return m
	}
	dflt := tc.Time{Year: 2020, Month: 1, Day: 2, Hour: 3, Minute: 4, Second: 5}
	require.Equal(t, map[string]any{"id": int64(3), "a": int64(2), "added": "new", "added_null": nil,
		"added_dt": dflt}, names(got.Columns))
	require.Equal(t, map[string]any{"id": int64(3), "a": int64(1), "added": "dflt", "added_null": nil,
		"added_dt": tc.Time{Year: 2020, Month: 1, Day: 2, Hour: 3, Minute: 4, Second: 5}}, names(got.Old))

	del := &apiv1.RowChange{TableId: 7, CommitTs: 21, Op: apiv1.Op_OP_DELETE, Key: tc.EncodeRecordKey(7, 3)}
	got, err = DecodeRow(ts, del, 7, tc.Handle{Int: 3})
	require.NoError(t, err)
	require.True(t, got.Delete)
	require.Nil(t, got.Columns)
	require.Equal(t, map[string]any{"id": int64(3)}, names(got.Old))
}

// Schemas maps a partition's rows to their table, and a truncated table's
// new id to the new definition, from DDL events.
func TestSchemasPartitionsAndTruncate(t *testing.T) {
	info, err := tc.NewTableBuilder(50, "p").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)).
		Column("v", tc.IntType(tc.TypeLong, false)).Build()
	require.NoError(t, err)
	info.Partition = json.RawMessage(`{"type":1,"expr":"id","definitions":[{"id":51,"name":{"O":"p0","L":"p0"}},{"id":52,"name":{"O":"p1","L":"p1"}}]}`)
	raw, err := json.Marshal(info)
	require.NoError(t, err)
	s := (&Client{}).NewSchemas(1)
	require.NoError(t, s.Observe(Event{Kind: EventDDL, DDL: &apiv1.DDL{CommitTs: 10, Kind: apiv1.DDL_KIND_CREATE_TABLE, TableId: 50,
		DbName: "db", TableName: "p", SchemaVersion: 4, TableInfoJson: raw}}))
	d := &Decoder{schemas: s}
	row := &apiv1.RowChange{TableId: 52, CommitTs: 11, Op: apiv1.Op_OP_PUT, Key: tc.EncodeRecordKey(52, 9),
		Value: encode(t, info, map[string]tc.Value{"v": tc.IntValue(5)}), SchemaVersion: 4}
	got, err := d.Decode(context.Background(), row)
	require.NoError(t, err)
	require.Equal(t, int64(50), got.TableID)
	require.Equal(t, int64(52), got.PhysicalID)
	require.Equal(t, "p", got.Table)

	info.ID, info.Partition = 60, nil
	raw, err = json.Marshal(info)
	require.NoError(t, err)
	require.NoError(t, s.Observe(Event{Kind: EventDDL, DDL: &apiv1.DDL{CommitTs: 12, Kind: apiv1.DDL_KIND_TRUNCATE_TABLE, TableId: 60,
		OldTableId: 50, DbName: "db", TableName: "p", SchemaVersion: 5, TableInfoJson: raw}}))
	row = &apiv1.RowChange{TableId: 60, CommitTs: 13, Op: apiv1.Op_OP_PUT, Key: tc.EncodeRecordKey(60, 9),
		Value: encode(t, info, map[string]tc.Value{"v": tc.IntValue(6)}), SchemaVersion: 5}
	got, err = d.Decode(context.Background(), row)
	require.NoError(t, err)
	require.Equal(t, int64(60), got.TableID)
	require.Equal(t, int64(6), got.Columns[1].Value)

	bad := &apiv1.DDL{CommitTs: 14, TableId: 61, SchemaVersion: 6, TableInfoJson: raw}
	require.ErrorContains(t, s.Observe(Event{Kind: EventDDL, DDL: bad}), "carries the TableInfo of table 60")
}

// FuzzDecodeRow: arbitrary keys, values and old values never panic the
// row decoding path; what decodes has one value per public column.
func FuzzDecodeRow(f *testing.F) {
	info := everyType(f, 100)
	ts := newTableSchema("db", 1, info)
	good := encode(f, info, map[string]tc.Value{"i8": tc.IntValue(1), "vc": tc.StringValue("x"),
		"dec": tc.DecimalValue(tc.MustDecimal("1.5", 14, 4)), "en": tc.EnumValue(9), "st": tc.SetValue(1)})
	f.Add(tc.EncodeRecordKey(100, 1), good, []byte(nil), false)
	f.Add(tc.EncodeRecordKey(100, 1), good[:len(good)-1], good, false)
	f.Add([]byte("t\x80"), []byte{0x80, 0, 1, 0, 0, 0, 5, 0, 0}, []byte{0x80}, true)
	f.Fuzz(func(t *testing.T, key, value, old []byte, del bool) {
		op := apiv1.Op_OP_PUT
		if del {
			op = apiv1.Op_OP_DELETE
		}
		r := &apiv1.RowChange{Key: key, Value: value, OldValue: old, Op: op, CommitTs: 1}
		phys, h, err := tc.DecodeRecordKeyHandle(key)
		if err != nil {
			return
		}
		got, err := DecodeRow(ts, r, phys, h)
		if err != nil {
			return
		}
		if !del {
			require.Len(t, got.Columns, len(ts.Columns))
		}
	})
}

// An empty binary value is an empty slice, not nil: a consumer that
// writes it somewhere must not turn it into NULL.
func TestDecodeEmptyBinaryIsNotNull(t *testing.T) {
	info := everyType(t, 100)
	ts := newTableSchema("db1", 3, info)
	row := &apiv1.RowChange{TableId: 100, CommitTs: 9, StartTs: 8, Op: apiv1.Op_OP_PUT, Key: tc.EncodeRecordKey(100, 42),
		Value: encode(t, info, map[string]tc.Value{"vb": tc.BytesValue(nil), "bl": tc.BytesValue([]byte{}), "nul": tc.NullValue()}), SchemaVersion: 3}
	got, err := DecodeRow(ts, row, 100, tc.Handle{Int: 42})
	require.NoError(t, err)
	seen := 0
	for _, c := range got.Columns {
		switch c.Name {
		case "vb", "bl":
			b, ok := c.Value.([]byte)
			require.True(t, ok, "column %s is %T", c.Name, c.Value)
			require.NotNil(t, b, "column %s", c.Name)
			require.Empty(t, b, "column %s", c.Name)
			seen++
		case "nul":
			require.Nil(t, c.Value)
			seen++
		}
	}
	require.Equal(t, 3, seen)
}
