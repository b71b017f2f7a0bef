package sortbuf

import (
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable/block"
)

// compressionSettings maps Config.Compression to Pebble's settings.
func compressionSettings(name string) (pebble.DBCompressionSettings, bool) {
	switch name {
	case "none":
		return pebble.DBCompressionNone, true
	case "fastest":
		return pebble.DBCompressionFastest, true
	case "zstd":
		return pebble.UniformDBCompressionSettings(block.ZstdCompression), true
	default:
		return pebble.DBCompressionSettings{}, false
	}
}

// pebbleOptions builds one shard's options. Cache and file cache are shared
// by all shards, so memory and file handles are bounded per process.
func (c *Config) pebbleOptions(cache *pebble.Cache, files *pebble.FileCache, log pebble.Logger) *pebble.Options {
	o := &pebble.Options{
		Cache:     cache,
		FileCache: files,
		// Durability comes from sorter snapshots in object storage and the
		// directory is wiped on Open, so a WAL would only cost write
		// bandwidth. Writes must then use NoSync: a Sync write is refused.
		DisableWAL:                  true,
		MemTableSize:                c.MemTableSize,
		MemTableStopWritesThreshold: c.MemTableStopWritesThreshold,
		MaxOpenFiles:                c.MaxOpenFiles / c.Shards,
		L0CompactionThreshold:       c.L0CompactionThreshold,
		L0StopWritesThreshold:       c.L0StopWritesThreshold,
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      log,
	}
	o.TargetFileSizes[0] = c.TargetFileSize
	// Flushes split sstables at the target size, which keeps a flush of many
	// ranges from producing one file that a single range's tombstone can
	// never make wholly obsolete.
	o.FlushSplitBytes = c.TargetFileSize
	maxCompactions := c.MaxConcurrentCompactions
	o.CompactionConcurrencyRange = func() (int, int) { return 1, maxCompactions }
	cs, _ := compressionSettings(c.Compression) // checked by Validate
	o.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return cs })
	o.BlockPropertyCollectors = []func() pebble.BlockPropertyCollector{newCommitTsCollector}
	// No bloom filters: point reads (Has, the spill Get) are rare next to
	// scans, and filters cost hashing on every flush and compaction.
	return o
}

// slogLogger routes Pebble's log through slog. Pebble's info lines are
// routine (flushes, compactions), so they go to debug.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Infof(format string, args ...any) {
	s.l.Debug("pebble", "msg", fmt.Sprintf(format, args...))
}

func (s slogLogger) Errorf(format string, args ...any) {
	s.l.Error("pebble", "msg", fmt.Sprintf(format, args...))
}

// Fatalf is called by Pebble on an internal invariant failure, after which
// it cannot continue; Pebble's own logger exits the process, and so do we,
// once the message is logged.
func (s slogLogger) Fatalf(format string, args ...any) {
	s.l.Error("pebble fatal", "msg", fmt.Sprintf(format, args...))
	pebble.DefaultLogger.Fatalf(format, args...)
}
