package metaserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/svc/svctest"
	"github.com/tistream/tistream/libs/tenantcfg"
	dispatcherv1 "github.com/tistream/tistream/proto/gen/go/tistream/dispatcher/v1"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	testCluster = 1
	waitFor     = 30 * time.Second // generous: make test runs packages side by side on 2 cores
	pollEvery   = 20 * time.Millisecond
)

// testEnv is one embedded etcd and in-memory buffer and pool.
type testEnv struct {
	t      *testing.T
	cli    *clientv3.Client
	buffer *objstore.Memory
	pool   *objstore.Memory
	log    *slog.Logger
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	log := svctest.Logger(t, slog.LevelDebug) // first, so its cleanup runs last
	return &testEnv{t: t, cli: svctest.Etcd(t), buffer: objstore.NewMemory(), pool: objstore.NewMemory(), log: log}
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Security.Insecure = true // their own tests; security is libs/svc's, libs/auth's and e2e's
	cfg.SessionTTL = 2 * time.Second
	cfg.ScheduleInterval = 100 * time.Millisecond
	cfg.NotifyInterval = 50 * time.Millisecond
	cfg.WatermarkCacheTTL = 0
	cfg.StopTimeout = 10 * time.Second
	cfg.TenantDefaults.Retention = 0 // the test histories are "old": retention_test.go turns it on
	return cfg
}

// startMeta starts a meta-server; it is stopped when the test ends.
func (e *testEnv) startMeta(edit ...func(*Config)) *Service {
	e.t.Helper()
	cfg := testConfig()
	for _, f := range edit {
		f(&cfg)
	}
	s, err := New(cfg, Deps{Log: e.log, Registry: prometheus.NewRegistry(), Etcd: e.cli, Buffer: e.buffer, Pool: e.pool})
	require.NoError(e.t, err)
	require.NoError(e.t, s.Start(context.Background()))
	e.t.Cleanup(func() { stopMeta(e.t, s) })
	return s
}

func stopMeta(t *testing.T, s *Service) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Stop(ctx))
}

// leader starts a meta-server and waits until it leads.
func (e *testEnv) leader(edit ...func(*Config)) (*Service, metav1.MetaServiceClient) {
	e.t.Helper()
	s := e.startMeta(edit...)
	require.Eventually(e.t, func() bool { return s.IsLeader() && s.state.ready() }, waitFor, pollEvery)
	return s, e.client(s)
}

func (e *testEnv) client(s *Service) metav1.MetaServiceClient {
	conn, err := grpcx.Dial(s.GRPCAddr(), nil)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = conn.Close() })
	return metav1.NewMetaServiceClient(conn)
}

// writeSnapshot puts a schema snapshot at ts with one database holding the
// given tables into the buffer.
func (e *testEnv) writeSnapshot(tenant, ts uint64, tables ...int64) {
	e.t.Helper()
	w, err := schemasnap.NewWriter(&formatv1.SchemaSnapshotHeader{ClusterId: testCluster, TenantId: tenant, Ts: ts,
		DbCount: 1, TableCount: uint64(len(tables))})
	require.NoError(e.t, err)
	require.NoError(e.t, w.AddDatabase(1, []byte(`{"id":1}`)))
	for _, id := range tables {
		require.NoError(e.t, w.AddTable(1, fmt.Appendf(nil, `{"id":%d}`, id)))
	}
	b, err := w.Finish()
	require.NoError(e.t, err)
	require.NoError(e.t, e.buffer.Put(context.Background(), layout.SchemaSnapshotKey(testCluster, tenant, ts), b))
}

// register registers a tenant through the leader.
func (e *testEnv) register(c metav1.MetaServiceClient, tenant uint64, ranges uint32, tables ...int64) {
	e.t.Helper()
	e.writeSnapshot(tenant, tso(1000), tables...)
	resp, err := c.RegisterTenant(context.Background(), &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: tenant, InitialRanges: ranges})
	require.NoError(e.t, err)
	require.True(e.t, resp.Created)
}

// worker registers a simulated worker with a lease; Close loses it.
func (e *testEnv) worker(kind metav1.WorkerKind, id, addr string) *etcdx.Registration {
	e.t.Helper()
	r, err := etcdx.Register(context.Background(), e.cli, &metav1.WorkerInfo{Id: id, Kind: kind, Addr: addr}, 2*time.Second)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = r.Close() })
	return r
}

func (e *testEnv) sorter(id string) *etcdx.Registration {
	return e.worker(metav1.WorkerKind_WORKER_KIND_SORTER, id, id+".sorter:7200")
}

// ranges reads a tenant's range tasks from etcd.
func (e *testEnv) ranges(tenant uint64) map[uint64]*metav1.RangeTask {
	e.t.Helper()
	all, _, err := etcdx.ListProto(context.Background(), e.cli, etcdx.RangeTenantPrefix(tenant), func() *metav1.RangeTask { return &metav1.RangeTask{} })
	require.NoError(e.t, err)
	out := map[uint64]*metav1.RangeTask{}
	for _, r := range all {
		out[r.RangeId] = r
	}
	return out
}

// owners maps range id to owner and epoch.
func (e *testEnv) owners(tenant uint64) map[uint64]string {
	out := map[uint64]string{}
	for id, r := range e.ranges(tenant) {
		out[id] = fmt.Sprintf("%s@%d", r.Owner, r.Epoch)
	}
	return out
}

// dump is every durable key the meta-server writes (not the election or
// worker keys, which live with leases) with its mod revision.
func (e *testEnv) dump() map[string]int64 {
	e.t.Helper()
	resp, err := e.cli.Get(context.Background(), etcdx.Root, clientv3.WithPrefix())
	require.NoError(e.t, err)
	out := map[string]int64{}
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		if strings.HasPrefix(k, etcdx.ElectionPrefix) || strings.HasPrefix(k, etcdx.WorkersPrefix) {
			continue
		}
		out[k] = kv.ModRevision
	}
	return out
}

// objects lists every key of a store.
func objects(t *testing.T, s objstore.Store) []string {
	all, err := objstore.ListAll(context.Background(), s, "", "")
	require.NoError(t, err)
	keys := make([]string, len(all))
	for i, o := range all {
		keys[i] = o.Key
	}
	return keys
}

func requireCode(t *testing.T, err error, code codes.Code, contains string) {
	t.Helper()
	require.Error(t, err)
	st, ok := status.FromError(err)
	require.True(t, ok, "not a gRPC status: %v", err)
	require.Equal(t, code, st.Code(), "message: %s", st.Message())
	require.Contains(t, st.Message(), contains)
}

// tso is a timestamp at physical time ms.
func tso(ms uint64) uint64 { return ms << 18 }

// fakeDispatcher records forwarded notifications.
type fakeDispatcher struct {
	dispatcherv1.UnimplementedDispatcherServiceServer
	mu  sync.Mutex
	got []*dispatcherv1.NotifyRequest
	srv *grpc.Server
	lis net.Listener
}

func startFakeDispatcher(t *testing.T) *fakeDispatcher {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	d := &fakeDispatcher{srv: grpc.NewServer(), lis: lis}
	dispatcherv1.RegisterDispatcherServiceServer(d.srv, d)
	go func() { _ = d.srv.Serve(lis) }()
	t.Cleanup(d.srv.Stop)
	return d
}

func (d *fakeDispatcher) Notify(_ context.Context, req *dispatcherv1.NotifyRequest) (*dispatcherv1.NotifyResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, req)
	return &dispatcherv1.NotifyResponse{}, nil
}

func (d *fakeDispatcher) seqs() []uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []uint64
	for _, r := range d.got {
		out = append(out, r.Seq)
	}
	return out
}

// streams reads a tenant's stream tasks from etcd.
func (e *testEnv) streams(tenant uint64) map[uint64]*metav1.StreamTask {
	e.t.Helper()
	all, _, err := etcdx.ListProto(context.Background(), e.cli, etcdx.StreamTenantPrefix(tenant), func() *metav1.StreamTask { return &metav1.StreamTask{} })
	require.NoError(e.t, err)
	out := map[uint64]*metav1.StreamTask{}
	for _, st := range all {
		out[st.StoreId] = st
	}
	return out
}

// group starts a group writer in the pool, as sorter id would, closed at
// the end of the test.
func (e *testEnv) group(id string) *pool.GroupWriter {
	e.t.Helper()
	g, err := pool.NewGroupWriter(e.pool, 1, pool.GroupID(id, uint64(time.Now().UnixNano())), id, pool.GroupOptions{})
	require.NoError(e.t, err)
	e.t.Cleanup(g.Close)
	return g
}

// tenantActive reports whether the leader's mirror knows the tenant as
// served (not deregistered); an unknown tenant is not active.
func (s *Service) tenantActive(tenant uint64) bool {
	e := s.state.tenants.get(etcdx.TenantKey(tenant))
	return e != nil && tenantcfg.Resolve(e.val, s.cfg.TenantDefaults).Active()
}
