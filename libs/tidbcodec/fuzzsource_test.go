package tidbcodec

import (
	"encoding/binary"
	"math"
)

// byteSource turns fuzzer bytes into choices, so that the fuzzer's
// mutations steer the generated values; once the bytes run out every
// choice is zero.
type byteSource struct{ b []byte }

func (s *byteSource) Uint64() uint64 {
	var buf [8]byte
	n := copy(buf[:], s.b)
	s.b = s.b[n:]
	return binary.LittleEndian.Uint64(buf[:])
}

func (s *byteSource) IntN(n int) int {
	if n <= 1 {
		return 0
	}
	var v int
	if len(s.b) > 0 {
		v = int(s.b[0])
		s.b = s.b[1:]
		if n > 256 {
			v = v<<8 | int(s.Uint64()&0xff)
		}
	}
	return v % n
}

// genValue makes a random value and a column type that stores it.
func genValue(s *byteSource) (Value, ColumnDesc) {
	switch s.IntN(14) {
	case 0:
		return NullValue(), ColumnDesc{Tp: TypeLong}
	case 1:
		return IntValue(int64(s.Uint64()) >> s.IntN(64)), ColumnDesc{Tp: []byte{TypeTiny, TypeShort, TypeInt24, TypeLong, TypeLonglong}[s.IntN(5)]}
	case 2:
		return UintValue(s.Uint64() >> s.IntN(64)), ColumnDesc{Tp: TypeLonglong, Flag: UnsignedFlag}
	case 3:
		f := math.Float32frombits(uint32(s.Uint64()))
		if f != f || f == 0 { // NaN cannot be stored; -0 reads back as +0
			f = 0
		}
		return Float32Value(f), ColumnDesc{Tp: TypeFloat}
	case 4:
		f := math.Float64frombits(s.Uint64())
		if f != f || f == 0 {
			f = 0
		}
		return Float64Value(f), ColumnDesc{Tp: TypeDouble}
	case 5:
		b := make([]byte, s.IntN(64))
		for i := range b {
			b[i] = byte(s.Uint64())
		}
		return BytesValue(b), ColumnDesc{Tp: TypeVarchar}
	case 6:
		digits := make([]byte, 1+s.IntN(40))
		for i := range digits {
			digits[i] = byte('0' + s.IntN(10))
		}
		text := string(digits)
		if k := max(s.IntN(len(digits)), len(digits)-maxDecimalScale); k > 0 {
			text = text[:k] + "." + text[k:]
		}
		if s.IntN(2) == 0 {
			text = "-" + text
		}
		d, err := NewDecimal(text, 0, 0)
		if err != nil {
			panic(err)
		}
		return DecimalValue(d), ColumnDesc{Tp: TypeNewDecimal}
	case 7:
		return PackedTimeValue(s.Uint64()), ColumnDesc{Tp: TypeDatetime}
	case 8:
		return Value{Kind: KindDuration, Int: int64(s.Uint64())}, ColumnDesc{Tp: TypeDuration}
	case 9:
		return EnumValue(s.Uint64() >> s.IntN(64)), ColumnDesc{Tp: TypeEnum}
	case 10:
		return SetValue(s.Uint64()), ColumnDesc{Tp: TypeSet}
	case 11:
		return BitValue(s.Uint64() >> s.IntN(64)), ColumnDesc{Tp: TypeBit}
	case 12:
		b := make([]byte, 1+s.IntN(16))
		for i := range b {
			b[i] = byte(s.Uint64())
		}
		return JSONValue(b), ColumnDesc{Tp: TypeJSON}
	default:
		return IntValue(int64(s.IntN(2000) - 1000)), ColumnDesc{Tp: TypeYear}
	}
}
