package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/recycle"
	"github.com/tistream/tistream/libs/replay"
	"github.com/tistream/tistream/libs/schema"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/sim/simtest"
	"github.com/tistream/tistream/libs/svc/svctest"
	"github.com/tistream/tistream/libs/truth"
	"github.com/tistream/tistream/libs/verify"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	schemav1 "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
	"github.com/tistream/tistream/services/schemaregistry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// fixture is a simulated history ordered into a committed data pool (a
// file store), shared by the package's tests (read-only).
type fixture struct {
	cfg    sim.Config
	buffer objstore.Store // the simulator's data change buffer
	pool   objstore.Store
	truth  []byte
	final  uint64 // the truth's end resolved ts, which the pool reaches
	ddls   []truth.DDL
	snapTs map[uint64]uint64 // tenant -> its schema snapshot's ts in the pool
}

var (
	fixOnce sync.Once
	fix     *fixture
	testDir string // removed by TestMain
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "apiserver-test-")
	if err != nil {
		panic(err)
	}
	testDir = dir
	// A response buffer is written over once its message is sent: poisoned
	// first, so that a message gRPC still held would reach the client as
	// garbage and fail the pulls' checks.
	recycle.SetPoison(true)
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func historyConfig() sim.Config {
	cfg := sim.DefaultConfig()
	cfg.Seed = 11
	cfg.Duration = 6 * time.Second
	cfg.RowsPerSec = 1500
	cfg.Tenants = 2
	cfg.SplitEvery = 300 * time.Millisecond
	cfg.MergeEvery = 500 * time.Millisecond
	cfg.TransferEvery = 200 * time.Millisecond
	cfg.DDLEvery = 200 * time.Millisecond
	cfg.LargeTxnEvery = 3 * time.Second
	cfg.LargeTxnRows = 3000
	cfg.LongTxnEvery = 2 * time.Second
	cfg.LongTxnHold = 1500 * time.Millisecond
	return cfg
}

const replayRanges = 3

// history builds the shared fixture once: two tenants, region churn, every
// commit protocol, a large transaction and a DDL about every 200 ms.
func history(t *testing.T) *fixture {
	fixOnce.Do(func() {
		cfg := historyConfig()
		buffer, truthFile, st := simtest.Run(t, cfg)
		store, err := objstore.NewLocalFS(filepath.Join(testDir, "pool"))
		require.NoError(t, err)
		sum, err := replay.Run(context.Background(), replay.Config{Buffer: buffer, Pool: store, Cluster: cfg.ClusterID,
			Ranges: replayRanges, WorkDir: filepath.Join(testDir, "replay"), Random: true, Seed: 11})
		require.NoError(t, err)
		for tenant := uint64(1); tenant <= 2; tenant++ {
			require.Equal(t, st.FinalResolvedTs, sum.Watermarks[tenant])
		}
		f := &fixture{cfg: cfg, buffer: buffer, pool: store, truth: truthFile, final: st.FinalResolvedTs, snapTs: map[uint64]uint64{}}
		r := truth.NewReader(bytes.NewReader(truthFile), "truth")
		for {
			l, err := r.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			if l.Kind == truth.KindDDL {
				f.ddls = append(f.ddls, l.DDL)
			}
		}
		require.NotEmpty(t, f.ddls)
		for tenant := uint64(1); tenant <= 2; tenant++ {
			_, ts, ok, err := schema.PoolSnapshotKey(context.Background(), store, tenant)
			require.NoError(t, err)
			require.True(t, ok)
			f.snapTs[tenant] = ts
		}
		fix = f
	})
	require.NotNil(t, fix, "the fixture failed to build in an earlier test")
	return fix
}

// mid is a ts about half-way through the history.
func (f *fixture) mid() uint64 { return f.final - 3000<<18 }

// ddlsOf lists a tenant's DDLs committed at or after from, of the given
// tables (all when nil), in commit order.
func (f *fixture) ddlsOf(tenant uint64, from uint64, tables []int64) []truth.DDL {
	var out []truth.DDL
	for _, d := range f.ddls {
		if d.Tenant == tenant && d.CommitTs >= from && (tables == nil || slices.Contains(tables, d.TableID)) {
			out = append(out, d)
		}
	}
	return out
}

// env is an embedded etcd with the fixture's tenants registered, a real
// schema registry following them, and a client of it.
type env struct {
	cli         *clientv3.Client
	cfg         schemaregistry.Config
	pool, store objstore.Store
	registry    *schemaregistry.Service
	schema      schemav1.SchemaRegistryServiceClient
}

// startRegistry registers the pool's tenants in a new embedded etcd as the
// meta-server does and starts a schema registry on them, on 127.0.0.1:0.
func startRegistry(t *testing.T, f *fixture, pl objstore.Store, tune ...func(*schemaregistry.Config)) *env {
	t.Helper()
	cli := svctest.Etcd(t)
	for tenant := uint64(1); tenant <= uint64(f.cfg.Tenants); tenant++ {
		info := &metav1.TenantInfo{ClusterId: f.cfg.ClusterID, TenantId: tenant, SchemaSnapshotTs: f.snapTs[tenant],
			RegisteredUnixMs: time.Now().UnixMilli()}
		_, err := cli.Put(context.Background(), etcdx.TenantKey(tenant), etcdx.Marshal(info))
		require.NoError(t, err)
	}
	cfg := schemaregistry.DefaultConfig()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Security.Insecure = true // their own tests; security is libs/svc's, libs/auth's and e2e's
	cfg.PollInterval = 10 * time.Millisecond
	cfg.RetryBackoff, cfg.MaxRetryBackoff = 10*time.Millisecond, 100*time.Millisecond
	cfg.Retention = 0
	for _, fn := range tune {
		fn(&cfg)
	}
	// No sorter writes these pools, so no publication notice comes: poll.
	cfg.FallbackPollInterval = min(cfg.FallbackPollInterval, cfg.PollInterval)
	store, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	r := &env{cli: cli, cfg: cfg, pool: pl, store: store}
	r.registry = r.runRegistry(t, cfg)
	conn, err := grpcx.Dial(r.registry.GRPCAddr(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	r.schema = schemav1.NewSchemaRegistryServiceClient(conn)
	return r
}

// runRegistry starts a schema registry on the env's etcd and stores.
func (e *env) runRegistry(t *testing.T, cfg schemaregistry.Config) *schemaregistry.Service {
	reg, err := schemaregistry.New(cfg, schemaregistry.Deps{Log: svctest.Logger(t, slog.LevelWarn),
		Registry: prometheus.NewRegistry(), Etcd: e.cli, Pool: e.pool, Store: e.store})
	require.NoError(t, err)
	require.NoError(t, reg.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = reg.Stop(ctx)
	})
	return reg
}

// stopRegistry stops the registry (it persists its histories).
func (e *env) stopRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.registry.Stop(ctx))
}

// restartRegistry starts a new registry on the address of the stopped one,
// so the api-server's client reconnects to it.
func (e *env) restartRegistry(t *testing.T) {
	cfg := e.cfg
	cfg.GRPCAddr = e.registry.GRPCAddr()
	e.registry = e.runRegistry(t, cfg)
}

// waitRegistry waits until the registry has read every tenant up to ts.
func (e *env) waitRegistry(t *testing.T, f *fixture, ts uint64) {
	t.Helper()
	for tenant := uint64(1); tenant <= uint64(f.cfg.Tenants); tenant++ {
		eventually(t, fmt.Sprintf("the registry to read tenant %d up to %d", tenant, ts), func() bool {
			st, ok := e.registry.TenantStatus(tenant)
			return ok && st.Loaded && st.Resolved >= ts
		})
	}
}

type server struct {
	svc    *Service
	client apiv1.TiStreamServiceClient
	reg    *prometheus.Registry
}

func startServer(t *testing.T, store objstore.Store, schema schemav1.SchemaRegistryServiceClient, tune ...func(*Config)) *server {
	t.Helper()
	return startServerEtcd(t, store, schema, nil, tune...)
}

// startServerEtcd is startServer following the publication notices in cli's
// etcd (nil: none, it polls).
func startServerEtcd(t *testing.T, store objstore.Store, schema schemav1.SchemaRegistryServiceClient, cli *clientv3.Client, tune ...func(*Config)) *server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Security.Insecure = true // their own tests; security is libs/svc's, libs/auth's and e2e's
	cfg.PollInterval = 20 * time.Millisecond
	cfg.StartWait = 5 * time.Second
	for _, f := range tune {
		f(&cfg)
	}
	reg := prometheus.NewRegistry()
	s, err := New(cfg, Deps{Log: svctest.Logger(t, slog.LevelWarn), Registry: reg, Pool: store, Schema: schema, Etcd: cli})
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	conn, err := grpcx.Dial(s.GRPCAddr(), nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, s.Stop(ctx))
	})
	return &server{svc: s, client: apiv1.NewTiStreamServiceClient(conn), reg: reg}
}

// req is a pull of any kind: table (by id or names), db, or tenant.
type req struct {
	kind    string
	tenant  uint64
	tableID int64
	db      string
	table   string
	start   uint64
}

type recvFunc func() ([]*apiv1.PullEvent, error)

func (s *server) open(ctx context.Context, r req) (recvFunc, error) {
	switch r.kind {
	case kindTable:
		st, err := s.client.PullTable(ctx, &apiv1.PullTableRequest{TenantId: r.tenant, TableId: r.tableID, Db: r.db, Table: r.table, StartTs: r.start})
		if err != nil {
			return nil, err
		}
		return func() ([]*apiv1.PullEvent, error) { m, err := st.Recv(); return m.GetEvents(), err }, nil
	case kindDB:
		st, err := s.client.PullDB(ctx, &apiv1.PullDBRequest{TenantId: r.tenant, Db: r.db, StartTs: r.start})
		if err != nil {
			return nil, err
		}
		return func() ([]*apiv1.PullEvent, error) { m, err := st.Recv(); return m.GetEvents(), err }, nil
	}
	st, err := s.client.PullTenant(ctx, &apiv1.PullTenantRequest{TenantId: r.tenant, StartTs: r.start})
	if err != nil {
		return nil, err
	}
	return func() ([]*apiv1.PullEvent, error) { m, err := st.Recv(); return m.GetEvents(), err }, nil
}

// pulled is what a client received.
type pulled struct {
	jsonl        bytes.Buffer // rows and resolved events, as verify reads them
	w            *truth.Writer
	ddls         []*apiv1.DDL
	messages     int
	maxRows      int // most rows in one message
	lastResolved uint64
	lastRow      uint64 // commit_ts of the last row
	lastDDL      uint64 // commit_ts of the last DDL
}

// add records one message, checking the DDL placement rule: a DDL at D
// comes after every row below D and before every row at D or later.
func (p *pulled) add(t *testing.T, tenant uint64, events []*apiv1.PullEvent) {
	if p.w == nil {
		p.w = truth.NewWriter(&p.jsonl)
	}
	p.messages++
	rows := 0
	for _, ev := range events {
		switch x := ev.Event.(type) {
		case *apiv1.PullEvent_Row:
			r := x.Row
			rows++
			require.GreaterOrEqual(t, r.CommitTs, p.lastDDL, "row at %d after a DDL at %d", r.CommitTs, p.lastDDL)
			p.lastRow = max(p.lastRow, r.CommitTs)
			op := truth.OpPut
			if r.Op == apiv1.Op_OP_DELETE {
				op = truth.OpDelete
			}
			require.NoError(t, p.w.WriteRow(truth.Row{Tenant: tenant, TableID: r.TableId, CommitTs: r.CommitTs, StartTs: r.StartTs,
				Op: op, Key: r.Key, Value: r.Value, SchemaVersion: r.SchemaVersion}))
		case *apiv1.PullEvent_Resolved:
			require.Greater(t, x.Resolved.Ts, p.lastResolved, "resolved events only advance")
			p.lastResolved = x.Resolved.Ts
			require.NoError(t, p.w.WriteResolved(truth.Resolved{Ts: x.Resolved.Ts}))
		case *apiv1.PullEvent_Ddl:
			d := x.Ddl
			require.Less(t, p.lastRow, d.CommitTs, "DDL at %d after a row at %d", d.CommitTs, p.lastRow)
			require.Greater(t, d.CommitTs, p.lastResolved, "DDL at %d after resolved %d", d.CommitTs, p.lastResolved)
			p.lastDDL = d.CommitTs
			p.ddls = append(p.ddls, d)
		}
	}
	p.maxRows = max(p.maxRows, rows)
}

// collect reads until a resolved event reaches until.
func collect(t *testing.T, recv recvFunc, tenant, until uint64) *pulled {
	t.Helper()
	p := &pulled{}
	for p.lastResolved < until {
		events, err := recv()
		require.NoError(t, err)
		p.add(t, tenant, events)
	}
	require.NoError(t, p.w.Flush())
	return p
}

// check verifies a pulled stream against the truth.
func check(t *testing.T, f *fixture, p *pulled, opts verify.Options) {
	t.Helper()
	rep, err := verify.Check(bytes.NewReader(f.truth), bytes.NewReader(p.jsonl.Bytes()), opts)
	require.NoError(t, err)
	if !rep.OK() {
		var b bytes.Buffer
		require.NoError(t, rep.Print(&b))
		t.Fatalf("verify failed:\n%s", b.String())
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// counter reads a metric's value (summed over labels) from the registry.
func (s *server) counter(t *testing.T, name string) float64 {
	mfs, err := s.reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.Metric {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}
