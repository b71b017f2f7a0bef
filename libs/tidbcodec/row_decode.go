package tidbcodec

import (
	"encoding/binary"
	"fmt"
)

// ColumnDesc is what the row decoder needs to know about a column: its id
// and type. Flag matters only for UnsignedFlag on integer types; a decimal's
// precision and scale and a time's packed form are in the value itself.
type ColumnDesc struct {
	ID   int64
	Tp   byte
	Flag uint
}

// ColumnDescOf describes a schema column for the row decoder.
func ColumnDescOf(c *ColumnInfo) ColumnDesc {
	return ColumnDesc{ID: c.ID, Tp: c.FieldType.Tp, Flag: c.FieldType.Flag}
}

// DecodeRow decodes the columns cols of a row-format-v2 value. A column in
// the result map with KindNull is NULL; a column absent from the map is not
// in the row (ColumnMissing: its value is the schema default, or for a
// PKIsHandle table the record key's handle). Bytes values alias value.
func DecodeRow(value []byte, cols []ColumnDesc) (map[int64]Value, error) {
	r, err := ParseRow(value)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]Value, len(cols))
	for _, c := range cols {
		start, end, state := r.lookup(c.ID)
		switch state {
		case ColumnNull:
			out[c.ID] = NullValue()
		case ColumnPresent:
			v, err := DecodeColumn(r.data[start:end], c)
			if err != nil {
				return nil, within(err, "row", r.dataOffset+int(start), fmt.Sprintf("column %d", c.ID))
			}
			out[c.ID] = v
		}
	}
	return out, nil
}

// DecodeColumn decodes one column's bytes (from RawRow.Lookup) by its type.
func DecodeColumn(raw []byte, c ColumnDesc) (Value, error) {
	switch c.Tp {
	case TypeTiny, TypeShort, TypeInt24, TypeLong, TypeLonglong:
		if c.Flag&UnsignedFlag != 0 {
			u, err := decodeRowUint(raw)
			return UintValue(u), err
		}
		i, err := decodeRowInt(raw)
		return IntValue(i), err
	case TypeYear:
		i, err := decodeRowInt(raw)
		return IntValue(i), err
	case TypeFloat, TypeDouble:
		if len(raw) != 8 {
			return Value{}, malformed("float column", 0, "need 8 bytes, have %d", len(raw))
		}
		f, _, _ := DecodeFloat(raw)
		if c.Tp == TypeFloat {
			return Float32Value(float32(f)), nil
		}
		return Float64Value(f), nil
	case TypeVarchar, TypeVarString, TypeString, TypeTinyBlob, TypeMediumBlob, TypeLongBlob, TypeBlob:
		return BytesValue(raw), nil
	case TypeNewDecimal:
		d, err := decodeDecimal(raw)
		return DecimalValue(d), err
	case TypeDate, TypeDatetime, TypeTimestamp:
		u, err := decodeRowUint(raw)
		return PackedTimeValue(u), err
	case TypeDuration:
		i, err := decodeRowInt(raw)
		return Value{Kind: KindDuration, Int: i}, err
	case TypeEnum:
		u, err := decodeRowUint(raw)
		return EnumValue(u), err
	case TypeSet:
		u, err := decodeRowUint(raw)
		return SetValue(u), err
	case TypeBit:
		u, err := decodeRowUint(raw)
		return BitValue(u), err
	case TypeJSON:
		if len(raw) == 0 {
			return Value{}, malformed("json column", 0, "empty: binary JSON needs at least a type code")
		}
		return JSONValue(raw), nil
	default:
		return Value{}, malformed("column", 0, "unsupported column type 0x%02x", c.Tp)
	}
}

// Integers are stored little-endian in the fewest of 1, 2, 4 or 8 bytes
// that hold them; any of those widths is read.
func decodeRowInt(b []byte) (int64, error) {
	switch len(b) {
	case 1:
		return int64(int8(b[0])), nil
	case 2:
		return int64(int16(binary.LittleEndian.Uint16(b))), nil
	case 4:
		return int64(int32(binary.LittleEndian.Uint32(b))), nil
	case 8:
		return int64(binary.LittleEndian.Uint64(b)), nil
	}
	return 0, malformed("int column", 0, "%d bytes; an integer takes 1, 2, 4 or 8", len(b))
}

func decodeRowUint(b []byte) (uint64, error) {
	switch len(b) {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.LittleEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.LittleEndian.Uint32(b)), nil
	case 8:
		return binary.LittleEndian.Uint64(b), nil
	}
	return 0, malformed("uint column", 0, "%d bytes; an integer takes 1, 2, 4 or 8", len(b))
}
