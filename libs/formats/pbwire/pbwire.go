// Package pbwire writes protobuf fields the way proto.Marshal writes the
// proto3 fields of generated messages — a scalar only when it is not zero,
// bytes only when not empty — for the encoders that write their largest
// messages without building generated ones (routepb's Ingest requests,
// the api-server's pull responses), whose bytes tests pin to
// proto.Marshal's.
package pbwire

import "google.golang.org/protobuf/encoding/protowire"

// SizeUint is the size of a varint field holding v (0 when v is 0).
func SizeUint(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

// AppendUint appends a varint field holding v, unless v is 0.
func AppendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

// SizeBytes is the size of a bytes field holding v (0 when v is empty).
func SizeBytes(num protowire.Number, v []byte) int {
	if len(v) == 0 {
		return 0
	}
	return SizeField(num, len(v))
}

// AppendBytes appends a bytes field holding v, unless v is empty.
func AppendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

// SizeField is the size of a length-delimited field of n bytes (a
// message, written whatever its length).
func SizeField(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

// AppendFieldHead appends the tag and length of a length-delimited field
// of n bytes, which the caller appends next.
func AppendFieldHead(b []byte, num protowire.Number, n int) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.BytesType), uint64(n))
}
