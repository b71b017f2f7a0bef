package metaserver

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/usage"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// usageFixture gives tenant 1 usage the test knows independently of the
// code under test: ingest in its checkpoints (300 rows, 3,000 bytes),
// served rows in an hour three hours ago (rolled up) and in the current
// hour (not rolled up).
func usageFixture(t *testing.T, env *testEnv, f offboardFixture) (wantRows, wantServed uint64) {
	ctx := context.Background()
	f.populate(1)
	f.populate(2)
	for store, rows := range map[uint64]uint64{1: 100, 2: 200} {
		_, err := env.cli.Put(ctx, etcdx.CheckpointKey(1, store), etcdx.Marshal(&metav1.Checkpoint{Seq: 1, IngestedRows: rows, IngestedBytes: 10 * rows}))
		require.NoError(t, err)
	}
	flush := func(at time.Time, rows int, instance string) {
		m := usage.NewMeter(prometheus.NewRegistry(), usage.MeterOptions{Now: func() time.Time { return at }})
		m.Served(1, rows, 10*rows)
		m.Served(2, 1000, 1000) // another tenant's
		require.NoError(t, usage.NewFlusher(m, env.pool, instance, env.log).Flush(ctx))
	}
	// (Backdated records are rolled up here: the leader's rollup would
	// take a record written before the tenant's registration for an
	// earlier incarnation's.)
	flush(time.Now().Add(-3*time.Hour), 7, "api-old")
	for _, tenant := range []uint64{1, 2} {
		_, err := usage.Rollup(ctx, env.pool, tenant, time.Now(), 10*time.Minute)
		require.NoError(t, err)
	}
	flush(time.Now(), 5, "api-now")
	return 300, 12
}

// TestOffboardKeepsUsage: offboarding rolls up the tenant's last hours and
// archives them; GetUsage answers for the deleted tenant from the archive
// with the totals it had; a re-registration of the id starts with no usage,
// not even a record a process flushed after the deletion, and the old
// incarnation's stays readable with archived=true.
func TestOffboardKeepsUsage(t *testing.T) {
	env := newEnv(t)
	s, c := env.leader(func(c *Config) { c.OffboardInterval = 50 * time.Millisecond; c.Usage.SampleInterval = time.Hour })
	f := offboardFixture{env: env, c: c}
	ctx := context.Background()
	wantRows, wantServed := usageFixture(t, env, f)
	from := time.Now().Add(-6 * time.Hour).UnixMilli()

	before, err := c.GetUsage(ctx, &metav1.GetUsageRequest{TenantId: 1, FromUnixMs: from})
	require.NoError(t, err)
	require.Equal(t, wantRows, before.Total.IngestedRows)
	require.Equal(t, wantServed, before.Total.ServedRows)

	_, err = c.DeregisterTenant(ctx, &metav1.DeregisterTenantRequest{TenantId: 1, GraceMs: proto.Int64(0)})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(f.keysOf(1)) == 0 }, waitFor, 50*time.Millisecond, "left: %v", f.keysOf(1))
	require.Empty(t, objectsUnder(t, env.pool, layout.UsagePrefix(1)), "the folder's usage records went with it")

	after, err := c.GetUsage(ctx, &metav1.GetUsageRequest{TenantId: 1, FromUnixMs: from})
	require.NoError(t, err, "a deleted tenant is answered from the archive")
	require.Equal(t, wantRows, after.Total.IngestedRows, "ingest: the checkpoints' totals, once")
	require.Equal(t, 10*wantRows, after.Total.IngestedBytes)
	require.Equal(t, wantServed, after.Total.ServedRows)
	require.Equal(t, 10*wantServed, after.Total.ServedBytes)
	require.Greater(t, after.Total.StoredBytes[classPool], uint64(0), "the last sample's stored bytes")
	require.Len(t, after.Hours, 2)
	for _, h := range after.Hours {
		require.True(t, h.Final, "archived hours are final")
	}
	require.Equal(t, uint64(7), after.Hours[0].Counts.ServedRows)
	other, err := c.GetUsage(ctx, &metav1.GetUsageRequest{TenantId: 2, FromUnixMs: from})
	require.NoError(t, err)
	require.Equal(t, uint64(2000), other.Total.ServedRows, "the other tenant's usage is its own")

	// A process that counted the tenant flushes after the deletion (the
	// meta-server's own deletes, a pull that ended late): the record lands
	// in the empty folder, before any re-registration.
	m := usage.NewMeter(prometheus.NewRegistry(), usage.MeterOptions{})
	m.Served(1, 99, 99)
	require.NoError(t, usage.NewFlusher(m, env.pool, "late", env.log).Flush(ctx))
	time.Sleep(5 * time.Millisecond)

	env.writeSnapshot(1, tso(5000), 201)
	_, err = c.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 1, InitialRanges: 1})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.tenantActive(1) }, waitFor, pollEvery)
	fresh, err := c.GetUsage(ctx, &metav1.GetUsageRequest{TenantId: 1, FromUnixMs: from})
	require.NoError(t, err)
	require.Zero(t, fresh.Total.ServedRows, "none of the old incarnation's usage, the late record included")
	require.Zero(t, fresh.Total.IngestedRows)
	_, err = usage.RollupSince(ctx, env.pool, 1, s.state.tenants.get(etcdx.TenantKey(1)).val.RegisteredUnixMs, time.Now().Add(2*time.Hour), 10*time.Minute)
	require.NoError(t, err)
	require.Empty(t, objectsUnder(t, env.pool, layout.UsagePrefix(1)+"raw/"), "the late record is deleted by the rollup of its hour")
	fresh, err = c.GetUsage(ctx, &metav1.GetUsageRequest{TenantId: 1, FromUnixMs: from})
	require.NoError(t, err)
	require.Zero(t, fresh.Total.ServedRows, "and not counted by it")
	old, err := c.GetUsage(ctx, &metav1.GetUsageRequest{TenantId: 1, FromUnixMs: from, Archived: true})
	require.NoError(t, err)
	require.True(t, proto.Equal(after, old), "the old incarnation's usage is unchanged")

	_, err = c.GetUsage(ctx, &metav1.GetUsageRequest{TenantId: 9})
	requireCode(t, err, codes.NotFound, "no archived usage")
}

// archiveFailStore fails the usage archive's writes while failing is set.
type archiveFailStore struct {
	objstore.Store
	failing atomic.Bool
	failed  atomic.Int64
}

func (s *archiveFailStore) PutIfAbsent(ctx context.Context, key string, b []byte) error {
	if s.failing.Load() && strings.HasSuffix(key, "/done") && strings.HasPrefix(key, layout.UsageArchiveRoot) {
		s.failed.Add(1)
		return errInjected
	}
	return s.Store.PutIfAbsent(ctx, key, b)
}

// TestOffboardUsageArchiveResumes: a leader that rolled up and copied the
// tenant's usage but died before the archive's marker leaves the tenant
// DELETING with nothing deleted; the next leader samples and rolls up
// again, copies again, and the archived totals are the same: nothing
// counted twice.
func TestOffboardUsageArchiveResumes(t *testing.T) {
	env := newEnv(t)
	bad := &archiveFailStore{Store: env.pool}
	bad.failing.Store(true)
	cfg := testConfig()
	cfg.OffboardInterval = 50 * time.Millisecond
	cfg.Usage.SampleInterval = time.Hour
	first, err := New(cfg, Deps{Log: env.log, Registry: prometheus.NewRegistry(), Etcd: env.cli, Buffer: env.buffer, Pool: bad})
	require.NoError(t, err)
	require.NoError(t, first.Start(context.Background()))
	require.Eventually(t, func() bool { return first.IsLeader() && first.state.ready() }, waitFor, pollEvery)
	c := env.client(first)
	f := offboardFixture{env: env, c: c}
	wantRows, wantServed := usageFixture(t, env, f)
	ctx := context.Background()

	_, err = c.DeregisterTenant(ctx, &metav1.DeregisterTenantRequest{TenantId: 1, GraceMs: proto.Int64(0)})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return bad.failed.Load() >= 2 }, waitFor, pollEvery, "the archive is retried")
	require.GreaterOrEqual(t, testutil.ToFloat64(first.ob.errors), 1.0)
	require.NotEmpty(t, objectsUnder(t, env.pool, layout.ManifestKey(1, 1)), "nothing is deleted before the usage is archived")
	stopMeta(t, first)

	second := env.startMeta(func(c *Config) { c.OffboardInterval = 50 * time.Millisecond; c.Usage.SampleInterval = time.Hour })
	require.Eventually(t, func() bool { return second.IsLeader() }, waitFor, pollEvery)
	require.Eventually(t, func() bool { return len(f.keysOf(1)) == 0 }, waitFor, 50*time.Millisecond, "left: %v", f.keysOf(1))
	resp, found, err := usage.QueryArchive(ctx, env.pool, 1, 0, 0)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, wantRows, resp.Total.IngestedRows)
	require.Equal(t, wantServed, resp.Total.ServedRows)
	require.Equal(t, 10*wantServed, resp.Total.ServedBytes)
}

func objectsUnder(t *testing.T, s objstore.Store, prefix string) []string {
	var out []string
	for _, k := range objects(t, s) {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}
