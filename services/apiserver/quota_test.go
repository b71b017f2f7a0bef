package apiserver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/verify"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// setQuotas writes a tenant's quotas into its record in etcd, as
// UpdateTenant does, and waits until the api-server's watcher has them.
func setQuotas(t *testing.T, cli *clientv3.Client, s *server, tenant uint64, q *metav1.TenantQuotas) {
	t.Helper()
	ctx := context.Background()
	info := &metav1.TenantInfo{}
	found, _, err := etcdx.GetProto(ctx, cli, etcdx.TenantKey(tenant), info)
	require.NoError(t, err)
	require.True(t, found)
	info.Settings = &metav1.TenantSettings{Quotas: q}
	info.SettingsGeneration++
	_, err = cli.Put(ctx, etcdx.TenantKey(tenant), etcdx.Marshal(info))
	require.NoError(t, err)
	eventually(t, "the api-server to see the new quotas", func() bool {
		return s.svc.quota.tenants.Settings(tenant).Generation == info.SettingsGeneration
	})
}

// TestMaxConcurrentPullsQuota: with tenant 1 at max_concurrent_pulls=1, a
// second pull of tenant 1 is RESOURCE_EXHAUSTED naming the tenant, the
// quota and the open pulls, while tenant 2's pulls are served; raising the
// quota in etcd lets the second pull in without a restart.
func TestMaxConcurrentPullsQuota(t *testing.T) {
	f := history(t)
	e := startRegistry(t, f, f.pool)
	s := startServerEtcd(t, f.pool, e.schema, e.cli)
	setQuotas(t, e.cli, s, 1, &metav1.TenantQuotas{MaxConcurrentPulls: proto.Uint32(1)})

	recv, err := s.open(pullCtx(t), req{kind: kindTenant, tenant: 1})
	require.NoError(t, err)
	_, err = recv() // admitted and streaming
	require.NoError(t, err)
	for _, kind := range []string{kindTenant, kindDB} {
		err = recvErr(t, s, req{kind: kind, tenant: 1, db: "test"})
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		require.Contains(t, status.Convert(err).Message(), "tenant 1 is at its quota of 1 concurrent pulls (max_concurrent_pulls; 1 open on this api-server)")
	}
	require.Equal(t, 2.0, s.counter(t, "tistream_apiserver_refused_total"))

	// The other tenant is not held by tenant 1's quota.
	recv2, err := s.open(pullCtx(t), req{kind: kindTenant, tenant: 2})
	require.NoError(t, err)
	two := uint64(2)
	check(t, f, collect(t, recv2, 2, f.final), verify.Options{Tenant: &two, From: f.snapTs[2]})

	setQuotas(t, e.cli, s, 1, &metav1.TenantQuotas{MaxConcurrentPulls: proto.Uint32(2)})
	recv3, err := s.open(pullCtx(t), req{kind: kindTenant, tenant: 1})
	require.NoError(t, err)
	one := uint64(1)
	check(t, f, collect(t, recv3, 1, f.final), verify.Options{Tenant: &one, From: f.snapTs[1]})
}

// TestPullBytesPerSecQuota: a tenant's pull bandwidth quota slows its
// response messages (the pull takes at least as long as the quota allows,
// and the wait is counted) without dropping or reordering anything: the
// slowed stream still verifies against the truth.
func TestPullBytesPerSecQuota(t *testing.T) {
	f := history(t)
	e := startRegistry(t, f, f.pool)
	s := startServerEtcd(t, f.pool, e.schema, e.cli, func(c *Config) { c.MaxBatchBytes = 16 << 10 })
	two := uint64(2)

	// Unthrottled first, to learn how many bytes the stream is.
	recv, err := s.open(pullCtx(t), req{kind: kindTenant, tenant: 2})
	require.NoError(t, err)
	check(t, f, collect(t, recv, 2, f.final), verify.Options{Tenant: &two, From: f.snapTs[2]})
	total := s.counter(t, "tistream_apiserver_sent_bytes_total")
	require.Greater(t, total, 0.0)
	require.Zero(t, s.counter(t, "tistream_apiserver_quota_wait_seconds_total"))

	// At a third of the stream per second, with one second of burst, the
	// stream needs about two seconds at least.
	rate := uint64(total / 3)
	setQuotas(t, e.cli, s, 2, &metav1.TenantQuotas{PullBytesPerSec: proto.Uint64(rate)})
	began := time.Now()
	recv, err = s.open(pullCtx(t), req{kind: kindTenant, tenant: 2})
	require.NoError(t, err)
	p := collect(t, recv, 2, f.final)
	took := time.Since(began)
	check(t, f, p, verify.Options{Tenant: &two, From: f.snapTs[2]})
	minimum := time.Duration((total - float64(rate) - float64(16<<10)) / float64(rate) * float64(time.Second))
	require.GreaterOrEqual(t, took, minimum, "%.0f bytes at %d B/s with a 1 s burst", total, rate)
	require.Greater(t, s.counter(t, "tistream_apiserver_quota_wait_seconds_total"), 0.0)
	t.Logf("%.0f bytes at a quota of %d B/s took %v (at least %v)", total, rate, took, minimum)
}
