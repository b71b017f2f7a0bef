package sortbuf

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config sizes the Pebble instances of an Engine. The whole engine is one
// fixed set of instances whatever the number of ranges, so every figure here
// is a per-process bound, not a per-range one.
type Config struct {
	// Shards is the number of Pebble instances; range uid u lives in shard
	// u % Shards. More shards mean more parallel flushes and compactions and
	// less commit-pipeline contention, at the cost of one memtable each.
	Shards int `yaml:"shards"`
	// MemTableSize is each shard's memtable. Rows usually live seconds and
	// are range-deleted before their memtable is flushed, in which case they
	// never reach an sstable; a larger memtable makes that more likely.
	MemTableSize uint64 `yaml:"memtable_size"`
	// MemTableStopWritesThreshold is how many memtables (the mutable one and
	// those waiting to flush) a shard may hold before writes stall.
	MemTableStopWritesThreshold int `yaml:"memtable_stop_writes_threshold"`
	// BlockCacheSize is one block cache shared by all shards.
	BlockCacheSize int64 `yaml:"block_cache_size"`
	// MaxOpenFiles bounds open sstables across all shards (one shared file
	// cache), so file handles never grow with ranges or tables.
	MaxOpenFiles int `yaml:"max_open_files"`
	// L0CompactionThreshold is the L0 read amplification (sublevels) at
	// which Pebble starts compacting L0; L0StopWritesThreshold the one at
	// which it stalls writes. Rows that reach L0 are usually range-deleted
	// soon after, so compacting them early rewrites data about to die: a
	// high threshold (16, against Pebble's 4) leaves them in L0 until their
	// tombstones arrive, at the price of merging more files per scan under a
	// backlog (measured in docs/sorter-buffers.md). The gap to the stop
	// threshold is wide because a stall backs up every range of the shard.
	L0CompactionThreshold int `yaml:"l0_compaction_threshold"`
	L0StopWritesThreshold int `yaml:"l0_stop_writes_threshold"`
	// TargetFileSize is the size of L0 sstables (doubling per level below).
	TargetFileSize int64 `yaml:"target_file_size"`
	// MaxConcurrentCompactions per shard.
	MaxConcurrentCompactions int `yaml:"max_concurrent_compactions"`
	// Compression of sstable blocks: "none", "fastest" (MinLZ, or Snappy on
	// arm64) or "zstd". Sstables only exist under backlog; "fastest" costs
	// little on incompressible values (blocks that do not shrink by 12% are
	// stored raw) and halves disk use on typical row data.
	Compression string `yaml:"compression"`
	// GCInterval batches the range deletions of DeleteUpTo: each DeleteUpTo
	// hides its rows at once (the buffer's floor), and the Pebble range
	// tombstones of a shard are written together at most this often or when
	// GCMaxPending ranges wait. Every tombstone written to a memtable makes
	// the next iterator of that shard re-fragment all the memtable's
	// tombstones, so writing them one by one from thousands of ranges would
	// make scans quadratic in the flush rate. 0 writes each one at once. The queue is also written whenever a quarter
	// memtable was written to the shard since, so the rows it covers are
	// dropped in the memtable rather than flushed to an sstable.
	GCInterval   time.Duration `yaml:"gc_interval"`
	GCMaxPending int           `yaml:"gc_max_pending"`
	// Logger receives Pebble's event log (info at debug level). Nil means
	// slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// DefaultConfig is sized for a sorter process of a few GiB: two 64 MiB
// memtables (plus up to three more each while flushing under load), a
// 256 MiB block cache and 1000 open files.
func DefaultConfig() Config {
	return Config{
		Shards:                      2,
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		BlockCacheSize:              256 << 20,
		MaxOpenFiles:                1000,
		L0CompactionThreshold:       16,
		L0StopWritesThreshold:       64,
		TargetFileSize:              8 << 20,
		MaxConcurrentCompactions:    2,
		Compression:                 "fastest",
		GCInterval:                  time.Second,
		GCMaxPending:                1024,
	}
}

// Validate reports the first setting that is missing or out of range,
// naming it.
func (c *Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Shards >= 1 && c.Shards <= 256, "sortbuf: shards must be in [1, 256], got %d", c.Shards)
	check(c.MemTableSize >= 1<<20 && c.MemTableSize < 4<<30,
		"sortbuf: memtable_size must be in [1 MiB, 4 GiB), got %d", c.MemTableSize)
	check(c.MemTableStopWritesThreshold >= 2,
		"sortbuf: memtable_stop_writes_threshold must be >= 2, got %d", c.MemTableStopWritesThreshold)
	check(c.BlockCacheSize >= 1<<20, "sortbuf: block_cache_size must be >= 1 MiB, got %d", c.BlockCacheSize)
	check(c.MaxOpenFiles >= 16*c.Shards,
		"sortbuf: max_open_files must be >= 16 per shard, got %d", c.MaxOpenFiles)
	check(c.L0CompactionThreshold >= 1,
		"sortbuf: l0_compaction_threshold must be >= 1, got %d", c.L0CompactionThreshold)
	check(c.L0StopWritesThreshold > c.L0CompactionThreshold,
		"sortbuf: l0_stop_writes_threshold (%d) must exceed l0_compaction_threshold (%d)",
		c.L0StopWritesThreshold, c.L0CompactionThreshold)
	check(c.TargetFileSize >= 64<<10, "sortbuf: target_file_size must be >= 64 KiB, got %d", c.TargetFileSize)
	check(c.MaxConcurrentCompactions >= 1,
		"sortbuf: max_concurrent_compactions must be >= 1, got %d", c.MaxConcurrentCompactions)
	_, ok := compressionSettings(c.Compression)
	check(ok, "sortbuf: compression must be none, fastest or zstd, got %q", c.Compression)
	check(c.GCInterval >= 0, "sortbuf: gc_interval must be >= 0, got %s", c.GCInterval)
	check(c.GCMaxPending >= 1, "sortbuf: gc_max_pending must be >= 1, got %d", c.GCMaxPending)
	return errors.Join(errs...)
}
