// Package sortbuf is the sorter buffer: the committed rows of every range a
// sorter process owns, kept in commit order until they are flushed to
// object storage and deleted, plus the spill space of the ranges'
// transaction matchers (package txnmatch).
//
// Engine keeps them in a small, fixed set of Pebble instances (Config.Shards,
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
// Memory is an in-memory Store with the same behaviour for unit tests of
// callers; package sortbuftest has the contract both pass and the standard
// benchmark workload.
package sortbuf
