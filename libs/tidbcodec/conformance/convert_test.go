package conformance

import (
	"fmt"
	"time"

	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tidb/pkg/util/rowcodec"

	tc "github.com/tistream/tistream/libs/tidbcodec"
)

// sameValue reports whether a datum TiDB's row decoder produced for a
// column of type ct is our value v.
func sameValue(d types.Datum, ct colType, v tc.Value) (bool, error) {
	if ct.tp == mysql.TypeNewDecimal && !d.IsNull() {
		// Compared as text: our Decimal cannot be built from "-0.0" text
		// (TiDB's parser, like ours, drops that sign), yet TiDB decodes it.
		dec := v.Decimal
		return v.Kind == tc.KindDecimal && d.GetMysqlDecimal().String() == dec.String() &&
			d.Length() == dec.Precision() && d.Frac() == dec.Frac(), nil
	}
	theirs, err := datumToValue(d, ct)
	return err == nil && theirs.Equal(v), err
}

// datumToValue reads a datum TiDB's row decoder produced for a column of
// type ct (other than DECIMAL) as our Value.
func datumToValue(d types.Datum, ct colType) (tc.Value, error) {
	if d.IsNull() {
		return tc.NullValue(), nil
	}
	switch ct.tp {
	case mysql.TypeTiny, mysql.TypeShort, mysql.TypeInt24, mysql.TypeLong, mysql.TypeLonglong:
		if ct.flag&mysql.UnsignedFlag != 0 {
			return tc.UintValue(d.GetUint64()), nil
		}
		return tc.IntValue(d.GetInt64()), nil
	case mysql.TypeYear:
		return tc.IntValue(d.GetInt64()), nil
	case mysql.TypeFloat:
		return tc.Float32Value(d.GetFloat32()), nil
	case mysql.TypeDouble:
		return tc.Float64Value(d.GetFloat64()), nil
	case mysql.TypeVarchar, mysql.TypeString, mysql.TypeVarString, mysql.TypeBlob, mysql.TypeTinyBlob, mysql.TypeMediumBlob, mysql.TypeLongBlob:
		return tc.BytesValue(d.GetBytes()), nil
	case mysql.TypeDate, mysql.TypeDatetime, mysql.TypeTimestamp:
		t := d.GetMysqlTime()
		return tc.TimeValue(tc.Time{Year: t.Year(), Month: t.Month(), Day: t.Day(), Hour: t.Hour(),
			Minute: t.Minute(), Second: t.Second(), Microsecond: t.Microsecond()}), nil
	case mysql.TypeDuration:
		return tc.DurationValue(d.GetMysqlDuration().Duration), nil
	case mysql.TypeEnum:
		return tc.EnumValue(d.GetMysqlEnum().Value), nil
	case mysql.TypeSet:
		return tc.SetValue(d.GetMysqlSet().Value), nil
	case mysql.TypeBit:
		v, err := d.GetBinaryLiteral().ToInt(types.StrictContext)
		return tc.BitValue(v), err
	case mysql.TypeJSON:
		j := d.GetMysqlJSON()
		return tc.JSONValue(append([]byte{byte(j.TypeCode)}, j.Value...)), nil
	}
	return tc.Value{}, fmt.Errorf("no conversion for type 0x%02x", ct.tp)
}

// asTiDBSees maps one of our decoded values to what TiDB's decoder makes
// of the same bytes, where TiDB's in-memory form is narrower than the
// format: enum values past the members read as 0, and packed-time fields
// are cut to TiDB's 14-bit year and 20-bit microsecond.
func asTiDBSees(v tc.Value, ct colType) tc.Value {
	switch {
	case v.Kind == tc.KindEnum && (v.Uint == 0 || v.Uint > enumSize):
		return tc.EnumValue(0)
	case v.Kind == tc.KindTime && v.Uint != 0:
		t := v.Time()
		t.Year &= 1<<14 - 1
		t.Microsecond &= 1<<20 - 1
		return tc.TimeValue(t)
	}
	return v
}

func tidbDecoder(cols []column) *rowcodec.DatumMapDecoder {
	infos := make([]rowcodec.ColInfo, len(cols))
	for i, c := range cols {
		infos[i] = rowcodec.ColInfo{ID: c.id, Ft: c.ct.ft()}
	}
	return rowcodec.NewDatumMapDecoder(infos, time.UTC)
}

func ourDescs(cols []column) []tc.ColumnDesc {
	descs := make([]tc.ColumnDesc, len(cols))
	for i, c := range cols {
		descs[i] = tc.ColumnDesc{ID: c.id, Tp: c.ct.tp, Flag: c.ct.flag}
	}
	return descs
}

// tidbDecode runs TiDB's decoder, turning its panics on malformed input
// into errors.
func tidbDecode(dec *rowcodec.DatumMapDecoder, row []byte) (m map[int64]types.Datum, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("TiDB decoder panicked: %v", p)
		}
	}()
	return dec.DecodeToDatumMap(row, nil)
}
