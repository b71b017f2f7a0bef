package tidbcodec

import (
	"encoding/binary"
	"sort"
)

// Row format v2 (TiDB's rowcodec), the value of a record key. All integers
// in the header are little-endian.
//
//	version   u8    = 128
//	flags     u8    bit 0: large, bit 1: has checksum
//	notNull   u16   number of non-NULL columns
//	null      u16   number of NULL columns
//	ids             notNull+null column ids, non-NULL ones first, each part
//	                ascending: u8 each (small) or u32 each (large)
//	offsets         notNull end offsets into data: u16 (small) or u32 (large)
//	data            the non-NULL column values back to back
//	[checksum]      if flagged: header u8 (bits 0-2 version, bit 3 extra),
//	                u32 checksum, and u32 extra checksum if bit 3 is set
//
// A row is large when a column id exceeds 255 or the data exceeds 65535
// bytes. Columns absent from the row are neither NULL nor present: their
// value is the schema's default (added after the row was written), and for
// a PKIsHandle table the int primary key lives in the record key.

const (
	rowCodecVersion  = 128
	rowFlagLarge     = 1 << 0
	rowFlagChecksum  = 1 << 1
	rowKnownFlags    = rowFlagLarge | rowFlagChecksum
	rowHeaderLen     = 6
	checksumVerMask  = 0x07
	checksumExtraBit = 0x08
	maxSmallColumnID = 0xFF
	maxSmallDataLen  = 0xFFFF
)

// RowChecksum is the optional checksum trailer TiDB writes when row
// checksums are enabled. Version 0 covers the column values, 1 the row
// bytes and the record key, 2 the row bytes and the encoded handle.
type RowChecksum struct {
	Version  int
	Sum      uint32
	Extra    uint32
	HasExtra bool
}

// ColumnState tells a column's presence in a row.
type ColumnState uint8

// Column presence in a row.
const (
	ColumnMissing ColumnState = iota // not in the row: use the schema default
	ColumnNull                       // explicitly NULL
	ColumnPresent                    // has a value
)

// RawRow is a parsed row whose column values are still encoded.
type RawRow struct {
	Large    bool
	Checksum *RowChecksum // nil when the row has none

	ids        []int64 // non-NULL columns first, then NULL ones
	notNull    int
	ends       []uint32 // end offset of each non-NULL column in data
	data       []byte
	dataOffset int // where data starts in the row bytes, for error offsets
}

// ParseRow checks a row's structure and indexes its columns. It accepts
// only what TiDB's encoder can produce: ids ascending and unique, offsets
// non-decreasing, no bytes after the row.
func ParseRow(value []byte) (*RawRow, error) {
	const what = "row"
	if len(value) < rowHeaderLen {
		return nil, malformed(what, 0, "need a %d-byte header, have %d bytes", rowHeaderLen, len(value))
	}
	if value[0] != rowCodecVersion {
		return nil, malformed(what, 0, "codec version %d, want %d (row format v2)", value[0], rowCodecVersion)
	}
	flags := value[1]
	if flags&^rowKnownFlags != 0 {
		return nil, malformed(what, 1, "unknown flags 0x%02x", flags)
	}
	r := &RawRow{Large: flags&rowFlagLarge != 0, notNull: int(binary.LittleEndian.Uint16(value[2:]))}
	n := r.notNull + int(binary.LittleEndian.Uint16(value[4:]))
	idSize, offSize := 1, 2
	if r.Large {
		idSize, offSize = 4, 4
	}
	off := rowHeaderLen
	if len(value)-off < n*idSize+r.notNull*offSize {
		return nil, malformed(what, off, "%d column ids and %d offsets need %d bytes, have %d", n, r.notNull, n*idSize+r.notNull*offSize, len(value)-off)
	}
	r.ids = make([]int64, n)
	for i := range r.ids {
		if r.Large {
			r.ids[i] = int64(binary.LittleEndian.Uint32(value[off+4*i:]))
		} else {
			r.ids[i] = int64(value[off+i])
		}
		if i > 0 && i != r.notNull && r.ids[i] <= r.ids[i-1] {
			return nil, malformed(what, off+idSize*i, "column id %d after %d: ids must ascend", r.ids[i], r.ids[i-1])
		}
	}
	if dup, ok := firstCommon(r.ids[:r.notNull], r.ids[r.notNull:]); ok {
		return nil, malformed(what, off, "column %d is both NULL and not NULL", dup)
	}
	off += n * idSize
	r.ends = make([]uint32, r.notNull)
	var prev uint32
	for i := range r.ends {
		if r.Large {
			r.ends[i] = binary.LittleEndian.Uint32(value[off+4*i:])
		} else {
			r.ends[i] = uint32(binary.LittleEndian.Uint16(value[off+2*i:]))
		}
		if r.ends[i] < prev {
			return nil, malformed(what, off+offSize*i, "column end offset %d before previous %d", r.ends[i], prev)
		}
		prev = r.ends[i]
	}
	off += r.notNull * offSize
	if uint64(len(value)-off) < uint64(prev) {
		return nil, malformed(what, off, "column data needs %d bytes, have %d", prev, len(value)-off)
	}
	r.data, r.dataOffset = value[off:off+int(prev)], off
	off += int(prev)
	if flags&rowFlagChecksum != 0 {
		var err error
		if r.Checksum, off, err = parseRowChecksum(value, off); err != nil {
			return nil, err
		}
	}
	if off != len(value) {
		return nil, malformed(what, off, "%d unexpected bytes after the row", len(value)-off)
	}
	return r, nil
}

func parseRowChecksum(value []byte, off int) (*RowChecksum, int, error) {
	const what = "row"
	if off >= len(value) {
		return nil, off, malformed(what, off, "row is flagged with a checksum but ends before it")
	}
	h := value[off]
	c := &RowChecksum{Version: int(h & checksumVerMask), HasExtra: h&checksumExtraBit != 0}
	if h&^(checksumVerMask|checksumExtraBit) != 0 || c.Version > 2 {
		return nil, off, malformed(what, off, "unknown checksum header 0x%02x", h)
	}
	need := 4
	if c.HasExtra {
		need = 8
	}
	off++
	if len(value)-off < need {
		return nil, off, malformed(what, off, "checksum needs %d bytes, have %d", need, len(value)-off)
	}
	c.Sum = binary.LittleEndian.Uint32(value[off:])
	if c.HasExtra {
		c.Extra = binary.LittleEndian.Uint32(value[off+4:])
	}
	return c, off + need, nil
}

// firstCommon finds an element of two ascending slices that is in both.
func firstCommon(a, b []int64) (int64, bool) {
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] == b[j]:
			return a[i], true
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return 0, false
}

// Lookup returns the encoded value of column colID and its state. raw is
// set only for ColumnPresent and aliases the row bytes.
func (r *RawRow) Lookup(colID int64) (raw []byte, state ColumnState) {
	start, end, state := r.lookup(colID)
	if state != ColumnPresent {
		return nil, state
	}
	return r.data[start:end], state
}

// lookup finds where column colID's bytes are within data.
func (r *RawRow) lookup(colID int64) (start, end uint32, state ColumnState) {
	notNull := r.ids[:r.notNull]
	if i := sort.Search(len(notNull), func(i int) bool { return notNull[i] >= colID }); i < len(notNull) && notNull[i] == colID {
		if i > 0 {
			start = r.ends[i-1]
		}
		return start, r.ends[i], ColumnPresent
	}
	null := r.ids[r.notNull:]
	if i := sort.Search(len(null), func(i int) bool { return null[i] >= colID }); i < len(null) && null[i] == colID {
		return 0, 0, ColumnNull
	}
	return 0, 0, ColumnMissing
}

// NotNullIDs returns the ids of the row's non-NULL columns, ascending.
func (r *RawRow) NotNullIDs() []int64 { return r.ids[:r.notNull:r.notNull] }

// NullIDs returns the ids of the row's NULL columns, ascending.
func (r *RawRow) NullIDs() []int64 { return r.ids[r.notNull:] }
