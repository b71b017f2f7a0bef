// Package sortbuf is the sorter buffer: the committed rows of every range a
// sorter process owns, kept in commit order until they are flushed to
// object storage and deleted, plus the spill space of the ranges'
// transaction matchers (package txnmatch).
//
// MemoryFirst is the sorter's store: every range's rows stay in memory,
// sorted, under one byte budget for the whole process, and a flush scans
// them straight from memory. Engine (Pebble) is its spill space: past the
// budget, the ranges holding the most rows move there whole, and the
// matchers' spilled prewrites always go there. A range's later rows go to
// memory again; its scans merge both.
//
// Engine keeps rows in a small, fixed set of Pebble instances (Config.Shards,
// default 2) shared by all ranges, like TiCDC's DB sorter: memory, open
// files and goroutines are bounded per process, whatever the number of
// ranges or tables. A range is a uid; its buffer is the key span starting
// with the uid, in shard uid % Shards:
//
//	sorted rows : uid[8] 0x01 commit_ts[8] start_ts[8] key   (big-endian: byte order is commit order)
//	spill       : uid[8] 0x02 start_ts[8] key
//
// Nothing is durable: the WAL is off and Open wipes its directory, because a
// restarted sorter resumes each range from its snapshot in object storage.
//
// DeleteUpTo raises a range's floor at once (scans start above it, adds at
// or below it are ignored as duplicates of flushed rows) and queues the
// Pebble range tombstone, which is written for many ranges together: every
// tombstone added to a memtable makes the next iterator of that Pebble
// instance re-fragment all tombstones of the memtable, so tombstones written
// one by one from thousands of ranges make every scan slow (measured: about
// 70 times slower, see docs/sorter-buffers.md). A block property on
// commit_ts lets scans skip sstables written before the floors.
//
// NewMemory is a MemoryFirst without spill space or bound, for unit tests
// of callers; package sortbuftest has the contract every store passes and
// the standard benchmark workload.
package sortbuf
