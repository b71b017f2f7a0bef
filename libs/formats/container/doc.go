// Package container reads and writes the one binary container every TiStream
// file kind uses (docs/formats/container.md):
//
//	file    = preamble block* trailer-block tail
//	preamble: magic[4] | version u8 | flags u8 | reserved u16          (8 bytes)
//	block   : type u8 | codec u8 | reserved u16 | stored_len u32 |
//	          raw_len u32 | crc32c u32 | payload[stored_len]            (16 + n bytes)
//	tail    : trailer_offset u64 | crc32c(trailer_offset) u32 | magic[4] (16 bytes)
//
// A records block's raw payload is a run of records, each a uvarint length and
// that many bytes (a protobuf message). The first record is the file kind's
// header message. The trailer block holds a FileTrailer message whose counts a
// reader checks, so a file cut at a block boundary is still caught.
//
// Readers never panic on bad input: every problem is a *CorruptError naming
// the object, the byte offset and what was wrong.
package container
