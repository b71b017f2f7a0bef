package sorter

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tistream/tistream/libs/sortbuf"
	rangesorter "github.com/tistream/tistream/libs/sorter"
	"github.com/tistream/tistream/libs/svc"
)

// Config is the sorter's configuration.
type Config struct {
	svc.Common `yaml:",inline"`
	// ID, AdvertiseAddr, LeaseTTL: the registration in etcd.
	svc.Worker `yaml:",inline"`
	// DataDir is the local directory of the sorted buffers (Pebble) and
	// spilled prewrites. It is wiped at every start; empty =
	// $TMPDIR/tistream-sorter-{id}.
	DataDir string `yaml:"data_dir"`
	// FlushInterval: the ranges of a tenant are published to the pool, in
	// one group publication, at most this often. A publication is written
	// as soon as a batch arrives that moves a range's flush target (data
	// or resolved ts), unless the last one is younger than this: it bounds
	// the pool's requests per MiB when the stores cut files more often.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// FlushBytes: a tenant's publication comes sooner than FlushInterval
	// once this many bytes of rows (key, value, old value) arrived for it
	// since its last round began: a round at full speed then holds about
	// this much instead of whatever one interval brought
	// (rangesorter.DefaultFlushBytes). 0 = the interval alone.
	FlushBytes int64 `yaml:"flush_bytes"`
	// SegmentBytes and SegmentAge: a group writes the rows of its recent
	// publications as one segment (each range's rows contiguous, so a
	// reader catching up reads many publications with one GET) every
	// SegmentBytes of rows or SegmentAge, whichever comes first.
	SegmentBytes int           `yaml:"segment_bytes"`
	SegmentAge   time.Duration `yaml:"segment_age"`
	// SnapshotInterval: a range that applied something new writes a
	// snapshot (and acknowledges it with Durable) this often.
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
	// SnapshotMaxSkipFiles bounds how long a range whose content (rows,
	// matcher, spilled prewrites) did not change skips its snapshot: it
	// writes one anyway once a store has fed it this many files since its
	// last, or when nothing arrived for a whole snapshot interval. A skipped
	// snapshot is not acknowledged, so keep it well under the dispatchers'
	// max_in_flight. 0 = never skip.
	SnapshotMaxSkipFiles int `yaml:"snapshot_max_skip_files"`
	// MatcherBudget bounds the bytes of prewrites waiting for their commit
	// held in memory by all ranges; more are spilled to DataDir.
	MatcherBudget int64 `yaml:"matcher_budget"`
	// RetryMin and RetryMax bound the backoff of taking a range and of
	// registering again after a lost lease.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// BufferMemory is the memory budget of the sorted buffers: every
	// range's committed rows stay in memory until flushed, and when all
	// ranges together pass this many bytes the ranges holding the most are
	// moved to the Pebble instances (Buffer) until the rows fit again.
	// 0 moves every range to Pebble at each write.
	BufferMemory int64 `yaml:"buffer_memory"`
	// WriteStallBytes: while the buffered rows in memory pass this many
	// bytes and a publish round is under way, an Ingest request waits
	// for the round (at most 1 s a request), as a storage engine stalls
	// its writers while its memtables wait to be flushed: a sorter that
	// cannot publish as fast as it applies slows its dispatchers down
	// instead of holding ever more rows. 0 never waits.
	WriteStallBytes int64 `yaml:"write_stall_bytes"`
	// Buffer sizes the Pebble instances of the sorted buffers: the spill
	// space of BufferMemory and of the matchers.
	Buffer sortbuf.Config `yaml:"buffer"`
	// Retention: the committed data of the held ranges of tenants without
	// their own retention published longer ago than this (wall clock, not
	// commit ts) is deleted from the pool; 0 keeps it forever. It is the
	// fleet's tenant default retention, set for every service by tistream
	// run/up (--tenant-default-retention, YAML tenant_defaults.retention).
	Retention time.Duration `yaml:"-"`
	// RetentionInterval: how often the held ranges are compacted.
	RetentionInterval time.Duration `yaml:"retention_interval"`
	// StallAfter: a range whose published watermark has not moved for this
	// long while its stores' files keep arriving is reported as stalled
	// (log and tistream_sorter_watermark_stalled_seconds, with the cause).
	StallAfter time.Duration `yaml:"stall_after"`
	// LoadInterval: how often the sorter measures and publishes its load
	// and each held range's (rows and bytes per second, a split key) in
	// its WorkerInfo, for the meta-server's autoscaler (load.go).
	LoadInterval time.Duration `yaml:"load_interval"`
	// Workers is the size of the worker pool that drives the ranges: the
	// batches of one Ingest request for different ranges, and the stages
	// and commits of a publish round, run on it in parallel, each range's
	// in order. 0 = rangesorter.DefaultWorkers() (four per GOMAXPROCS, at least 8).
	Workers int `yaml:"workers"`
}

// workers is the worker pool's size.
func (c *Config) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return rangesorter.DefaultWorkers()
}

// DefaultConfig is the configuration the flags default to.
func DefaultConfig() Config {
	return Config{
		Common: svc.Common{
			GRPCAddr:    "0.0.0.0:7340",
			HTTPAddr:    "0.0.0.0:7341",
			LogLevel:    "info",
			LogFormat:   "text",
			StopTimeout: 30 * time.Second,
		},
		Worker:               svc.DefaultWorker("sorter"),
		FlushInterval:        rangesorter.DefaultFlushInterval,
		FlushBytes:           rangesorter.DefaultFlushBytes,
		SegmentBytes:         4 << 20,
		SegmentAge:           10 * time.Minute,
		SnapshotInterval:     5 * time.Second,
		SnapshotMaxSkipFiles: 32,
		MatcherBudget:        256 << 20,
		RetryMin:             100 * time.Millisecond,
		RetryMax:             5 * time.Second,
		BufferMemory:         sortbuf.DefaultMemoryBudget,
		WriteStallBytes:      rangesorter.DefaultWriteStallBytes,
		Buffer:               sortbuf.DefaultConfig(),
		Retention:            24 * time.Hour,
		RetentionInterval:    time.Minute,
		StallAfter:           30 * time.Second,
		LoadInterval:         10 * time.Second,
	}
}

// RegisterFlags binds the settings to flags, with c's values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs, "")
	c.Worker.RegisterFlags(fs, "sorter")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "local directory of the sorted buffers, wiped at start (default $TMPDIR/tistream-sorter-{id})")
	fs.DurationVar(&c.FlushInterval, "flush-interval", c.FlushInterval, "the ranges of a tenant are published to the pool (one group publication) when a watermark moves, at most this often")
	fs.Int64Var(&c.FlushBytes, "flush-bytes", c.FlushBytes, "a tenant's ranges are published sooner than --flush-interval once this many bytes of rows arrived for it since its last round began (0 = the interval alone)")
	fs.IntVar(&c.SegmentBytes, "segment-bytes", c.SegmentBytes, "a group writes its recent publications' rows as one segment every this many bytes")
	fs.DurationVar(&c.SegmentAge, "segment-age", c.SegmentAge, "... or when its oldest publication not in a segment is this old")
	fs.DurationVar(&c.SnapshotInterval, "snapshot-interval", c.SnapshotInterval, "a changed range writes a snapshot (and sends Durable acks) this often")
	fs.IntVar(&c.SnapshotMaxSkipFiles, "snapshot-max-skip-files", c.SnapshotMaxSkipFiles, "an unchanged range skips its snapshot until a store fed it this many files (keep well under the dispatchers' --max-in-flight; 0 = never skip)")
	fs.Int64Var(&c.MatcherBudget, "matcher-budget", c.MatcherBudget, "bytes of unmatched prewrites kept in memory by all ranges before spilling to disk")
	fs.DurationVar(&c.RetryMin, "retry-min", c.RetryMin, "first backoff of a failed range take or registration")
	fs.DurationVar(&c.RetryMax, "retry-max", c.RetryMax, "longest backoff of a failed range take or registration")
	fs.DurationVar(&c.RetentionInterval, "retention-interval", c.RetentionInterval, "how often the held ranges delete their expired data")
	fs.DurationVar(&c.StallAfter, "stall-after", c.StallAfter, "report a range whose watermark has not moved for this long while input arrives")
	fs.DurationVar(&c.LoadInterval, "load-interval", c.LoadInterval, "how often the per-range load (rows/s, bytes/s, split key) is measured and published for the meta-server's autoscaler")
	fs.IntVar(&c.Workers, "workers", c.Workers, "workers driving the ranges (applying a request's batches, staging and committing flushes), each range's work in order (0 = 4 × GOMAXPROCS, at least 8)")
	fs.Int64Var(&c.BufferMemory, "buffer-memory", c.BufferMemory, "bytes of committed rows all ranges keep in memory before the largest move to Pebble (0 = always Pebble)")
	fs.Int64Var(&c.WriteStallBytes, "write-stall-bytes", c.WriteStallBytes, "while the buffered rows in memory pass this many bytes and a publish round is under way, ingest waits for it (at most 1 s a request; 0 = never)")
	fs.IntVar(&c.Buffer.Shards, "buffer-shards", c.Buffer.Shards, "Pebble instances of the sorted buffers")
	fs.Uint64Var(&c.Buffer.MemTableSize, "buffer-memtable-size", c.Buffer.MemTableSize, "memtable bytes of each buffer shard")
	fs.Int64Var(&c.Buffer.BlockCacheSize, "buffer-block-cache-size", c.Buffer.BlockCacheSize, "block cache bytes shared by the buffer shards")
}

// Validate names every wrong setting by its flag.
func (c *Config) Validate() error {
	errs := []error{c.Common.Validate(""), c.Worker.Validate()}
	positive := func(d time.Duration, name string) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive, got %s", name, d))
		}
	}
	positive(c.FlushInterval, "flush-interval")
	positive(c.SnapshotInterval, "snapshot-interval")
	positive(c.RetryMin, "retry-min")
	positive(c.RetentionInterval, "retention-interval")
	positive(c.StallAfter, "stall-after")
	positive(c.SegmentAge, "segment-age")
	positive(c.LoadInterval, "load-interval")
	if c.SegmentBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("--segment-bytes must be at least 64 KiB, got %d", c.SegmentBytes))
	}
	if c.SnapshotMaxSkipFiles < 0 {
		errs = append(errs, fmt.Errorf("--snapshot-max-skip-files must not be negative (0 = never skip), got %d", c.SnapshotMaxSkipFiles))
	}
	if c.WriteStallBytes < 0 {
		errs = append(errs, fmt.Errorf("--write-stall-bytes must not be negative (0 = never stall), got %d", c.WriteStallBytes))
	}
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("--workers must not be negative (0 = 4 × GOMAXPROCS, at least 8), got %d", c.Workers))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("--tenant-default-retention must not be negative (0 = keep forever), got %s", c.Retention))
	}
	if c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("--retry-max (%s) must be at least --retry-min (%s)", c.RetryMax, c.RetryMin))
	}
	if c.MatcherBudget < 1<<20 {
		errs = append(errs, fmt.Errorf("--matcher-budget must be at least 1 MiB, got %d", c.MatcherBudget))
	}
	if c.FlushBytes < 0 {
		errs = append(errs, fmt.Errorf("--flush-bytes must not be negative (0 = the flush interval alone), got %d", c.FlushBytes))
	}
	if c.BufferMemory < 0 {
		errs = append(errs, fmt.Errorf("--buffer-memory must not be negative, got %d", c.BufferMemory))
	}
	if err := c.Buffer.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--buffer-*: %w", err))
	}
	return errors.Join(errs...)
}

// dataDir is DataDir, or the default under the temporary directory.
func (c *Config) dataDir() string {
	if c.DataDir != "" {
		return c.DataDir
	}
	return filepath.Join(os.TempDir(), "tistream-sorter-"+c.ID)
}
