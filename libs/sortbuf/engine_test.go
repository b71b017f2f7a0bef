package sortbuf_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
)

func put(commitTs, startTs uint64, key string) sortbuf.Row {
	return sortbuf.Row{CommitTs: commitTs, StartTs: startTs, Op: sortbuf.OpPut, Key: []byte(key), Value: []byte("v")}
}

func count(t *testing.T, b sortbuf.Buffer) int {
	t.Helper()
	n := 0
	require.NoError(t, b.Scan(math.MaxUint64, func(sortbuf.Row) error { n++; return nil }))
	return n
}

func TestOpenWipesPreviousContent(t *testing.T) {
	dir := t.TempDir()
	e, err := sortbuf.Open(dir, smallConfig())
	require.NoError(t, err)
	require.NoError(t, e.Buffer(1).Add(put(10, 1, "a")))
	require.NoError(t, e.Buffer(1).Spill().Put(1, []byte("k"), []byte("v")))
	require.NoError(t, e.Close())

	e, err = sortbuf.Open(dir, smallConfig())
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Close()) }()
	require.Zero(t, count(t, e.Buffer(1)), "rows do not survive a restart")
	_, ok, err := e.Buffer(1).Spill().Get(1, []byte("k"))
	require.NoError(t, err)
	require.False(t, ok)
}

func TestOpenRefusesForeignDirectory(t *testing.T) {
	dir := t.TempDir()
	precious := filepath.Join(dir, "precious.txt")
	require.NoError(t, os.WriteFile(precious, []byte("keep me"), 0o644))
	_, err := sortbuf.Open(dir, smallConfig())
	require.ErrorContains(t, err, "refusing to wipe")
	b, err := os.ReadFile(precious)
	require.NoError(t, err)
	require.Equal(t, "keep me", string(b))

	_, err = sortbuf.Open("", smallConfig())
	require.Error(t, err)
}

func TestOpenRejectsInvalidConfig(t *testing.T) {
	cfg := smallConfig()
	cfg.Shards = 0
	_, err := sortbuf.Open(t.TempDir(), cfg)
	require.ErrorContains(t, err, "shards")
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*sortbuf.Config)
		want   string // "" = valid
	}{
		{"default", func(*sortbuf.Config) {}, ""},
		{"one shard", func(c *sortbuf.Config) { c.Shards = 1 }, ""},
		{"no compression", func(c *sortbuf.Config) { c.Compression = "none" }, ""},
		{"zstd", func(c *sortbuf.Config) { c.Compression = "zstd" }, ""},
		{"immediate gc", func(c *sortbuf.Config) { c.GCInterval = 0 }, ""},
		{"zero shards", func(c *sortbuf.Config) { c.Shards = 0 }, "shards"},
		{"too many shards", func(c *sortbuf.Config) { c.Shards = 1000 }, "shards"},
		{"tiny memtable", func(c *sortbuf.Config) { c.MemTableSize = 1000 }, "memtable_size"},
		{"huge memtable", func(c *sortbuf.Config) { c.MemTableSize = 8 << 30 }, "memtable_size"},
		{"one memtable", func(c *sortbuf.Config) { c.MemTableStopWritesThreshold = 1 }, "memtable_stop_writes_threshold"},
		{"no cache", func(c *sortbuf.Config) { c.BlockCacheSize = 0 }, "block_cache_size"},
		{"few files", func(c *sortbuf.Config) { c.MaxOpenFiles = 10 }, "max_open_files"},
		{"zero l0", func(c *sortbuf.Config) { c.L0CompactionThreshold = 0 }, "l0_compaction_threshold"},
		{"stop below compact", func(c *sortbuf.Config) { c.L0StopWritesThreshold = 2 }, "l0_stop_writes_threshold"},
		{"tiny files", func(c *sortbuf.Config) { c.TargetFileSize = 100 }, "target_file_size"},
		{"no compactions", func(c *sortbuf.Config) { c.MaxConcurrentCompactions = 0 }, "max_concurrent_compactions"},
		{"unknown compression", func(c *sortbuf.Config) { c.Compression = "lz4" }, "compression"},
		{"negative gc", func(c *sortbuf.Config) { c.GCInterval = -time.Second }, "gc_interval"},
		{"zero pending", func(c *sortbuf.Config) { c.GCMaxPending = 0 }, "gc_max_pending"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := sortbuf.DefaultConfig()
			c.mutate(&cfg)
			err := cfg.Validate()
			if c.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestClosedEngine(t *testing.T) {
	e, err := sortbuf.Open(t.TempDir(), smallConfig())
	require.NoError(t, err)
	b := e.Buffer(1)
	batch := b.NewBatch()
	require.NoError(t, batch.Add(put(1, 1, "a")))
	require.NoError(t, e.Close())
	require.NoError(t, e.Close(), "closing twice is fine")

	require.ErrorIs(t, batch.Commit(), sortbuf.ErrClosed)
	batch.Close()
	require.ErrorIs(t, b.Add(put(1, 1, "a")), sortbuf.ErrClosed)
	require.ErrorIs(t, b.Scan(math.MaxUint64, func(sortbuf.Row) error { return nil }), sortbuf.ErrClosed)
	require.ErrorIs(t, b.DeleteUpTo(5), sortbuf.ErrClosed)
	require.ErrorIs(t, b.Spill().Put(1, nil, nil), sortbuf.ErrClosed)
	require.ErrorIs(t, e.Buffer(2).Drop(), sortbuf.ErrClosed)
	require.ErrorIs(t, e.FlushDeletes(), sortbuf.ErrClosed)
	_, err = e.Metrics()
	require.ErrorIs(t, err, sortbuf.ErrClosed)
}

func TestDeferredDeletes(t *testing.T) {
	cfg := smallConfig()
	cfg.Shards = 1
	cfg.GCInterval = time.Hour
	cfg.GCMaxPending = 3
	e := openEngine(t, cfg)
	for u := uint64(1); u <= 3; u++ {
		require.NoError(t, e.Buffer(u).Add(put(10, 1, "a"), put(20, 1, "b")))
	}
	pending := func() int {
		m, err := e.Metrics()
		require.NoError(t, err)
		return m.PendingDeletes
	}
	require.NoError(t, e.Buffer(1).DeleteUpTo(10))
	require.NoError(t, e.Buffer(1).DeleteUpTo(15))
	require.NoError(t, e.Buffer(2).DeleteUpTo(10))
	require.Equal(t, 2, pending(), "one queued deletion per range, the latest floor")
	require.Equal(t, 1, count(t, e.Buffer(1)), "deleted rows are invisible before the tombstone is written")
	require.NoError(t, e.Buffer(3).DeleteUpTo(10))
	require.Zero(t, pending(), "the third range reaches GCMaxPending and writes the queue")
	require.NoError(t, e.Buffer(1).DeleteUpTo(20))
	require.Equal(t, 1, pending())
	require.NoError(t, e.FlushDeletes())
	require.Zero(t, pending())
	for u := uint64(1); u <= 3; u++ {
		want := 1
		if u == 1 {
			want = 0
		}
		require.Equal(t, want, count(t, e.Buffer(u)))
	}
}

func TestMetrics(t *testing.T) {
	e := openEngine(t, smallConfig())
	for u := uint64(0); u < 4; u++ {
		require.NoError(t, e.Buffer(u).Add(put(10, 1, "a")))
	}
	m, err := e.Metrics()
	require.NoError(t, err)
	require.Equal(t, 2, m.Shards)
	require.Equal(t, 4, m.Buffers)
	require.Positive(t, m.MemTableBytes)
	require.Positive(t, m.MemTables)
	require.NoError(t, e.Buffer(0).Drop())
	m, err = e.Metrics()
	require.NoError(t, err)
	require.Equal(t, 3, m.Buffers)
}

// TestCloseWaitsForScan closes the engine while a scan's callback runs and
// uses the engine: Close must wait for the scan, and the nested use must
// get ErrClosed rather than deadlock or reach a closed Pebble.
func TestCloseWaitsForScan(t *testing.T) {
	e, err := sortbuf.Open(t.TempDir(), smallConfig())
	require.NoError(t, err)
	b := e.Buffer(1)
	require.NoError(t, b.Add(put(1, 1, "a"), put(2, 1, "b")))
	closed := make(chan error, 1)
	calls := 0
	err = b.Scan(math.MaxUint64, func(sortbuf.Row) error {
		calls++
		if calls == 1 {
			go func() { closed <- e.Close() }()
			deadline := time.Now().Add(10 * time.Second)
			for e.Buffer(2).Add(put(1, 1, "x")) == nil { // until Close has begun
				require.True(t, time.Now().Before(deadline), "Close never began")
			}
			_, err := b.Has(1, 1, []byte("a"))
			require.ErrorIs(t, err, sortbuf.ErrClosed)
		}
		return nil
	})
	require.NoError(t, err, "the running scan finishes")
	require.Equal(t, 2, calls)
	require.NoError(t, <-closed)
}
