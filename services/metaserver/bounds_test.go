package metaserver

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/svc"
	"github.com/tistream/tistream/libs/tidbcodec"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	"google.golang.org/grpc/codes"
)

// Each bound of docs/operations.md ("Bounds"): a call over it is refused
// with the code and a message naming the setting, nothing changes in etcd
// or the pool, the refusal is counted, and traffic within it still works.

func refusedCount(s *Service, method, reason string) float64 {
	return testutil.ToFloat64(s.m.refused.WithLabelValues(method, reason))
}

// The 512 KiB split key of the report is refused and nothing is stored; a
// key of exactly --max-key-bytes still splits.
func TestBoundSplitKeySize(t *testing.T) {
	env := newEnv(t)
	s, c := env.leader()
	ctx := context.Background()
	env.register(c, 1, 1, 101, 102, 103)
	etcdBefore, poolBefore := env.dump(), objects(t, env.pool)

	huge := append(tidbcodec.TablePrefix(102), bytes.Repeat([]byte{0x42}, 512<<10)...)
	_, err := c.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 1, RangeId: 1, SplitKey: huge})
	requireCode(t, err, codes.InvalidArgument, "split_key is 524297 bytes, more than the 4096 bytes a key may have (--max-key-bytes)")
	require.Equal(t, etcdBefore, env.dump(), "nothing stored in etcd")
	require.Equal(t, poolBefore, objects(t, env.pool))
	require.Equal(t, 1.0, refusedCount(s, "SplitRange", reasonKeyTooLarge))

	// Far larger messages do not even reach the handler (--max-recv-bytes).
	_, err = c.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 1, RangeId: 1, SplitKey: make([]byte, 2<<20)})
	requireCode(t, err, codes.ResourceExhausted, "larger than max")
	require.Equal(t, etcdBefore, env.dump())

	within := append(tidbcodec.TablePrefix(102), bytes.Repeat([]byte{0x42}, 4096-len(tidbcodec.TablePrefix(102)))...)
	require.Len(t, within, 4096)
	resp, err := c.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 1, RangeId: 1, SplitKey: within})
	require.NoError(t, err)
	require.Equal(t, within, env.ranges(1)[resp.NewRangeIds[1]].StartKey)
}

// A split that would give a tenant more ACTIVE ranges than
// --max-ranges-per-tenant is refused, and so is a registration asking for
// more; splits up to the bound work.
func TestBoundRangesPerTenant(t *testing.T) {
	env := newEnv(t)
	s, c := env.leader(func(c *Config) { c.MaxRangesPerTenant = 4 })
	ctx := context.Background()
	env.register(c, 1, 3, 101, 102, 103, 104) // ranges 1 [, t101) (the meta keys) 2 [t101, t103) 3 [t103, )

	// 3 active → 4: within the bound (range 2 is sealing, its children active).
	_, err := c.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 1, RangeId: 2, SplitKey: tidbcodec.TablePrefix(102)})
	require.NoError(t, err)
	etcdBefore, poolBefore := env.dump(), objects(t, env.pool)
	_, err = c.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 1, RangeId: 3, SplitKey: tidbcodec.TablePrefix(104)})
	requireCode(t, err, codes.ResourceExhausted, "tenant 1 has 4 active ranges, the most it may have (--max-ranges-per-tenant=4)")

	env.writeSnapshot(2, tso(1000), 101, 102, 103, 104)
	_, err = c.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 2, InitialRanges: 5})
	requireCode(t, err, codes.ResourceExhausted, "initial_ranges 5 is more than the 4 active ranges a tenant may have (--max-ranges-per-tenant)")
	require.Equal(t, etcdBefore, env.dump())
	require.Equal(t, poolBefore, objects(t, env.pool))
	require.Equal(t, 1.0, refusedCount(s, "SplitRange", reasonTooManyRanges))
	require.Equal(t, 1.0, refusedCount(s, "RegisterTenant", reasonTooManyRanges))

	// Within the bound, the registration works.
	_, err = c.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 2, InitialRanges: 4})
	require.NoError(t, err)
	require.Len(t, env.ranges(2), 4)
}

// testClock is a settable clock for the split/merge token buckets.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Splits and merges of a tenant are refused beyond --range-ops-per-minute
// (a token bucket per tenant); other tenants are not affected, and the
// bucket refills with time.
func TestBoundRangeOpsPerMinute(t *testing.T) {
	env := newEnv(t)
	s, c := env.leader(func(c *Config) { c.RangeOpsPerMinute = 2 })
	clock := &testClock{t: time.Now()}
	s.lim.mu.Lock()
	s.lim.now = clock.now
	s.lim.mu.Unlock()
	ctx := context.Background()
	env.register(c, 1, 4, 101, 102, 103, 104, 105, 106) // ranges 1 [, t101) (the meta keys) 2 [t101, t103) 3 [t103, t105) 4 [t105, )
	env.register(c, 2, 1, 101, 102)
	env.sorter("s1")
	require.Eventually(t, func() bool { return allOwned(env.ranges(1), "s1") }, waitFor, pollEvery)
	split := func(tenant, id uint64, table int64) error {
		_, err := c.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: tenant, RangeId: id, SplitKey: tidbcodec.TablePrefix(table)})
		return err
	}

	require.NoError(t, split(1, 2, 102))
	require.NoError(t, split(1, 3, 104))
	etcdBefore := env.dump()
	requireCode(t, split(1, 4, 106), codes.ResourceExhausted,
		"tenant 1 has used its 2 range splits and merges per minute (--range-ops-per-minute=2); retry in 30s")
	_, err := c.MergeRanges(ctx, &metav1.MergeRangesRequest{TenantId: 1, LeftRangeId: 5, RightRangeId: 6})
	requireCode(t, err, codes.ResourceExhausted, "--range-ops-per-minute=2")
	require.Equal(t, etcdBefore, env.dump(), "refused calls change nothing")
	require.Equal(t, 1.0, refusedCount(s, "SplitRange", reasonRate))
	require.Equal(t, 1.0, refusedCount(s, "MergeRanges", reasonRate))

	// Another tenant has its own bucket.
	require.NoError(t, split(2, 1, 102))
	// Half a minute later one token is back.
	clock.advance(30 * time.Second)
	require.NoError(t, split(1, 4, 106))
	requireCode(t, split(1, 7, 103), codes.ResourceExhausted, "--range-ops-per-minute=2")
}

// NotifyStoreFile creates a stream task for a new store only while the
// tenant has fewer than --max-stores-per-tenant stores, counting stores
// whose task is not written yet; existing stores keep being served.
func TestBoundStoresPerTenant(t *testing.T) {
	env := newEnv(t)
	s, c := env.leader(func(c *Config) { c.MaxStoresPerTenant = 2 })
	ctx := context.Background()
	env.register(c, 1, 1, 101)
	env.register(c, 2, 1, 101)
	notify := func(tenant, store, seq uint64) error {
		_, err := c.NotifyStoreFile(ctx, &metav1.NotifyStoreFileRequest{ClusterId: testCluster, TenantId: tenant, StoreId: store, Seq: seq, MaxTs: tso(seq)})
		return err
	}
	for store := uint64(1); store <= 4; store++ {
		env.storeFile(1, store, 1)
	}
	// Back to back: store 3 comes before the first two tasks are written.
	require.NoError(t, notify(1, 1, 1))
	require.NoError(t, notify(1, 2, 1))
	requireCode(t, notify(1, 3, 1), codes.ResourceExhausted, "tenant 1 has 2 stores, the most it may have (--max-stores-per-tenant=2); store 3 gets no stream")
	require.Eventually(t, func() bool { return len(env.streams(1)) == 2 }, waitFor, pollEvery)
	requireCode(t, notify(1, 4, 1), codes.ResourceExhausted, "--max-stores-per-tenant=2")

	// The existing stores are still served, and other tenants have their own count.
	env.storeFile(1, 1, 2)
	require.NoError(t, notify(1, 1, 2))
	env.storeFile(2, 3, 1)
	require.NoError(t, notify(2, 3, 1))
	require.Eventually(t, func() bool { return env.streams(1)[1].LatestSeq == 2 && env.streams(2)[3] != nil }, waitFor, pollEvery)
	time.Sleep(4 * testConfig().NotifyInterval) // a few flushes: nothing for stores 3 and 4
	require.Len(t, env.streams(1), 2)
	require.Nil(t, env.streams(1)[3])
	require.Nil(t, env.streams(1)[4])
	require.Equal(t, 2.0, refusedCount(s, "NotifyStoreFile", reasonTooManyStores))
}

// The report's attack: 200 made-up notifications for a registered
// tenant's stores that never wrote a file create no stream task.
func TestBoundForgedNotifications(t *testing.T) {
	env := newEnv(t)
	s, c := env.leader()
	ctx := context.Background()
	env.register(c, 1, 1, 101)
	before := env.dump()
	for store := uint64(100); store < 300; store++ {
		_, err := c.NotifyStoreFile(ctx, &metav1.NotifyStoreFileRequest{ClusterId: testCluster, TenantId: 1, StoreId: store, Seq: 1, MaxTs: tso(1)})
		requireCode(t, err, codes.FailedPrecondition, "has no stream yet and the data change buffer has no file seq 1")
	}
	// A made-up max_ts for a file that exists is made up too.
	env.storeFile(1, 7, 1)
	_, err := c.NotifyStoreFile(ctx, &metav1.NotifyStoreFileRequest{ClusterId: testCluster, TenantId: 1, StoreId: 7, Seq: 1, MaxTs: tso(2)})
	requireCode(t, err, codes.FailedPrecondition, "no file seq 1")
	time.Sleep(4 * testConfig().NotifyInterval)
	require.Empty(t, env.streams(1))
	require.Equal(t, before, env.dump())
	require.Equal(t, 201.0, refusedCount(s, "NotifyStoreFile", reasonNoSuchFile))

	// The real file, named right, gets its stream.
	_, err = c.NotifyStoreFile(ctx, &metav1.NotifyStoreFileRequest{ClusterId: testCluster, TenantId: 1, StoreId: 7, Seq: 1, MaxTs: tso(1)})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return env.streams(1)[7] != nil }, waitFor, pollEvery)
}

// With --max-concurrent-calls calls in flight, one more is refused at
// once; when one ends, calls are served again.
func TestBoundConcurrentCalls(t *testing.T) {
	env := newEnv(t)
	s, c := env.leader(func(c *Config) { c.MaxConcurrentCalls = 2 })
	ctx := context.Background()
	s.lim.calls <- struct{}{} // two calls in flight
	s.lim.calls <- struct{}{}
	_, err := c.ListTenants(ctx, &metav1.ListTenantsRequest{})
	requireCode(t, err, codes.ResourceExhausted, "the meta-server is serving 2 calls already (--max-concurrent-calls=2)")
	_, err = c.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 1, RangeId: 1, SplitKey: []byte("k")})
	requireCode(t, err, codes.ResourceExhausted, "--max-concurrent-calls=2")
	require.Equal(t, 1.0, refusedCount(s, "ListTenants", reasonConcurrency))
	require.Equal(t, 1.0, refusedCount(s, "SplitRange", reasonConcurrency))
	<-s.lim.calls
	_, err = c.ListTenants(ctx, &metav1.ListTenantsRequest{})
	require.NoError(t, err)
	require.Len(t, s.lim.calls, 1, "the served call gave its slot back")
}

// Every bound is a flag and a YAML key with its default, and is validated.
func TestBoundsConfig(t *testing.T) {
	def := DefaultConfig()
	require.Equal(t, 4096, def.MaxKeyBytes)
	require.Equal(t, 10_000, def.MaxRangesPerTenant)
	require.Equal(t, 60, def.RangeOpsPerMinute)
	require.Equal(t, 1024, def.MaxStoresPerTenant)
	require.Equal(t, 256, def.MaxConcurrentCalls)
	require.Equal(t, 1<<20, def.MaxRecvBytes)
	valid := testConfig()
	require.NoError(t, valid.Validate(), "the defaults are valid (with the tests' plaintext setting)")

	cfg := DefaultConfig()
	fs := flag.NewFlagSet("meta-server", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"--max-key-bytes=1024", "--max-ranges-per-tenant=50", "--range-ops-per-minute=5",
		"--max-stores-per-tenant=16", "--max-concurrent-calls=8"}))
	require.Equal(t, [5]int{1024, 50, 5, 16, 8},
		[5]int{cfg.MaxKeyBytes, cfg.MaxRangesPerTenant, cfg.RangeOpsPerMinute, cfg.MaxStoresPerTenant, cfg.MaxConcurrentCalls})

	path := filepath.Join(t.TempDir(), "meta.yaml")
	require.NoError(t, os.WriteFile(path, []byte("max_key_bytes: 2048\nmax_ranges_per_tenant: 100\nrange_ops_per_minute: 10\n"+
		"max_stores_per_tenant: 32\nmax_concurrent_calls: 64\n"), 0o600))
	cfg = DefaultConfig()
	require.NoError(t, svc.LoadYAML(path, &cfg))
	require.Equal(t, [5]int{2048, 100, 10, 32, 64},
		[5]int{cfg.MaxKeyBytes, cfg.MaxRangesPerTenant, cfg.RangeOpsPerMinute, cfg.MaxStoresPerTenant, cfg.MaxConcurrentCalls})

	for _, c := range []struct {
		edit func(*Config)
		msg  string
	}{
		{func(c *Config) { c.MaxKeyBytes = 10 }, "--max-key-bytes must be in [64, 65536]"},
		{func(c *Config) { c.MaxKeyBytes = 1 << 20 }, "--max-key-bytes must be in [64, 65536]"},
		{func(c *Config) { c.MaxRangesPerTenant = 0 }, "--max-ranges-per-tenant must be at least 1"},
		{func(c *Config) { c.InitialRanges, c.MaxRangesPerTenant = 8, 4 }, "at least --initial-ranges"},
		{func(c *Config) { c.RangeOpsPerMinute = 0 }, "--range-ops-per-minute must be at least 1"},
		{func(c *Config) { c.MaxStoresPerTenant = 0 }, "--max-stores-per-tenant must be at least 1"},
		{func(c *Config) { c.MaxConcurrentCalls = 0 }, "--max-concurrent-calls must be at least 1"},
	} {
		cfg := testConfig()
		c.edit(&cfg)
		require.ErrorContains(t, cfg.Validate(), c.msg)
	}
}
