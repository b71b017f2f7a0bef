package replay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/sorter"
	"github.com/tistream/tistream/libs/txnmatch"
)

// Config of a replay.
type Config struct {
	Buffer    objstore.Store // the data change buffer to read
	Pool      objstore.Store // the committed data pool to write
	Snapshots objstore.Store // sorter snapshots (default: Pool)
	Cluster   uint64
	Tenants   []uint64 // empty: every tenant of the cluster
	Ranges    int      // ranges per tenant, split at table boundaries (default 1)
	WorkDir   string   // Pebble's directory (wiped)
	Buffers   sortbuf.Config
	Budget    int64 // matcher memory budget in bytes (default 256 MiB)
	// BufferMemory is the memory budget of the sorted rows (default
	// sortbuf.DefaultMemoryBudget); the largest ranges spill to Pebble
	// beyond it.
	BufferMemory int64

	// Random delivers the stores' files in a seeded random interleaving
	// (bursts of up to 8 files of one store) instead of round-robin.
	Random bool
	Seed   uint64
	// FlushEvery flushes every range after this many files (default: once
	// per round of stores).
	FlushEvery int
	// RestoreChance is, after each file, the chance to snapshot a random
	// range, deliver a few more files, then drop it and restore it from that
	// (now stale) snapshot with a new owner epoch, redelivering what the
	// snapshot does not include.
	RestoreChance float64

	Progress func(Summary)
	// AfterTenant, if set, runs when a tenant is done and its state still
	// in memory (for heap profiles).
	AfterTenant func()
}

// Summary counts what a replay did.
type Summary struct {
	Tenants, Ranges int
	Files           int64
	Bytes           int64
	Rows            int64
	RowsFlushed     int64
	Flushes         int64
	Restores        int64
	// Publications are the group publications written (one per flush
	// round and tenant in which some watermark moved).
	Publications int64
	LateCommits  int64
	Redelivered  int64
	// BufferSpills counts ranges the memory-first buffer moved to Pebble
	// (Config.BufferMemory).
	BufferSpills int64
	Watermarks   map[uint64]uint64 // tenant -> final watermark (minimum over its ranges)
	Elapsed      time.Duration
}

type tenantRun struct {
	id      uint64
	group   *pool.GroupWriter
	table   *route.Table
	ranges  map[uint64]*sorter.Range
	epochs  map[uint64]uint64
	stores  []uint64
	files   map[uint64][]string // store -> file keys in seq order
	routers map[uint64]*route.Router
	cursor  map[uint64]int // store -> files delivered
	pending []pendingRestore
}

type pendingRestore struct {
	rangeID uint64
	after   int // files to deliver before the crash
}

// Run replays the buffer into the pool.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	start := time.Now()
	sum := Summary{Watermarks: map[uint64]uint64{}}
	if cfg.Ranges <= 0 {
		cfg.Ranges = 1
	}
	if cfg.Budget <= 0 {
		cfg.Budget = 256 << 20
	}
	if cfg.BufferMemory <= 0 {
		cfg.BufferMemory = sortbuf.DefaultMemoryBudget
	}
	if cfg.Snapshots == nil {
		cfg.Snapshots = cfg.Pool
	}
	if cfg.WorkDir == "" {
		return sum, errors.New("replay: a work directory for the sorter buffers is required")
	}
	if cfg.Buffers.Shards == 0 {
		cfg.Buffers = sortbuf.DefaultConfig()
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return sum, fmt.Errorf("replay: work directory: %w", err)
	}
	engine, err := sortbuf.Open(cfg.WorkDir, cfg.Buffers)
	if err != nil {
		return sum, fmt.Errorf("replay: open sorter buffers: %w", err)
	}
	defer engine.Close()
	buffers, err := sortbuf.NewMemoryFirst(engine, cfg.BufferMemory)
	if err != nil {
		return sum, fmt.Errorf("replay: %w", err)
	}
	// One group per tenant publishes every range of it, one publication
	// per flush round (committed data pool format 2), as a sorter does.
	groups := map[uint64]*pool.GroupWriter{}
	defer func() {
		for _, g := range groups {
			g.Close()
		}
	}()
	deps := sorter.Deps{Pool: cfg.Pool, Snapshots: cfg.Snapshots, Buffers: buffers,
		Budget: txnmatch.NewBudget(cfg.Budget), Owner: "replay",
		Group: func(tenant uint64) (*pool.GroupWriter, error) {
			if g := groups[tenant]; g != nil {
				return g, nil
			}
			g, err := pool.NewGroupWriter(cfg.Pool, tenant, pool.GroupID("replay", uint64(start.UnixMilli())), "replay", pool.GroupOptions{})
			if err != nil {
				return nil, err
			}
			groups[tenant] = g
			return g, nil
		}}
	tenants := cfg.Tenants
	if len(tenants) == 0 {
		if tenants, err = children(ctx, cfg.Buffer, layout.BufferRoot+fmt.Sprintf("cluster-%d/", cfg.Cluster), "tenant-"); err != nil {
			return sum, err
		}
		if len(tenants) == 0 {
			return sum, fmt.Errorf("replay: no tenant of cluster %d in %s", cfg.Cluster, cfg.Buffer)
		}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xbeef))
	for _, t := range tenants {
		tr, err := setupTenant(ctx, cfg, deps, t)
		if err != nil {
			return sum, err
		}
		sum.Tenants++
		sum.Ranges += len(tr.ranges)
		if err := tr.run(ctx, cfg, deps, rng, &sum); err != nil {
			return sum, err
		}
		if cfg.AfterTenant != nil {
			cfg.AfterTenant()
		}
		wm := ^uint64(0)
		for _, r := range tr.ranges {
			st := r.Stats()
			sum.Rows += st.Rows
			sum.RowsFlushed += st.RowsFlushed
			sum.Flushes += st.Flushes
			sum.LateCommits += st.LateCommits
			wm = min(wm, r.Published())
			r.Close()
		}
		sum.Publications += tr.group.Stats().Pubs
		sum.Watermarks[t] = wm
	}
	sum.BufferSpills = buffers.Metrics().Spills
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// setupTenant copies the schema snapshot into the pool, writes manifest
// version 1 with cfg.Ranges ranges split at table boundaries, and opens them.
func setupTenant(ctx context.Context, cfg Config, deps sorter.Deps, tenant uint64) (*tenantRun, error) {
	snaps, _, err := cfg.Buffer.List(ctx, layout.SchemaSnapshotPrefix(cfg.Cluster, tenant), "", 1)
	if err != nil {
		return nil, err
	}
	if len(snaps) == 0 {
		return nil, fmt.Errorf("replay: tenant %d has no schema snapshot under %s", tenant, layout.SchemaSnapshotPrefix(cfg.Cluster, tenant))
	}
	data, err := cfg.Buffer.Get(ctx, snaps[0].Key)
	if err != nil {
		return nil, err
	}
	snap, err := schemasnap.Decode(snaps[0].Key, data)
	if err != nil {
		return nil, err
	}
	if err := cfg.Pool.PutIfAbsent(ctx, layout.PoolSchemaSnapshotKey(tenant, snap.Header.Ts), data); err != nil && !errors.Is(err, objstore.ErrExists) {
		return nil, fmt.Errorf("replay: copy schema snapshot: %w", err)
	}
	m, err := pool.InitialManifest(tenant, snap, cfg.Ranges, time.Now())
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	var rts []route.Range
	for _, d := range m.Ranges {
		rts = append(rts, route.Range{ID: d.RangeId, Start: d.StartKey, End: d.EndKey})
	}
	if err := pool.PublishManifest(ctx, cfg.Pool, m); err != nil {
		return nil, fmt.Errorf("replay: tenant %d: %w (replay into an empty pool)", tenant, err)
	}
	table, err := route.NewTable(rts)
	if err != nil {
		return nil, err
	}
	group, err := deps.Group(tenant)
	if err != nil {
		return nil, err
	}
	tr := &tenantRun{id: tenant, group: group, table: table, ranges: map[uint64]*sorter.Range{}, epochs: map[uint64]uint64{},
		files: map[uint64][]string{}, cursor: map[uint64]int{}, routers: map[uint64]*route.Router{}}
	for _, d := range m.Ranges {
		r, err := sorter.Create(ctx, deps, pool.RangeSpec{Tenant: tenant, RangeID: d.RangeId, Start: d.StartKey,
			End: d.EndKey, OpenedAt: d.OpenedAtTs}, 1)
		if err != nil {
			return nil, err
		}
		tr.ranges[d.RangeId] = r
		tr.epochs[d.RangeId] = 1
	}
	if tr.stores, err = children(ctx, cfg.Buffer, layout.TenantBufferPrefix(cfg.Cluster, tenant), "store-"); err != nil {
		return nil, err
	}
	for _, s := range tr.stores {
		objs, err := objstore.ListAll(ctx, cfg.Buffer, layout.StorePrefix(cfg.Cluster, tenant, s), "")
		if err != nil {
			return nil, err
		}
		for i, o := range objs {
			name, err := layout.ParseStoreFileKey(o.Key)
			if err != nil {
				return nil, fmt.Errorf("replay: %w", err)
			}
			if name.Seq != uint64(i+1) {
				return nil, fmt.Errorf("replay: store %d of tenant %d: file seq %d follows %d (gap or duplicate): %s", s, tenant, name.Seq, i, o.Key)
			}
			tr.files[s] = append(tr.files[s], o.Key)
		}
	}
	return tr, nil
}
