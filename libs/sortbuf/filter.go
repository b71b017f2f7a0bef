package sortbuf

import (
	"encoding/binary"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
)

// commitTsProperty names the block property that records, for every
// sstable block and table, the interval of commit_ts of the row keys in it.
// A scan of (floor, upTo] then skips files and blocks written before the
// floor of every range in them: in steady state ranges advance together, so
// old sstables (awaiting compaction, covered by range tombstones) are
// skipped without reading a block. The interval is a pure function of the
// user key, as Pebble requires for filters to never surface deleted keys.
const commitTsProperty = "tistream.sortbuf.commit_ts"

type commitTsMapper struct{}

func (commitTsMapper) MapPointKey(key pebble.InternalKey, _ []byte) (sstable.BlockInterval, error) {
	k := key.UserKey
	if len(k) < rowHeaderLen || k[8] != kindRows {
		return sstable.BlockInterval{}, nil // spill keys: not rows
	}
	ts := binary.BigEndian.Uint64(k[prefixLen:])
	if ts == math.MaxUint64 {
		// [ts, ts+1) would overflow; the scan never filters above
		// MaxUint64-1 (see rowFilter), so this still intersects.
		return sstable.BlockInterval{Lower: ts - 1, Upper: ts}, nil
	}
	return sstable.BlockInterval{Lower: ts, Upper: ts + 1}, nil
}

func (commitTsMapper) MapRangeKeys(sstable.Span) (sstable.BlockInterval, error) {
	return sstable.BlockInterval{}, nil // no range keys are written
}

func newCommitTsCollector() pebble.BlockPropertyCollector {
	return sstable.NewBlockIntervalCollector(commitTsProperty, commitTsMapper{}, nil)
}

// rowFilter sets f to pass only blocks that may hold rows with commit_ts in
// [from, upTo]; ok is false when no useful filter exists.
func rowFilter(f *sstable.BlockIntervalFilter, from, upTo uint64) bool {
	if upTo >= math.MaxUint64-1 {
		return false
	}
	f.Init(commitTsProperty, from, upTo+1, nil)
	return true
}
