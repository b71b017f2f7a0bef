package metaserver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// TestTenantSettings: RegisterTenant stores validated settings at
// generation 1; UpdateTenant merges, resets to the fleet default, raises
// the generation, and names what is wrong; ListTenants gives the fleet
// defaults with the records.
func TestTenantSettings(t *testing.T) {
	env := newEnv(t)
	_, c := env.leader(func(c *Config) {
		c.TenantDefaults.KEKRef = "local:fleet"
		c.TenantDefaults.Retention = 24 * time.Hour
		c.TenantDefaults.Quotas.MaxConcurrentPulls = 4
	})
	ctx := context.Background()
	env.writeSnapshot(1, tso(1000), 101)

	_, err := c.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 1,
		Settings: &metav1.TenantSettings{RetentionMs: proto.Int64(-1)}})
	requireCode(t, err, codes.InvalidArgument, "retention_ms -1")
	_, err = c.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 1,
		Settings: &metav1.TenantSettings{BufferUrl: proto.String("s3://key:secret@bucket/x")}})
	requireCode(t, err, codes.InvalidArgument, "credentials_ref")
	require.NotContains(t, err.Error(), "secret")
	require.Empty(t, env.dump(), "a refused registration writes nothing")

	own := &metav1.TenantSettings{RetentionMs: proto.Int64(time.Hour.Milliseconds()), KekRef: proto.String("local:t1"),
		Quotas: &metav1.TenantQuotas{MaxRanges: proto.Uint32(8)}}
	resp, err := c.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 1, Settings: own})
	require.NoError(t, err)
	require.True(t, proto.Equal(own, resp.Tenant.Settings), "%v", resp.Tenant.Settings)
	require.Equal(t, uint64(1), resp.Tenant.SettingsGeneration)
	require.Equal(t, metav1.TenantState_TENANT_STATE_ACTIVE, resp.Tenant.State)
	stored := &metav1.TenantInfo{}
	_, _, err = etcdx.GetProto(ctx, env.cli, etcdx.TenantKey(1), stored)
	require.NoError(t, err)
	require.True(t, proto.Equal(resp.Tenant, stored))

	for _, bad := range []struct {
		req      *metav1.UpdateTenantRequest
		code     codes.Code
		contains string
	}{
		{&metav1.UpdateTenantRequest{TenantId: 1}, codes.InvalidArgument, "nothing to change"},
		{&metav1.UpdateTenantRequest{TenantId: 1, Reset_: []string{"quotas.nope"}}, codes.InvalidArgument, `no field "nope"`},
		{&metav1.UpdateTenantRequest{TenantId: 1, Settings: &metav1.TenantSettings{KekRef: proto.String("vault:x")}}, codes.InvalidArgument, "kek_ref"},
		{&metav1.UpdateTenantRequest{TenantId: 9, Reset_: []string{"kek_ref"}}, codes.NotFound, "tenant 9 is not registered"},
		{&metav1.UpdateTenantRequest{Reset_: []string{"kek_ref"}}, codes.InvalidArgument, "tenant_id"},
	} {
		_, err := c.UpdateTenant(ctx, bad.req)
		requireCode(t, err, bad.code, bad.contains)
	}
	_, _, err = etcdx.GetProto(ctx, env.cli, etcdx.TenantKey(1), stored)
	require.NoError(t, err)
	require.Equal(t, uint64(1), stored.SettingsGeneration, "refused updates change nothing")

	up, err := c.UpdateTenant(ctx, &metav1.UpdateTenantRequest{TenantId: 1,
		Settings: &metav1.TenantSettings{Quotas: &metav1.TenantQuotas{PullBytesPerSec: proto.Uint64(1 << 20)}},
		Reset_:   []string{"retention_ms", "kek_ref"}})
	require.NoError(t, err)
	want := &metav1.TenantSettings{Quotas: &metav1.TenantQuotas{MaxRanges: proto.Uint32(8), PullBytesPerSec: proto.Uint64(1 << 20)}}
	require.True(t, proto.Equal(want, up.Tenant.Settings), "%v", up.Tenant.Settings)
	require.Equal(t, uint64(2), up.Tenant.SettingsGeneration)

	list, err := c.ListTenants(ctx, &metav1.ListTenantsRequest{})
	require.NoError(t, err)
	require.Len(t, list.Tenants, 1)
	require.True(t, proto.Equal(up.Tenant, list.Tenants[0]))
	require.Equal(t, "local:fleet", list.FleetDefaults.GetKekRef())
	require.Equal(t, uint32(4), list.FleetDefaults.GetQuotas().GetMaxConcurrentPulls())
	require.Equal(t, (24 * time.Hour).Milliseconds(), list.FleetDefaults.GetRetentionMs())
	require.Equal(t, (24 * time.Hour).Milliseconds(), list.FleetDeregisterGraceMs)

	// Registering again does not change the settings (use UpdateTenant).
	again, err := c.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 1,
		Settings: &metav1.TenantSettings{KekRef: proto.String("local:other")}})
	require.NoError(t, err)
	require.False(t, again.Created)
	require.True(t, proto.Equal(up.Tenant, again.Tenant))
}

// TestTenantRetention: the retention of retired ranges is each tenant's
// effective one (its own, else the fleet default).
func TestTenantRetention(t *testing.T) {
	env := newEnv(t)
	s, _ := env.leader(func(c *Config) { c.TenantDefaults.Retention = time.Hour })
	ctx := context.Background()
	_, err := env.cli.Put(ctx, etcdx.TenantKey(1), etcdx.Marshal(&metav1.TenantInfo{TenantId: 1, ClusterId: testCluster}))
	require.NoError(t, err)
	_, err = env.cli.Put(ctx, etcdx.TenantKey(2), etcdx.Marshal(&metav1.TenantInfo{TenantId: 2, ClusterId: testCluster,
		Settings: &metav1.TenantSettings{RetentionMs: proto.Int64(time.Minute.Milliseconds())}}))
	require.NoError(t, err)
	_, err = env.cli.Put(ctx, etcdx.TenantKey(3), etcdx.Marshal(&metav1.TenantInfo{TenantId: 3, ClusterId: testCluster,
		Settings: &metav1.TenantSettings{RetentionMs: proto.Int64(0)}}))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(s.state.tenants.list(etcdx.TenantsPrefix)) == 3 }, waitFor, pollEvery)
	now := time.Now()
	for tenant, want := range map[uint64]time.Duration{1: time.Hour, 2: time.Minute, 9: time.Hour} {
		cut, ok := s.retentionCutoff(tenant, now)
		require.True(t, ok)
		require.Equal(t, now.Add(-want), cut, "tenant %d", tenant)
	}
	_, ok := s.retentionCutoff(3, now)
	require.False(t, ok, "retention 0 keeps forever")
}

// offboardFixture is two registered tenants with stream tasks,
// checkpoints, publication notices and objects in the buffer and pool.
type offboardFixture struct {
	env *testEnv
	c   metav1.MetaServiceClient
}

func (f offboardFixture) populate(tenant uint64) {
	t, ctx := f.env.t, context.Background()
	f.env.register(f.c, tenant, 2, 101, 102)
	for store := uint64(1); store <= 2; store++ {
		require.NoError(t, f.env.buffer.Put(ctx, layout.StoreFileKey(testCluster, tenant, store, 1, tso(2000)), []byte("file")))
		_, err := f.c.NotifyStoreFile(ctx, &metav1.NotifyStoreFileRequest{ClusterId: testCluster, TenantId: tenant, StoreId: store, Seq: 1, MaxTs: tso(2000)})
		require.NoError(t, err)
		_, err = f.env.cli.Put(ctx, etcdx.CheckpointKey(tenant, store), etcdx.Marshal(&metav1.Checkpoint{Seq: 1}))
		require.NoError(t, err)
	}
	_, err := f.env.cli.Put(ctx, etcdx.PublishedKey(tenant, "s1"), "g/1")
	require.NoError(t, err)
	for i := range 30 { // more than one page of deletions with a small list limit
		require.NoError(t, f.env.pool.Put(ctx, fmt.Sprintf("%sextra/%03d", layout.PoolTenantPrefix(tenant), i), []byte("x")))
	}
	require.Eventually(t, func() bool { return len(f.env.streams(tenant)) == 2 }, waitFor, pollEvery)
}

// keysOf is every etcd key and object of a tenant (what offboarding must
// remove), found by its own rules, not by the code under test.
func (f offboardFixture) keysOf(tenant uint64) []string {
	t := f.env.t
	var out []string
	resp, err := f.env.cli.Get(context.Background(), etcdx.Root, clientv3.WithPrefix())
	require.NoError(t, err)
	id := fmt.Sprint(tenant)
	for _, kv := range resp.Kvs {
		parts := strings.Split(strings.TrimPrefix(string(kv.Key), etcdx.Root), "/")
		if len(parts) >= 2 && parts[0] != "workers" && parts[0] != "meta" && parts[1] == id {
			out = append(out, "etcd:"+string(kv.Key))
		}
	}
	for _, k := range objects(t, f.env.buffer) {
		if strings.Contains(k, fmt.Sprintf("/tenant-%d/", tenant)) {
			out = append(out, "buffer:"+k)
		}
	}
	for _, k := range objects(t, f.env.pool) {
		if strings.HasPrefix(k, layout.UsageArchiveRoot) {
			continue // the fleet's record of the tenant's usage: kept on purpose
		}
		if strings.Contains(k, fmt.Sprintf("tenant-%d/", tenant)) {
			out = append(out, "pool:"+k)
		}
	}
	sort.Strings(out)
	return out
}

// TestDeregisterTenant: the tenant's tasks go at once and nothing creates
// them again; calls about it are refused with the clear message; after
// the grace every key and object of the tenant is gone and the other
// tenant is untouched; a registration of the same id starts clean.
func TestDeregisterTenant(t *testing.T) {
	env := newEnv(t)
	s, c := env.leader(func(c *Config) { c.OffboardInterval = 50 * time.Millisecond })
	f := offboardFixture{env: env, c: c}
	ctx := context.Background()
	f.populate(1)
	f.populate(2)
	other := f.keysOf(2)
	require.NotEmpty(t, f.keysOf(1))

	_, err := c.DeregisterTenant(ctx, &metav1.DeregisterTenantRequest{TenantId: 1, GraceMs: proto.Int64(-1)})
	requireCode(t, err, codes.InvalidArgument, "grace_ms -1")
	_, err = c.DeregisterTenant(ctx, &metav1.DeregisterTenantRequest{TenantId: 7})
	requireCode(t, err, codes.NotFound, "tenant 7")

	grace := 1500 * time.Millisecond
	before := time.Now()
	resp, err := c.DeregisterTenant(ctx, &metav1.DeregisterTenantRequest{TenantId: 1, GraceMs: proto.Int64(grace.Milliseconds())})
	require.NoError(t, err)
	require.Equal(t, metav1.TenantState_TENANT_STATE_DEREGISTERED, resp.Tenant.State)
	require.InDelta(t, before.Add(grace).UnixMilli(), resp.Tenant.DeleteAfterUnixMs, 1000)
	require.Empty(t, env.streams(1), "stream tasks deleted at once")
	require.Empty(t, env.ranges(1), "range tasks deleted at once")
	again, err := c.DeregisterTenant(ctx, &metav1.DeregisterTenantRequest{TenantId: 1, GraceMs: proto.Int64(0)})
	require.NoError(t, err)
	require.Equal(t, resp.Tenant.DeleteAfterUnixMs, again.Tenant.DeleteAfterUnixMs, "a repeat changes nothing")

	require.Eventually(t, func() bool { return !s.tenantActive(1) }, waitFor, pollEvery)
	msg := "tenant 1 is deregistered since "
	_, err = c.NotifyStoreFile(ctx, &metav1.NotifyStoreFileRequest{ClusterId: testCluster, TenantId: 1, StoreId: 1, Seq: 2, MaxTs: tso(3000)})
	requireCode(t, err, codes.FailedPrecondition, msg)
	_, err = c.UpdateTenant(ctx, &metav1.UpdateTenantRequest{TenantId: 1, Reset_: []string{"kek_ref"}})
	requireCode(t, err, codes.FailedPrecondition, "its data is deleted after")
	_, err = c.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 1})
	requireCode(t, err, codes.FailedPrecondition, msg)
	// A notification coalesced before the deregistration, written after:
	// the offboard loop deletes the task it created.
	_, err = env.cli.Put(ctx, etcdx.StreamKey(1, 3), etcdx.Marshal(&metav1.StreamTask{ClusterId: testCluster, TenantId: 1, StoreId: 3}))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(env.streams(1)) == 0 }, waitFor, pollEvery)

	// During the grace the data stays.
	require.NotEmpty(t, objects(t, env.pool))
	_, err = env.pool.Get(ctx, layout.ManifestKey(1, 1))
	require.NoError(t, err, "deleted before the grace ended")

	require.Eventually(t, func() bool { return len(f.keysOf(1)) == 0 }, waitFor, 50*time.Millisecond, "left: %v", f.keysOf(1))
	require.GreaterOrEqual(t, time.Since(before), grace)
	require.Equal(t, other, f.keysOf(2), "the other tenant is untouched")
	require.GreaterOrEqual(t, testutil.ToFloat64(s.ob.deleted.WithLabelValues("pool")), 30.0)
	require.Equal(t, 1.0, testutil.ToFloat64(s.ob.tenants.WithLabelValues("deleted")))

	// Registered again: a new start, none of the old rows, tasks or files.
	env.writeSnapshot(1, tso(5000), 201)
	reg, err := c.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 1, InitialRanges: 1})
	require.NoError(t, err)
	require.True(t, reg.Created)
	require.Equal(t, tso(5000), reg.Tenant.SchemaSnapshotTs)
	require.Equal(t, metav1.TenantState_TENANT_STATE_ACTIVE, reg.Tenant.State)
	m, err := pool.LoadManifest(ctx, env.pool, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(1), m.Version)
	require.Len(t, m.Ranges, 1)
	require.Empty(t, env.streams(1))
	var extra []string
	for _, k := range f.keysOf(1) {
		if strings.Contains(k, "extra/") || strings.Contains(k, "checkpoints/") || strings.Contains(k, "published/") || strings.Contains(k, "store-") {
			extra = append(extra, k)
		}
	}
	require.Empty(t, extra, "old keys came back")
}

// failingStore fails every Delete after the first n.
type failingStore struct {
	objstore.Store
	left atomic.Int64
}

var errInjected = errors.New("injected delete failure")

func (s *failingStore) Delete(ctx context.Context, key string) error {
	if s.left.Add(-1) < 0 {
		return errInjected
	}
	return s.Store.Delete(ctx, key)
}

// TestOffboardResumesAfterCrash: a leader whose deletion fails midway (its
// pool refuses deletes, then it stops, as in a crash) leaves the tenant
// DELETING with part of its objects; the next leader finishes the job.
func TestOffboardResumesAfterCrash(t *testing.T) {
	env := newEnv(t)
	bad := &failingStore{Store: env.pool}
	bad.left.Store(10)
	cfg := testConfig()
	cfg.OffboardInterval = 50 * time.Millisecond
	first, err := New(cfg, Deps{Log: env.log, Registry: prometheus.NewRegistry(), Etcd: env.cli, Buffer: env.buffer, Pool: bad})
	require.NoError(t, err)
	require.NoError(t, first.Start(context.Background()))
	require.Eventually(t, func() bool { return first.IsLeader() && first.state.ready() }, waitFor, pollEvery)
	c := env.client(first)
	f := offboardFixture{env: env, c: c}
	f.populate(1)
	f.populate(2)
	other := f.keysOf(2)
	poolBefore := len(objects(t, env.pool))

	_, err = c.DeregisterTenant(context.Background(), &metav1.DeregisterTenantRequest{TenantId: 1, GraceMs: proto.Int64(0)})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return testutil.ToFloat64(first.ob.errors) >= 1 }, waitFor, pollEvery)
	info := &metav1.TenantInfo{}
	found, _, err := etcdx.GetProto(context.Background(), env.cli, etcdx.TenantKey(1), info)
	require.NoError(t, err)
	require.True(t, found, "the record goes last")
	require.Equal(t, metav1.TenantState_TENANT_STATE_DELETING, info.State)
	require.Less(t, len(objects(t, env.pool)), poolBefore, "part of the tenant was deleted")
	require.NotEmpty(t, f.keysOf(1), "part of the tenant is left")
	stopMeta(t, first)

	second := env.startMeta(func(c *Config) { c.OffboardInterval = 50 * time.Millisecond })
	require.Eventually(t, func() bool { return second.IsLeader() }, waitFor, pollEvery)
	require.Eventually(t, func() bool { return len(f.keysOf(1)) == 0 }, waitFor, 50*time.Millisecond, "left: %v", f.keysOf(1))
	require.Equal(t, other, f.keysOf(2))
	require.Equal(t, 1.0, testutil.ToFloat64(second.ob.tenants.WithLabelValues("deleted")))
}
