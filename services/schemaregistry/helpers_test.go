package schemaregistry

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/replay"
	"github.com/tistream/tistream/libs/schema"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/sim/simtest"
	"github.com/tistream/tistream/libs/svc/svctest"
	"github.com/tistream/tistream/libs/truth"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	schemav1 "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// world is a simulated tenant 1 (with DDLs) replayed into a file pool,
// shared by the package's tests (read-only).
type world struct {
	simCfg  sim.Config
	buffer  objstore.Store // the simulator's data change buffer
	truth   []byte         // the simulator's truth file
	pool    objstore.Store // the committed data pool the replay wrote
	ddls    []truth.DDL    // tenant 1's DDLs, in commit order
	final   uint64         // tenant 1's final watermark
	snapTs  uint64
	cluster uint64
}

var (
	worldOnce sync.Once
	theWorld  *world
	worldDir  string // removed by TestMain
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "schemaregistry-test-")
	if err != nil {
		panic(err)
	}
	worldDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func worldSimConfig() sim.Config {
	cfg := sim.DefaultConfig()
	cfg.Duration = 10 * time.Second
	cfg.RowsPerSec = 300
	cfg.DDLEvery = 150 * time.Millisecond
	return cfg
}

func sharedWorld(t *testing.T) *world {
	worldOnce.Do(func() {
		cfg := worldSimConfig()
		buffer, truthBytes, st := simtest.Run(t, cfg)
		pl, err := objstore.NewLocalFS(filepath.Join(worldDir, "pool"))
		require.NoError(t, err)
		sum, err := replay.Run(context.Background(), replay.Config{Buffer: buffer, Pool: pl, Cluster: cfg.ClusterID,
			Ranges: 2, WorkDir: filepath.Join(worldDir, "replay")})
		require.NoError(t, err)
		w := &world{simCfg: cfg, buffer: buffer, truth: truthBytes, pool: pl, final: sum.Watermarks[1], cluster: cfg.ClusterID}
		w.ddls = readDDLs(t, truthBytes, 1)
		require.Greater(t, len(w.ddls), 30)
		require.Equal(t, st.FinalResolvedTs, w.final)
		_, snapTs, found, err := schema.PoolSnapshotKey(context.Background(), pl, 1)
		require.NoError(t, err)
		require.True(t, found, "the replay wrote no schema snapshot for tenant 1")
		w.snapTs = snapTs
		theWorld = w
	})
	require.NotNil(t, theWorld, "building the shared world failed in an earlier test")
	return theWorld
}

// readDDLs returns a tenant's DDLs from a truth file, in commit order.
func readDDLs(t *testing.T, truthBytes []byte, tenant uint64) []truth.DDL {
	var out []truth.DDL
	r := truth.NewReader(bytes.NewReader(truthBytes), "truth")
	for {
		l, err := r.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if l.Kind == truth.KindDDL && l.DDL.Tenant == tenant {
			out = append(out, l.DDL)
		}
	}
	require.True(t, slices.IsSortedFunc(out, func(a, b truth.DDL) int { return cmp.Compare(a.CommitTs, b.CommitTs) }))
	return out
}

// truthTable is what the simulator's truth says of a table at a ts.
type truthTable struct {
	id, dbID  int64
	name      string
	columns   int    // the simulator's tables start with 4 columns (id, k, c, pad)
	versionTs uint64 // commit ts of the DDL that made this version (the snapshot's for initial tables)
}

// truthAt replays the truth's DDLs up to ts over the initial tables and
// returns the live tables and the schema version valid at ts.
func truthAt(initial map[int64]truthTable, ddls []truth.DDL, ts uint64) (map[int64]truthTable, int64) {
	tables := maps.Clone(initial)
	version := int64(1) // the simulator's tenants start at schema version 1
	for _, d := range ddls {
		if d.CommitTs > ts {
			break
		}
		version = d.SchemaVersion
		// Every DDL but a drop writes the table's new TableInfo (its
		// columns) into the truth; a truncate drops the old table.
		delete(tables, d.OldTableID)
		if d.Action == "drop_table" {
			delete(tables, d.TableID)
			continue
		}
		var ti struct {
			Cols []json.RawMessage `json:"cols"`
		}
		if err := json.Unmarshal(d.TableInfo, &ti); err != nil {
			panic(fmt.Sprintf("truth DDL %+v: TableInfo: %v", d, err))
		}
		tables[d.TableID] = truthTable{id: d.TableID, dbID: d.DBID, name: d.TableName, columns: len(ti.Cols), versionTs: d.CommitTs}
	}
	return tables, version
}

func registerTenant(t *testing.T, cli *clientv3.Client, w *world, tenant uint64) {
	info := &metav1.TenantInfo{ClusterId: w.cluster, TenantId: tenant, SchemaSnapshotTs: w.snapTs, RegisteredUnixMs: time.Now().UnixMilli()}
	_, err := cli.Put(context.Background(), etcdx.TenantKey(tenant), etcdx.Marshal(info))
	require.NoError(t, err)
}

type running struct {
	svc    *Service
	client schemav1.SchemaRegistryServiceClient
	reg    *prometheus.Registry
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Security.Insecure = true // their own tests; security is libs/svc's, libs/auth's and e2e's
	cfg.PollInterval = 10 * time.Millisecond
	cfg.FallbackPollInterval = cfg.PollInterval // no sorter here: no publication notices
	cfg.RetryBackoff, cfg.MaxRetryBackoff = 10*time.Millisecond, 100*time.Millisecond
	cfg.Retention = 0
	return cfg
}

// start runs a registry until the test ends (or it is stopped).
func start(t *testing.T, cfg Config, cli *clientv3.Client, pl, store objstore.Store) *running {
	reg := prometheus.NewRegistry()
	log := svctest.Logger(t, slog.LevelWarn) // first, so its cleanup runs after Stop
	s, err := New(cfg, Deps{Log: log, Registry: reg, Etcd: cli, Pool: pl, Store: store})
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	conn, err := grpcx.Dial(s.GRPCAddr(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &running{svc: s, client: schemav1.NewSchemaRegistryServiceClient(conn), reg: reg}
}

// waitResolved waits until the tenant's history has read up to ts.
func (r *running) waitResolved(t *testing.T, tenant, ts uint64) TenantStatus {
	var st TenantStatus
	require.Eventually(t, func() bool {
		var ok bool
		st, ok = r.svc.TenantStatus(tenant)
		return ok && st.Loaded && st.Resolved >= ts
	}, 30*time.Second, 5*time.Millisecond, "tenant %d never read up to %d", tenant, ts)
	return st
}

// counter reads a counter's value (summed over labels) from the registry.
func (r *running) counter(t *testing.T, name string) float64 {
	mfs, err := r.reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.Metric {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// snapshotReads calls onRead before every read of a schema snapshot: to
// count them, or to hold them.
type snapshotReads struct {
	objstore.Store
	onRead func()
}

func (s *snapshotReads) seen(key string) {
	if strings.Contains(key, "/schema_snap/") {
		s.onRead()
	}
}

func (s *snapshotReads) Get(ctx context.Context, key string) ([]byte, error) {
	s.seen(key)
	return s.Store.Get(ctx, key)
}

func (s *snapshotReads) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	s.seen(key)
	return s.Store.GetRange(ctx, key, off, n)
}
