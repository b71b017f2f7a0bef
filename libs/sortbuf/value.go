package sortbuf

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Value layout of a sorted row in Pebble:
//
//	version[1]=0x01  op[1]  uvarint(len(value))  uvarint(len(old_value))  value  old_value
//
// The leading version byte lets a later layout (say, per-value compression)
// live next to this one; both lengths are explicit so a truncated or padded
// value is detected instead of misread. Values are not compressed per row:
// a row lives seconds in the memtable, and Pebble compresses whole blocks
// when a backlog does reach an sstable.
const valueV1 byte = 0x01

// errCorrupt marks a stored value or key this package cannot have written.
var errCorrupt = errors.New("sortbuf: corrupt entry")

func encodedValueLen(r *Row) int {
	return 2 + uvarintLen(uint64(len(r.Value))) + uvarintLen(uint64(len(r.OldValue))) +
		len(r.Value) + len(r.OldValue)
}

// putValue writes the encoding of r into dst, which is exactly
// encodedValueLen(r) long.
func putValue(dst []byte, r *Row) {
	dst[0] = valueV1
	dst[1] = byte(r.Op)
	n := 2
	n += binary.PutUvarint(dst[n:], uint64(len(r.Value)))
	n += binary.PutUvarint(dst[n:], uint64(len(r.OldValue)))
	n += copy(dst[n:], r.Value)
	copy(dst[n:], r.OldValue)
}

func appendValue(dst []byte, r *Row) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, encodedValueLen(r))...)
	putValue(dst[n:], r)
	return dst
}

// decodeValue fills r's Op, Value and OldValue from b; the slices alias b.
func decodeValue(b []byte, r *Row) error {
	if len(b) < 4 {
		return fmt.Errorf("%w: value of %d bytes", errCorrupt, len(b))
	}
	if b[0] != valueV1 {
		return fmt.Errorf("%w: value version %d", errCorrupt, b[0])
	}
	r.Op = Op(b[1])
	if !r.Op.Valid() {
		return fmt.Errorf("%w: op %d", errCorrupt, b[1])
	}
	rest := b[2:]
	// Lengths must be minimal varints, so that a row has one encoding.
	vlen, n := binary.Uvarint(rest)
	if n <= 0 || n != uvarintLen(vlen) {
		return fmt.Errorf("%w: value length", errCorrupt)
	}
	rest = rest[n:]
	olen, n := binary.Uvarint(rest)
	if n <= 0 || n != uvarintLen(olen) {
		return fmt.Errorf("%w: old value length", errCorrupt)
	}
	rest = rest[n:]
	// Compare without adding, so huge lengths cannot overflow.
	if vlen > uint64(len(rest)) || olen != uint64(len(rest))-vlen {
		return fmt.Errorf("%w: lengths %d+%d for %d bytes", errCorrupt, vlen, olen, len(rest))
	}
	r.Value = nilIfEmpty(rest[:vlen:vlen])
	r.OldValue = nilIfEmpty(rest[vlen:])
	return nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
