package tidbcodec

import (
	"encoding/binary"
	"math"
)

// Memcomparable forms: encodings whose byte order equals the value order, so
// TiKV's byte-wise key order is the SQL order. All fixed-width numbers are
// big-endian.

const signBit uint64 = 1 << 63

// EncodeInt appends v as 8 big-endian bytes with the sign bit flipped, so
// negative numbers sort before positive ones.
func EncodeInt(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^signBit)
}

// DecodeInt reads what EncodeInt wrote and returns the bytes after it.
func DecodeInt(b []byte) (v int64, rest []byte, err error) {
	if len(b) < 8 {
		return 0, b, malformed("memcomparable int", 0, "need 8 bytes, have %d", len(b))
	}
	return int64(binary.BigEndian.Uint64(b) ^ signBit), b[8:], nil
}

// EncodeUint appends v as 8 big-endian bytes.
func EncodeUint(dst []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, v)
}

// DecodeUint reads what EncodeUint wrote and returns the bytes after it.
func DecodeUint(b []byte) (v uint64, rest []byte, err error) {
	if len(b) < 8 {
		return 0, b, malformed("memcomparable uint", 0, "need 8 bytes, have %d", len(b))
	}
	return binary.BigEndian.Uint64(b), b[8:], nil
}

// EncodeFloat appends v so that byte order is numeric order: non-negative
// numbers get the sign bit set, negative ones are bit-inverted. Row format v2
// stores float and double columns this way too.
func EncodeFloat(dst []byte, v float64) []byte {
	u := math.Float64bits(v)
	if v >= 0 {
		u |= signBit
	} else {
		u = ^u
	}
	return EncodeUint(dst, u)
}

// DecodeFloat reads what EncodeFloat wrote and returns the bytes after it.
func DecodeFloat(b []byte) (v float64, rest []byte, err error) {
	u, rest, err := DecodeUint(b)
	if err != nil {
		return 0, b, malformed("memcomparable float", 0, "need 8 bytes, have %d", len(b))
	}
	if u&signBit != 0 {
		u &^= signBit
	} else {
		u = ^u
	}
	return math.Float64frombits(u), rest, nil
}

// Byte strings are cut into groups of 8 bytes, each followed by a marker
// byte. A full group that has more data after it gets marker 0xFF; the last
// group is zero-padded to 8 bytes and its marker is 0xFF minus the number of
// pad bytes (0xF7..0xFF). An exact multiple of 8 therefore ends with an
// all-padding group, so that "ab" sorts before "ab\x00".
const (
	groupSize   = 8
	groupMarker = 0xFF
)

// EncodedBytesLen is the length EncodeBytes produces for n input bytes.
func EncodedBytesLen(n int) int {
	return (n/groupSize + 1) * (groupSize + 1)
}

// EncodeBytes appends the memcomparable form of data.
func EncodeBytes(dst []byte, data []byte) []byte {
	dst = grow(dst, EncodedBytesLen(len(data)))
	for {
		if len(data) >= groupSize {
			dst = append(dst, data[:groupSize]...)
			dst = append(dst, groupMarker)
			data = data[groupSize:]
			continue
		}
		pad := groupSize - len(data)
		dst = append(dst, data...)
		for range pad {
			dst = append(dst, 0)
		}
		return append(dst, byte(groupMarker-pad))
	}
}

// DecodeBytes reads what EncodeBytes wrote and returns the bytes after it.
// Non-canonical input (a marker below 0xF7 or non-zero padding) is rejected,
// as TiDB does, so that one byte string has exactly one encoding.
func DecodeBytes(b []byte) (data, rest []byte, err error) {
	const what = "memcomparable bytes"
	off := 0
	for {
		if len(b)-off < groupSize+1 {
			return nil, b, malformed(what, off, "need a %d-byte group, have %d bytes", groupSize+1, len(b)-off)
		}
		group, marker := b[off:off+groupSize], b[off+groupSize]
		pad := groupMarker - int(marker)
		if pad > groupSize {
			return nil, b, malformed(what, off+groupSize, "invalid group marker 0x%02x", marker)
		}
		data = append(data, group[:groupSize-pad]...)
		for i := groupSize - pad; i < groupSize; i++ {
			if group[i] != 0 {
				return nil, b, malformed(what, off+i, "non-zero padding byte 0x%02x", group[i])
			}
		}
		off += groupSize + 1
		if pad > 0 {
			if data == nil {
				data = []byte{}
			}
			return data, b[off:], nil
		}
	}
}

// grow makes room for n more bytes in one allocation.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}
