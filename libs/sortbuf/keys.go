package sortbuf

import (
	"encoding/binary"
	"math"
)

// Key layout in Pebble (all integers big-endian, so that byte order is
// numeric order and one range's rows are one contiguous, commit-ordered span):
//
//	sorted rows : uid[8] 0x01 commit_ts[8] start_ts[8] key...
//	spill       : uid[8] 0x02 start_ts[8] key...
//
// The kind byte keeps the two namespaces of a range apart while a whole
// range (Drop) is still the single span [uid 0x00, uid 0xff).
const (
	kindRows  byte = 0x01
	kindSpill byte = 0x02
	kindEnd   byte = 0xff // exclusive end of every kind of one uid

	prefixLen    = 8 + 1
	rowHeaderLen = prefixLen + 8 + 8
	spillHdrLen  = prefixLen + 8
)

func appendPrefix(dst []byte, uid uint64, kind byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uid)
	return append(dst, kind)
}

// appendRowKey encodes the Pebble key of a committed row.
func appendRowKey(dst []byte, uid, commitTs, startTs uint64, key []byte) []byte {
	dst = appendPrefix(dst, uid, kindRows)
	dst = binary.BigEndian.AppendUint64(dst, commitTs)
	dst = binary.BigEndian.AppendUint64(dst, startTs)
	return append(dst, key...)
}

// putRowKey writes the row key into dst, which must be exactly
// rowHeaderLen+len(key) long (the batch hands out such slices).
func putRowKey(dst []byte, uid uint64, r *Row) {
	binary.BigEndian.PutUint64(dst, uid)
	dst[8] = kindRows
	binary.BigEndian.PutUint64(dst[prefixLen:], r.CommitTs)
	binary.BigEndian.PutUint64(dst[prefixLen+8:], r.StartTs)
	copy(dst[rowHeaderLen:], r.Key)
}

// decodeRowKey splits a row key; the returned key aliases k. Keys come from
// our own Pebble instance, but a short one is still reported, not trusted.
func decodeRowKey(k []byte) (commitTs, startTs uint64, key []byte, ok bool) {
	if len(k) < rowHeaderLen || k[8] != kindRows {
		return 0, 0, nil, false
	}
	commitTs = binary.BigEndian.Uint64(k[prefixLen:])
	startTs = binary.BigEndian.Uint64(k[prefixLen+8:])
	return commitTs, startTs, k[rowHeaderLen:], true
}

// rowsUpperBound is the exclusive end of the rows with commit_ts <= upTo.
func rowsUpperBound(dst []byte, uid, upTo uint64) []byte {
	if upTo == math.MaxUint64 {
		return appendPrefix(dst, uid, kindRows+1)
	}
	dst = appendPrefix(dst, uid, kindRows)
	return binary.BigEndian.AppendUint64(dst, upTo+1)
}

// rowsLowerBound is the first possible key of a row with commit_ts >= from.
func rowsLowerBound(dst []byte, uid, from uint64) []byte {
	dst = appendPrefix(dst, uid, kindRows)
	return binary.BigEndian.AppendUint64(dst, from)
}

func appendSpillKey(dst []byte, uid, startTs uint64, key []byte) []byte {
	dst = appendPrefix(dst, uid, kindSpill)
	dst = binary.BigEndian.AppendUint64(dst, startTs)
	return append(dst, key...)
}

func decodeSpillKey(k []byte) (startTs uint64, key []byte, ok bool) {
	if len(k) < spillHdrLen || k[8] != kindSpill {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(k[prefixLen:]), k[spillHdrLen:], true
}

// spillTxnBounds is the span of one transaction's spilled prewrites.
func spillTxnBounds(uid, startTs uint64) (start, end []byte) {
	start = appendSpillKey(nil, uid, startTs, nil)
	if startTs == math.MaxUint64 {
		return start, appendPrefix(nil, uid, kindSpill+1)
	}
	return start, appendSpillKey(nil, uid, startTs+1, nil)
}
