// Package storefile writes and reads store change files: the batches of
// Percolator row changes, resolved ts and region changes that one TiKV store
// pushes to data_change_buffer/ about once a second. The byte-level
// specification is docs/formats/store-change-file.md; this package is its
// reference implementation.
//
// The reader checks more than framing: every record must decode, timestamps
// must lie at or below the header's max_ts, and rows and resolved ts may only
// name regions the store leads at that point of the stream. Anything else is a
// *container.CorruptError naming the object, the offset and the rule.
package storefile
