package tidbcodec

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Kind is the type of a Value.
type Kind uint8

// Value kinds. Each matches one way row format v2 stores a column.
const (
	KindNull     Kind = iota // SQL NULL
	KindInt64                // signed integer columns and YEAR
	KindUint64               // UNSIGNED integer columns
	KindFloat32              // FLOAT; Float holds a value exactly representable as float32
	KindFloat64              // DOUBLE
	KindBytes                // CHAR, VARCHAR, BINARY, VARBINARY, BLOB and TEXT kinds
	KindDecimal              // DECIMAL
	KindTime                 // DATE, DATETIME, TIMESTAMP (UTC): packed, see PackTime
	KindDuration             // TIME: nanoseconds
	KindEnum                 // ENUM: 1-based index of the member, 0 for the '' error value
	KindSet                  // SET: bitmap of members
	KindBit                  // BIT
	KindJSON                 // JSON: TiDB binary JSON, type code byte then value
)

var kindNames = [...]string{"null", "int64", "uint64", "float32", "float64", "bytes", "decimal", "time", "duration", "enum", "set", "bit", "json"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one column value of a row. Which field is meaningful depends on
// Kind; the constructors below set it. The zero Value is NULL.
type Value struct {
	Kind    Kind
	Int     int64   // KindInt64; KindDuration in nanoseconds
	Uint    uint64  // KindUint64, KindTime (packed), KindEnum, KindSet, KindBit
	Float   float64 // KindFloat32, KindFloat64
	Bytes   []byte  // KindBytes, KindJSON; decoded values alias the row bytes
	Decimal Decimal // KindDecimal
}

// NullValue is SQL NULL.
func NullValue() Value { return Value{} }

// IntValue is a signed integer (or YEAR) value.
func IntValue(v int64) Value { return Value{Kind: KindInt64, Int: v} }

// UintValue is an unsigned integer value.
func UintValue(v uint64) Value { return Value{Kind: KindUint64, Uint: v} }

// Float32Value is a FLOAT value.
func Float32Value(v float32) Value { return Value{Kind: KindFloat32, Float: float64(v)} }

// Float64Value is a DOUBLE value.
func Float64Value(v float64) Value { return Value{Kind: KindFloat64, Float: v} }

// BytesValue is a string or binary value.
func BytesValue(v []byte) Value { return Value{Kind: KindBytes, Bytes: v} }

// StringValue is a string value.
func StringValue(s string) Value { return BytesValue([]byte(s)) }

// DecimalValue is a DECIMAL value.
func DecimalValue(d Decimal) Value { return Value{Kind: KindDecimal, Decimal: d} }

// TimeValue is a DATE, DATETIME or TIMESTAMP value in packed form.
func TimeValue(t Time) Value { return Value{Kind: KindTime, Uint: t.Pack()} }

// PackedTimeValue is a time value already in packed form.
func PackedTimeValue(packed uint64) Value { return Value{Kind: KindTime, Uint: packed} }

// DurationValue is a TIME value.
func DurationValue(d time.Duration) Value { return Value{Kind: KindDuration, Int: int64(d)} }

// EnumValue is an ENUM value: the 1-based member index.
func EnumValue(index uint64) Value { return Value{Kind: KindEnum, Uint: index} }

// SetValue is a SET value: the member bitmap.
func SetValue(bits uint64) Value { return Value{Kind: KindSet, Uint: bits} }

// BitValue is a BIT value.
func BitValue(v uint64) Value { return Value{Kind: KindBit, Uint: v} }

// JSONValue is a JSON value in TiDB's binary form (type code, then value).
func JSONValue(binary []byte) Value { return Value{Kind: KindJSON, Bytes: binary} }

// IsNull reports whether v is SQL NULL.
func (v Value) IsNull() bool { return v.Kind == KindNull }

// Time returns the unpacked time of a KindTime value.
func (v Value) Time() Time { return UnpackTime(v.Uint) }

// Equal reports whether v and o are the same value of the same kind. Floats
// compare by bits, so NaN equals itself and -0 differs from +0, as the
// encoding does.
func (v Value) Equal(o Value) bool {
	if v.Kind != o.Kind {
		return false
	}
	switch v.Kind {
	case KindNull:
		return true
	case KindInt64, KindDuration:
		return v.Int == o.Int
	case KindFloat32, KindFloat64:
		return math.Float64bits(v.Float) == math.Float64bits(o.Float)
	case KindBytes, KindJSON:
		return bytes.Equal(v.Bytes, o.Bytes)
	case KindDecimal:
		return v.Decimal == o.Decimal
	default:
		return v.Uint == o.Uint
	}
}

func (v Value) String() string {
	switch v.Kind {
	case KindNull:
		return "NULL"
	case KindInt64:
		return strconv.FormatInt(v.Int, 10)
	case KindFloat32:
		return strconv.FormatFloat(v.Float, 'g', -1, 32)
	case KindFloat64:
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	case KindBytes:
		return strconv.Quote(string(v.Bytes))
	case KindJSON:
		return fmt.Sprintf("json(%x)", v.Bytes)
	case KindDecimal:
		return v.Decimal.String()
	case KindTime:
		return v.Time().String()
	case KindDuration:
		return time.Duration(v.Int).String()
	default:
		return v.Kind.String() + "(" + strconv.FormatUint(v.Uint, 10) + ")"
	}
}
