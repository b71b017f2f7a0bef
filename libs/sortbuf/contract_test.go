package sortbuf_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/sortbuf/sortbuftest"
)

// smallConfig keeps test engines light: small memtables and cache.
func smallConfig() sortbuf.Config {
	cfg := sortbuf.DefaultConfig()
	cfg.MemTableSize = 1 << 20
	cfg.BlockCacheSize = 8 << 20
	return cfg
}

func openEngine(t *testing.T, cfg sortbuf.Config) *sortbuf.Engine {
	t.Helper()
	e, err := sortbuf.Open(t.TempDir(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })
	return e
}

// memoryFirst is a memory-first store of budget bytes over a test engine.
func memoryFirst(t *testing.T, cfg sortbuf.Config, budget int64) *sortbuf.MemoryFirst {
	t.Helper()
	s, err := sortbuf.NewMemoryFirst(openEngine(t, cfg), budget)
	require.NoError(t, err)
	return s
}

func TestContract(t *testing.T) {
	gcNow := smallConfig()
	gcNow.GCInterval = 0
	gcLater := smallConfig()
	gcLater.GCInterval = time.Hour
	gcLater.GCMaxPending = 1 << 20
	stores := []struct {
		name string
		new  func(t *testing.T) sortbuf.Store
	}{
		{"Memory", func(*testing.T) sortbuf.Store { return sortbuf.NewMemory() }},
		{"MemoryFirst", func(t *testing.T) sortbuf.Store { return memoryFirst(t, smallConfig(), sortbuf.DefaultMemoryBudget) }},
		// Every commit moves every range not being scanned to Pebble.
		{"MemoryFirstSpillAlways", func(t *testing.T) sortbuf.Store { return memoryFirst(t, smallConfig(), 0) }},
		// Ranges go back and forth: some rows in memory, some on disk.
		{"MemoryFirstTinyBudget", func(t *testing.T) sortbuf.Store { return memoryFirst(t, gcLater, 3<<10) }},
		{"Engine", func(t *testing.T) sortbuf.Store { return openEngine(t, smallConfig()) }},
		{"EngineImmediateGC", func(t *testing.T) sortbuf.Store { return openEngine(t, gcNow) }},
		{"EngineDeferredGC", func(t *testing.T) sortbuf.Store { return openEngine(t, gcLater) }},
		{"EngineOneShard", func(t *testing.T) sortbuf.Store {
			cfg := smallConfig()
			cfg.Shards = 1
			return openEngine(t, cfg)
		}},
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) { sortbuftest.RunContract(t, s.new) })
	}
}
