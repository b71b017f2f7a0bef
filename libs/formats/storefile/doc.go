// Package storefile writes and reads store change files: the batches of
// Percolator row changes, resolved ts and region changes that one TiKV store
// pushes to data_change_buffer/ about once a second. The byte-level
// specification is docs/formats/store-change-file.md; this package is its
// reference implementation.
//
// A store's files are one stream, read with a Stream: it carries what the
// store leads from one file to the next, so a file costs what changed in
// it. In format version 2 a header lists the leaders in full only
// periodically (Leaders is the producer's side of that) and as a delta
// against the last full list otherwise; a Stream that starts at a delta
// header reads its base's header with ranged reads (ReadHeader,
// BaseFromStore). A LeaderResolvedTs record resolves every region the store
// leads but a few in one record.
//
// The reader checks more than framing: every record must decode, timestamps
// must lie at or below the header's max_ts, rows and resolved ts may only
// name regions the store leads at that point of the stream, and every
// header's leader list must agree with what the records before it add up to.
// Anything else is a *container.CorruptError naming the object, the offset
// and the rule.
package storefile
