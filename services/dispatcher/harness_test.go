package dispatcher

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/route/routepb"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/sim/simtest"
	"github.com/tistream/tistream/libs/svc/svctest"
	"github.com/tistream/tistream/libs/tidbcodec"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// Requests the dispatcher has sent are poisoned when it releases them: a
// request (or its encoded events) used after its release sends garbage,
// which the fake sorters' checks refuse.
func TestMain(m *testing.M) {
	routepb.PoisonReleased(true)
	os.Exit(m.Run())
}

const (
	testCluster = 1
	testTenant  = 1
	testStores  = 2
)

// splitKey divides the test tenant into range 1 [-inf, t104) and range 2
// [t104, +inf).
var splitKey = tidbcodec.TablePrefix(104)

var (
	simOnce  sync.Once
	simStore objstore.Store
	simStats sim.Stats // the simulator's own record of what it wrote
)

// simulated is a few seconds of a 2-store cluster's history, made once.
func simulated(t *testing.T) objstore.Store {
	simOnce.Do(func() {
		cfg := sim.DefaultConfig()
		cfg.Stores = testStores
		cfg.Duration = 3 * time.Second
		cfg.FlushInterval = 200 * time.Millisecond
		cfg.RowsPerSec = 2000
		cfg.SplitEvery, cfg.MergeEvery, cfg.TransferEvery = 500*time.Millisecond, 700*time.Millisecond, 300*time.Millisecond
		cfg.FullListEvery = 5 // full leader lists move during a test: so does what the GC keeps
		simStore, _, simStats = simtest.Run(t, cfg)
	})
	require.NotNil(t, simStore)
	return simStore
}

// storeFiles lists the simulated files of a store in seq order.
func storeFiles(t *testing.T, store objstore.Store, storeID uint64) []string {
	objs, err := objstore.ListAll(context.Background(), store, layout.StorePrefix(testCluster, testTenant, storeID), "")
	require.NoError(t, err)
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	return keys
}

// copyFiles copies keys from src to dst.
func copyFiles(t *testing.T, src, dst objstore.Store, keys ...string) {
	for _, k := range keys {
		b, err := src.Get(context.Background(), k)
		require.NoError(t, err)
		require.NoError(t, dst.Put(context.Background(), k, b))
	}
}

// expectedBatches routes every file of a store with the test table, with
// a Router of the test's own: per seq, the ranges that get a batch and the
// digest of its events.
func expectedBatches(t *testing.T, src objstore.Store, storeID uint64) map[uint64]map[uint64]string {
	tb, err := route.NewTable([]route.Range{{ID: 1, End: splitKey}, {ID: 2, Start: splitKey}})
	require.NoError(t, err)
	rt := route.NewRouter(tb)
	out := map[uint64]map[uint64]string{}
	for _, k := range storeFiles(t, src, storeID) {
		b, err := src.Get(context.Background(), k)
		require.NoError(t, err)
		batches, h, err := rt.Route(k, b)
		require.NoError(t, err)
		out[h.Seq] = map[uint64]string{}
		for id, bt := range batches {
			out[h.Seq][id] = routeDigest(bt.Events)
		}
	}
	return out
}

// routeDigest is eventsDigest of route events, computed without the
// dispatcher's conversion.
func routeDigest(evs []route.Event) string {
	kinds := map[route.Kind]sorterv1.Event_Kind{route.KindRow: sorterv1.Event_KIND_ROW,
		route.KindRegionStart: sorterv1.Event_KIND_REGION_START, route.KindRegionEnd: sorterv1.Event_KIND_REGION_END,
		route.KindResolved: sorterv1.Event_KIND_RESOLVED, route.KindLeaderResolved: sorterv1.Event_KIND_LEADER_RESOLVED,
		route.KindLeaders: sorterv1.Event_KIND_LEADERS}
	h := fnv.New64a()
	for _, e := range evs {
		var start, end []byte
		if e.Kind == route.KindRegionStart || e.Kind == route.KindRegionEnd {
			start, end = e.Start, e.End
		}
		fmt.Fprintf(h, "%d|%d.%d.%d|%x|%x|%d|", kinds[e.Kind], e.Inc.RegionID, e.Inc.Version, e.Inc.Term, start, end, e.Ts)
		if r := e.Row; r != nil {
			fmt.Fprintf(h, "%x|%x|%x|%d|%d|", r.Key, r.Value, r.OldValue, r.StartTs, r.CommitTs)
		}
		for _, p := range e.Preds {
			fmt.Fprintf(h, "p%d.%d.%d|", p.RegionID, p.Version, p.Term)
		}
		for _, p := range e.Refs {
			fmt.Fprintf(h, "r%d.%d.%d|", p.RegionID, p.Version, p.Term)
		}
		h.Write([]byte{';'})
	}
	return fmt.Sprintf("%d:%016x", len(evs), h.Sum64())
}

// env is one test's fleet: embedded etcd, a file-system buffer and two fake
// sorters owning range 1 and range 2 at epoch 1.
type env struct {
	t       *testing.T
	cli     *clientv3.Client
	buffer  objstore.Store
	src     objstore.Store
	sorters [2]*fakeSorter
	log     *slog.Logger
	deps    func(*Deps) // changes the dispatchers' dependencies (nil: none)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cli := svctest.Etcd(t)
	buffer, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	v := &env{t: t, cli: cli, buffer: buffer, src: simulated(t), log: testLogger(t)}
	v.sorters[0] = newFakeSorter(t, map[uint64]uint64{1: 1})
	v.sorters[1] = newFakeSorter(t, map[uint64]uint64{2: 1})
	for i, f := range v.sorters {
		id := []string{"s1", "s2"}[i]
		v.put(etcdx.WorkerKey(metav1.WorkerKind_WORKER_KIND_SORTER, id), &metav1.WorkerInfo{Id: id, Kind: metav1.WorkerKind_WORKER_KIND_SORTER, Addr: f.addr})
	}
	v.put(etcdx.RangeKey(testTenant, 1), &metav1.RangeTask{TenantId: testTenant, RangeId: 1, EndKey: splitKey,
		State: metav1.RangeTask_STATE_ACTIVE, Epoch: 1, Owner: "s1"})
	v.put(etcdx.RangeKey(testTenant, 2), &metav1.RangeTask{TenantId: testTenant, RangeId: 2, StartKey: splitKey,
		State: metav1.RangeTask_STATE_ACTIVE, Epoch: 1, Owner: "s2"})
	return v
}

func (v *env) put(key string, m proto.Message) {
	v.t.Helper()
	_, err := v.cli.Put(context.Background(), key, etcdx.Marshal(m))
	require.NoError(v.t, err)
}

// assign makes dispatcher id the owner of a store's stream at epoch.
func (v *env) assign(storeID uint64, id string, epoch uint64) {
	v.put(etcdx.StreamKey(testTenant, storeID), &metav1.StreamTask{ClusterId: testCluster, TenantId: testTenant,
		StoreId: storeID, Epoch: epoch, Owner: id})
}

// testMaxInFlight is the tests' window of unacknowledged files per stream.
const testMaxInFlight = 8

// dispatcher starts a dispatcher with test settings.
func (v *env) dispatcher(id string, tweak func(*Config)) (*Service, *prometheus.Registry) {
	v.t.Helper()
	cfg := DefaultConfig()
	cfg.ID = id
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Security.Insecure = true // their own tests; security is libs/svc's, libs/auth's and e2e's
	cfg.PollInterval = 50 * time.Millisecond
	cfg.CheckpointInterval = 50 * time.Millisecond
	cfg.LeaseTTL = 5 * time.Second
	cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	cfg.DrainTimeout = 2 * time.Second
	// A window smaller than the test's files, so the tests see it limit.
	cfg.MaxInFlight = testMaxInFlight
	if tweak != nil {
		tweak(&cfg)
	}
	reg := prometheus.NewRegistry()
	deps := Deps{Log: v.log.With("instance", id), Registry: reg, Etcd: v.cli, Buffer: v.buffer}
	if v.deps != nil {
		v.deps(&deps)
	}
	s, err := New(cfg, deps)
	require.NoError(v.t, err)
	require.NoError(v.t, s.Start(context.Background()))
	v.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(v.t, s.Stop(ctx))
	})
	return s, reg
}

// checkpoint reads a stream's checkpoint from etcd (nil if none).
func (v *env) checkpoint(storeID uint64) *metav1.Checkpoint {
	cp := &metav1.Checkpoint{}
	found, _, err := etcdx.GetProto(context.Background(), v.cli, etcdx.CheckpointKey(testTenant, storeID), cp)
	require.NoError(v.t, err)
	if !found {
		return nil
	}
	return cp
}

func (v *env) checkpointSeq(storeID uint64) uint64 {
	if cp := v.checkpoint(storeID); cp != nil {
		return cp.Seq
	}
	return 0
}

// kept is what garbage collection leaves of a store's files at or below
// checkpoint upTo: the last of them whose header lists the leaders in full
// (format version 2), which the file after the checkpoint may name as its
// base.
func (v *env) kept(storeID, upTo uint64) []uint64 {
	v.t.Helper()
	var base uint64
	for _, k := range storeFiles(v.t, v.src, storeID) {
		b, err := v.src.Get(context.Background(), k)
		require.NoError(v.t, err)
		h, err := storefile.ParseHeader(k, b)
		require.NoError(v.t, err)
		if h.Seq <= upTo && h.FormatVersion >= storefile.FormatVersion && h.LeaderBaseSeq == 0 {
			base = h.Seq
		}
	}
	if base == 0 {
		return nil
	}
	return []uint64{base}
}

// bufferSeqs lists the seqs of a store's files still in the buffer.
func (v *env) bufferSeqs(storeID uint64) []uint64 {
	var out []uint64
	for _, k := range storeFiles(v.t, v.buffer, storeID) {
		n, err := layout.ParseStoreFileKey(k)
		require.NoError(v.t, err)
		out = append(out, n.Seq)
	}
	return out
}

// metric sums the series of a metric whose labels include want.
func metric(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, fam := range fams {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.Metric {
			if labelsMatch(m, want) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.Label {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

func streamLabels(storeID uint64) map[string]string {
	return map[string]string{"tenant": "1", "store": []string{"0", "1", "2", "3"}[storeID]}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, cond func() bool, msg string, args ...any) {
	t.Helper()
	require.Eventuallyf(t, cond, 20*time.Second, 10*time.Millisecond, msg, args...)
}

// testLogger logs to the test output until the test ends.
func testLogger(t *testing.T) *slog.Logger { return svctest.Logger(t, slog.LevelInfo) }

// countingStore counts the whole-object reads (Get) of each key, the reads
// a run makes of the store files it routes, and the listings a stream makes
// to find a file by its seq.
type countingStore struct {
	objstore.Store
	mu    sync.Mutex
	gets  map[string]int
	lists map[string]int // seq listings (page seqListPage) by their start-after key
}

func countGets(s objstore.Store) *countingStore {
	return &countingStore{Store: s, gets: map[string]int{}, lists: map[string]int{}}
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.mu.Lock()
	c.gets[key]++
	c.mu.Unlock()
	return c.Store.Get(ctx, key)
}

func (c *countingStore) List(ctx context.Context, prefix, after string, limit int) ([]objstore.ObjectInfo, bool, error) {
	if limit == seqListPage {
		c.mu.Lock()
		c.lists[after]++
		c.mu.Unlock()
	}
	return c.Store.List(ctx, prefix, after, limit)
}

// getsOf returns, per seq of a store, how often its file was read.
func (c *countingStore) getsOf(t *testing.T, storeID uint64) map[uint64]int {
	return c.bySeq(t, c.gets, storeID, func(key string) (uint64, bool, error) {
		sn, err := layout.ParseStoreFileKey(key)
		return sn.Seq, true, err
	})
}

// getsOfKey returns how often one key was read.
func (c *countingStore) getsOfKey(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets[key]
}

// listsOf returns, per seq of a store, how often a stream listed its seq
// to find the file (nextFile: a page of seqListPage from after the keys of
// seq-1); the first page of a listing only, later pages of one listing
// start after an object's key.
func (c *countingStore) listsOf(t *testing.T, storeID uint64) map[uint64]int {
	prefix := layout.StorePrefix(testCluster, testTenant, storeID)
	return c.bySeq(t, c.lists, storeID, func(after string) (uint64, bool, error) {
		prev, first := strings.CutSuffix(strings.TrimPrefix(after, prefix), "~")
		if !first {
			return 0, false, nil // a later page
		}
		seq, err := strconv.ParseUint(prev, 10, 64)
		return seq + 1, true, err
	})
}

// bySeq sums counts by the seq seqOf reads from their keys, for the keys
// under a store's prefix (those seqOf counts).
func (c *countingStore) bySeq(t *testing.T, counts map[string]int, storeID uint64, seqOf func(string) (uint64, bool, error)) map[uint64]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[uint64]int{}
	prefix := layout.StorePrefix(testCluster, testTenant, storeID)
	for k, n := range counts {
		if strings.HasPrefix(k, prefix) && len(k) > len(prefix) {
			seq, ok, err := seqOf(k)
			require.NoError(t, err, "key %s", k)
			if ok {
				out[seq] += n
			}
		}
	}
	return out
}
