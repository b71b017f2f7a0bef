package tidbcodec

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
)

// ColumnValue is one column of a row to encode.
type ColumnValue struct {
	ID    int64
	Value Value
}

// EncodeRow appends the row-format-v2 encoding of cols, in any order, to
// dst. Column ids must be unique and within 0..2^32-1. The bytes equal
// TiDB's rowcodec.Encoder output for the same datums (TIMESTAMPs in UTC).
func EncodeRow(dst []byte, cols []ColumnValue) ([]byte, error) {
	out, _, err := encodeRow(dst, cols, false)
	return out, err
}

// EncodeRowWithChecksum is EncodeRow with the version-2 checksum trailer
// TiDB writes when row checksums are enabled: CRC-32 (IEEE) of the row bytes
// and the checksum header, continued over encodedHandle (8-byte EncodeInt of
// an int handle, or a common handle's bytes as in the record key).
func EncodeRowWithChecksum(dst []byte, cols []ColumnValue, encodedHandle []byte) ([]byte, error) {
	out, start, err := encodeRow(dst, cols, true)
	if err != nil {
		return dst, err
	}
	const header = 2 // version 2: raw bytes + handle, no extra checksum
	out = append(out, header)
	sum := crc32.ChecksumIEEE(out[start:])
	sum = crc32.Update(sum, crc32.IEEETable, encodedHandle)
	return binary.LittleEndian.AppendUint32(out, sum), nil
}

func encodeRow(dst []byte, cols []ColumnValue, checksum bool) (out []byte, start int, err error) {
	notNull := make([]ColumnValue, 0, len(cols))
	var null []int64
	large := false
	for _, c := range cols {
		if c.ID < 0 || c.ID > math.MaxUint32 {
			return dst, 0, fmt.Errorf("tidbcodec: column id %d outside 0..%d", c.ID, uint32(math.MaxUint32))
		}
		large = large || c.ID > maxSmallColumnID
		if c.Value.IsNull() {
			null = append(null, c.ID)
		} else {
			notNull = append(notNull, c)
		}
	}
	slices.SortFunc(notNull, func(a, b ColumnValue) int { return compareInt64(a.ID, b.ID) })
	slices.Sort(null)
	for i := 1; i < len(notNull); i++ {
		if notNull[i].ID == notNull[i-1].ID {
			return dst, 0, fmt.Errorf("tidbcodec: column %d given twice", notNull[i].ID)
		}
	}
	ids := make([]int64, 0, len(cols))
	for _, c := range notNull {
		ids = append(ids, c.ID)
	}
	if dup, ok := firstCommon(ids, null); ok {
		return dst, 0, fmt.Errorf("tidbcodec: column %d given twice", dup)
	}
	if len(notNull) > math.MaxUint16 || len(null) > math.MaxUint16 {
		return dst, 0, fmt.Errorf("tidbcodec: %d non-NULL and %d NULL columns exceed 65535", len(notNull), len(null))
	}
	for i := 1; i < len(null); i++ {
		if null[i] == null[i-1] {
			return dst, 0, fmt.Errorf("tidbcodec: column %d given twice", null[i])
		}
	}
	ids = append(ids, null...)

	var data []byte
	ends := make([]int, len(notNull))
	for i, c := range notNull {
		if data, err = appendColumnValue(data, c.Value); err != nil {
			return dst, 0, fmt.Errorf("tidbcodec: column %d: %w", c.ID, err)
		}
		ends[i] = len(data)
	}
	if len(data) > math.MaxUint32 {
		return dst, 0, fmt.Errorf("tidbcodec: row data of %d bytes exceeds 4 GiB", len(data))
	}
	// TiDB switches to the large form when any id or the data outgrows the
	// small one's u8 ids and u16 offsets.
	large = large || len(data) > maxSmallDataLen

	start = len(dst)
	var flags byte
	if large {
		flags |= rowFlagLarge
	}
	if checksum {
		flags |= rowFlagChecksum
	}
	out = append(dst, rowCodecVersion, flags)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(notNull)))
	out = binary.LittleEndian.AppendUint16(out, uint16(len(null)))
	for _, id := range ids {
		if large {
			out = binary.LittleEndian.AppendUint32(out, uint32(id))
		} else {
			out = append(out, byte(id))
		}
	}
	for _, e := range ends {
		if large {
			out = binary.LittleEndian.AppendUint32(out, uint32(e))
		} else {
			out = binary.LittleEndian.AppendUint16(out, uint16(e))
		}
	}
	return append(out, data...), start, nil
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// appendColumnValue appends one non-NULL value in row-format-v2 form.
func appendColumnValue(dst []byte, v Value) ([]byte, error) {
	switch v.Kind {
	case KindInt64, KindDuration:
		return appendRowInt(dst, v.Int), nil
	case KindUint64, KindTime, KindEnum, KindSet, KindBit:
		return appendRowUint(dst, v.Uint), nil
	case KindFloat32, KindFloat64:
		return EncodeFloat(dst, v.Float), nil
	case KindBytes:
		return append(dst, v.Bytes...), nil
	case KindDecimal:
		return appendDecimal(dst, v.Decimal)
	case KindJSON:
		if len(v.Bytes) == 0 {
			return dst, fmt.Errorf("empty binary JSON: it needs at least a type code")
		}
		return append(dst, v.Bytes...), nil
	default:
		return dst, fmt.Errorf("cannot encode a value of kind %s", v.Kind)
	}
}

// appendRowInt writes v little-endian in the fewest of 1, 2, 4, 8 bytes.
func appendRowInt(dst []byte, v int64) []byte {
	switch {
	case v == int64(int8(v)):
		return append(dst, byte(v))
	case v == int64(int16(v)):
		return binary.LittleEndian.AppendUint16(dst, uint16(v))
	case v == int64(int32(v)):
		return binary.LittleEndian.AppendUint32(dst, uint32(v))
	}
	return binary.LittleEndian.AppendUint64(dst, uint64(v))
}

// appendRowUint writes v little-endian in the fewest of 1, 2, 4, 8 bytes.
func appendRowUint(dst []byte, v uint64) []byte {
	switch {
	case v <= math.MaxUint8:
		return append(dst, byte(v))
	case v <= math.MaxUint16:
		return binary.LittleEndian.AppendUint16(dst, uint16(v))
	case v <= math.MaxUint32:
		return binary.LittleEndian.AppendUint32(dst, uint32(v))
	}
	return binary.LittleEndian.AppendUint64(dst, v)
}
