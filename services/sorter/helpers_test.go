package sorter

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/route/routepb"
	"github.com/tistream/tistream/libs/svc/svctest"
	"github.com/tistream/tistream/libs/tidbcodec"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// Requests the sorter has applied are poisoned when it releases them (a
// reference kept past Release reads garbage and the tests' checks of what
// was published fail).
func TestMain(m *testing.M) {
	routepb.PoisonReleased(true)
	os.Exit(m.Run())
}

const (
	waitFor   = 15 * time.Second
	pollEvery = 20 * time.Millisecond
	testTable = 100
)

// testEnv is one embedded etcd and a file-backed committed data pool.
type testEnv struct {
	t    *testing.T
	cli  *clientv3.Client
	pool objstore.Store
	log  *slog.Logger
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	log := svctest.Logger(t, slog.LevelDebug) // first, so its cleanup runs last
	cli := svctest.Etcd(t)
	store, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	return &testEnv{t: t, cli: cli, pool: store, log: log}
}

func testConfig(t *testing.T, id string) Config {
	cfg := DefaultConfig()
	cfg.ID = id
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Security.Insecure = true // their own tests; security is libs/svc's, libs/auth's and e2e's
	cfg.DataDir = t.TempDir()
	cfg.LeaseTTL = 2 * time.Second
	cfg.FlushInterval = 30 * time.Millisecond
	cfg.SnapshotInterval = 150 * time.Millisecond
	cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	cfg.StopTimeout = 10 * time.Second
	cfg.Buffer.Shards = 1
	cfg.Buffer.MemTableSize = 4 << 20
	cfg.Buffer.BlockCacheSize = 4 << 20
	cfg.Buffer.MaxOpenFiles = 64
	cfg.Buffer.GCInterval = 0
	cfg.Retention = 0 // the test histories are "old": retention_test.go turns it on
	cfg.StallAfter = 300 * time.Millisecond
	return cfg
}

// startSorter starts a sorter; it is stopped when the test ends.
func (e *testEnv) startSorter(id string) *Service { return e.startSorterWith(id, nil) }

// startSorterWith starts a sorter with its test configuration changed by tune.
func (e *testEnv) startSorterWith(id string, tune func(*Config)) *Service {
	e.t.Helper()
	return e.startSorterHooked(id, tune, nil)
}

// startSorterHooked is startSorterWith with hook called on the service
// before it starts (to set its test hooks).
func (e *testEnv) startSorterHooked(id string, tune func(*Config), hook func(*Service)) *Service {
	e.t.Helper()
	cfg := testConfig(e.t, id)
	if tune != nil {
		tune(&cfg)
	}
	s, err := New(cfg, Deps{Log: e.log, Registry: prometheus.NewRegistry(), Etcd: e.cli, Pool: e.pool})
	require.NoError(e.t, err)
	if hook != nil {
		hook(s)
	}
	require.NoError(e.t, s.Start(context.Background()))
	e.t.Cleanup(func() { stopSorter(e.t, s) })
	return s
}

func stopSorter(t *testing.T, s *Service) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Stop(ctx))
}

// sorterFeedingRange1 starts sorter s1 (its test configuration changed by
// tune, if not nil), assigns it range 1 at epoch 1, waits until it has
// taken it and opens a feeder to it.
func (e *testEnv) sorterFeedingRange1(tune func(*Config)) (*Service, *feeder) {
	e.t.Helper()
	s := e.startSorterWith("s1", tune)
	e.putTask(tenant, 1, "s1", 1)
	waitTaken(e.t, s, tenant, 1, 1)
	return s, openFeeder(e.t, s.GRPCAddr())
}

// putTask writes a range task of the whole test table as the meta-server
// would.
func (e *testEnv) putTask(tenant, id uint64, owner string, epoch uint64) {
	e.t.Helper()
	t := &metav1.RangeTask{TenantId: tenant, RangeId: id, StartKey: tidbcodec.TablePrefix(testTable),
		EndKey: tidbcodec.TablePrefix(testTable + 1), OpenedAtTs: 50, State: metav1.RangeTask_STATE_ACTIVE,
		Epoch: epoch, Owner: owner}
	_, err := e.cli.Put(context.Background(), etcdx.RangeKey(tenant, id), etcdx.Marshal(t))
	require.NoError(e.t, err)
}

// waitTaken waits until s has taken the range at epoch.
func waitTaken(t *testing.T, s *Service, tenant, id, epoch uint64) {
	t.Helper()
	require.Eventually(t, func() bool {
		h := s.lookup(rangeKey{tenant, id})
		if h == nil || h.epoch != epoch {
			return false
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.r != nil
	}, waitFor, pollEvery, "range %d of tenant %d not taken at epoch %d", id, tenant, epoch)
}

// feeder is a dispatcher's side of one Ingest stream.
type feeder struct {
	t      *testing.T
	stream sorterv1.SorterService_IngestClient
	cancel context.CancelFunc

	mu       sync.Mutex
	durable  []*sorterv1.Durable
	notOwner []*sorterv1.NotOwner
	err      error
}

func openFeeder(t *testing.T, addr string) *feeder {
	t.Helper()
	conn, err := grpcx.Dial(addr, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := sorterv1.NewSorterServiceClient(conn).Ingest(ctx)
	require.NoError(t, err)
	f := &feeder{t: t, stream: stream, cancel: cancel}
	t.Cleanup(cancel)
	go func() {
		for {
			resp, err := stream.Recv()
			f.mu.Lock()
			if err != nil {
				f.err = err
				f.mu.Unlock()
				return
			}
			f.durable = append(f.durable, resp.Durable...)
			f.notOwner = append(f.notOwner, resp.NotOwner...)
			f.mu.Unlock()
		}
	}()
	return f
}

// send sends one store file's batch for one range.
func (f *feeder) send(tenant, store, seq, rangeID, epoch uint64, events ...*sorterv1.Event) {
	f.t.Helper()
	require.NoError(f.t, f.stream.Send(&sorterv1.IngestRequest{TenantId: tenant, StoreId: store, Seq: seq, Dispatcher: "d1",
		Batches: []*sorterv1.RangeBatch{{RangeId: rangeID, RangeEpoch: epoch, Events: events}}}))
}

// waitDurable waits for a Durable of (range, store) at seq or above.
func (f *feeder) waitDurable(tenant, rangeID, store, seq uint64) {
	f.t.Helper()
	require.Eventually(f.t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, d := range f.durable {
			if d.TenantId == tenant && d.RangeId == rangeID && d.StoreId == store && d.Seq >= seq {
				return true
			}
		}
		return false
	}, waitFor, pollEvery, "no Durable for range %d store %d seq %d", rangeID, store, seq)
}

func (f *feeder) acks() []*sorterv1.Durable {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*sorterv1.Durable(nil), f.durable...)
}

func (f *feeder) refusals() []*sorterv1.NotOwner {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*sorterv1.NotOwner(nil), f.notOwner...)
}

// waitNotOwner waits for a NotOwner of (range, store, seq).
func (f *feeder) waitNotOwner(tenant, rangeID, store, seq uint64) {
	f.t.Helper()
	require.Eventually(f.t, func() bool {
		for _, n := range f.refusals() {
			if n.TenantId == tenant && n.RangeId == rangeID && n.StoreId == store && n.Seq == seq {
				return true
			}
		}
		return false
	}, waitFor, pollEvery, "no NotOwner for range %d store %d seq %d", rangeID, store, seq)
}

// Events with real TiDB record keys of the test table.

func key(handle int64) []byte { return tidbcodec.EncodeRecordKey(testTable, handle) }

func inc() *sorterv1.Incarnation { return &sorterv1.Incarnation{RegionId: 7, Version: 1, Term: 1} }

func regionStart() *sorterv1.Event {
	return &sorterv1.Event{Kind: sorterv1.Event_KIND_REGION_START, Inc: inc(),
		StartKey: tidbcodec.TablePrefix(testTable), EndKey: tidbcodec.TablePrefix(testTable + 1)}
}

func resolvedAt(ts uint64) *sorterv1.Event {
	return &sorterv1.Event{Kind: sorterv1.Event_KIND_RESOLVED, Refs: []*sorterv1.Incarnation{inc()}, Ts: ts}
}

func prewrite(handle int64, value string, startTs uint64) *sorterv1.Event {
	return &sorterv1.Event{Kind: sorterv1.Event_KIND_ROW, Inc: inc(), Row: &sorterv1.Row{Type: sorterv1.RowType_ROW_TYPE_PREWRITE,
		Op: sorterv1.RowOp_ROW_OP_PUT, Key: key(handle), Value: []byte(value), StartTs: startTs}}
}

func commit(handle int64, startTs, commitTs uint64) *sorterv1.Event {
	return &sorterv1.Event{Kind: sorterv1.Event_KIND_ROW, Inc: inc(), Row: &sorterv1.Row{Type: sorterv1.RowType_ROW_TYPE_COMMIT,
		Op: sorterv1.RowOp_ROW_OP_PUT, Key: key(handle), StartTs: startTs, CommitTs: commitTs}}
}

func committed(handle int64, value string, startTs, commitTs uint64) *sorterv1.Event {
	return &sorterv1.Event{Kind: sorterv1.Event_KIND_ROW, Inc: inc(), Row: &sorterv1.Row{Type: sorterv1.RowType_ROW_TYPE_COMMITTED,
		Op: sorterv1.RowOp_ROW_OP_PUT, Key: key(handle), Value: []byte(value), StartTs: startTs, CommitTs: commitTs}}
}

func deleted(handle int64, startTs, commitTs uint64) *sorterv1.Event {
	return &sorterv1.Event{Kind: sorterv1.Event_KIND_ROW, Inc: inc(), Row: &sorterv1.Row{Type: sorterv1.RowType_ROW_TYPE_COMMITTED,
		Op: sorterv1.RowOp_ROW_OP_DELETE, Key: key(handle), StartTs: startTs, CommitTs: commitTs}}
}

// published reads a range from the pool: its rows as
// "handle@commit_ts op=value" in order, and its watermark.
func (e *testEnv) published(tenant, id uint64) ([]string, uint64) {
	e.t.Helper()
	ctx := context.Background()
	r, err := pool.OpenRangeReader(ctx, e.pool, tenant, id, 0)
	require.NoError(e.t, err)
	var out []string
	for {
		c, ok, err := r.Next(ctx)
		require.NoError(e.t, err)
		if !ok {
			return out, r.Watermark()
		}
		for _, row := range c.Rows {
			_, h, err := tidbcodec.DecodeRecordKey(row.Key)
			require.NoError(e.t, err)
			out = append(out, fmt.Sprintf("%d@%d %s=%s", h, row.CommitTs, row.Op, row.Value))
		}
	}
}

// waitPublished waits until the range's pool watermark reaches wm and
// returns its rows.
func (e *testEnv) waitPublished(tenant, id, wm uint64) []string {
	e.t.Helper()
	var rows []string
	require.Eventually(e.t, func() bool {
		var got uint64
		rows, got = e.published(tenant, id)
		return got >= wm
	}, waitFor, pollEvery, "range %d never published watermark %d", id, wm)
	return rows
}
