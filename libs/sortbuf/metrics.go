package sortbuf

// Metrics is a small engine-wide summary of Pebble's state, summed over
// shards, for a sorter's metrics endpoint.
type Metrics struct {
	Shards          int
	Buffers         int    // ranges with a live buffer
	MemTableBytes   uint64 // allocated memtable bytes, mutable and queued
	MemTables       int64
	L0Files         int64
	L0Sublevels     int32 // the largest over shards: L0 read amplification
	Files           int64 // sstables in all levels
	TableBytes      int64 // their size
	DiskBytes       uint64
	BlockCacheBytes int64 // in use, of Config.BlockCacheSize
	BlockCacheHits  int64
	BlockCacheMiss  int64
	Flushes         int64
	Compactions     int64
	CompactionDebt  uint64 // estimated bytes still to compact
	// Tombstones is Pebble's approximate count of point and range
	// deletions in sstables; PendingDeletes the range deletions queued but
	// not yet written (Config.GCInterval).
	Tombstones     uint64
	PendingDeletes int
}

// Metrics reads every shard's Pebble metrics; it is cheap enough for a
// scrape every few seconds, not for a hot path.
func (e *Engine) Metrics() (Metrics, error) {
	if err := e.acquire(); err != nil {
		return Metrics{}, err
	}
	defer e.release()
	m := Metrics{Shards: len(e.shards)}
	e.bufMu.Lock()
	m.Buffers = len(e.buffers)
	e.bufMu.Unlock()
	for i, s := range e.shards {
		pm := s.db.Metrics()
		m.MemTableBytes += pm.MemTable.Size
		m.MemTables += pm.MemTable.Count
		m.L0Files += pm.Levels[0].TablesCount
		m.L0Sublevels = max(m.L0Sublevels, pm.Levels[0].Sublevels)
		for _, l := range pm.Levels {
			m.Files += l.TablesCount
			m.TableBytes += l.TablesSize
		}
		m.DiskBytes += pm.DiskSpaceUsage()
		if i == 0 { // one cache shared by all shards
			m.BlockCacheBytes = pm.BlockCache.Size
			m.BlockCacheHits = pm.BlockCache.Hits
			m.BlockCacheMiss = pm.BlockCache.Misses
		}
		m.Flushes += pm.Flush.Count
		m.Compactions += pm.Compact.Count
		m.CompactionDebt += pm.Compact.EstimatedDebt
		m.Tombstones += pm.Keys.TombstoneCount
		m.PendingDeletes += s.gc.len()
	}
	return m, nil
}
