package metaserver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/tidbcodec"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// setMaxRanges writes a tenant's max_ranges quota into its record, as
// UpdateTenant does, and waits for the leader's mirror to have it.
func setMaxRanges(t *testing.T, env *testEnv, s *Service, tenant uint64, n uint32) {
	t.Helper()
	ctx := context.Background()
	info := &metav1.TenantInfo{}
	found, _, err := etcdx.GetProto(ctx, env.cli, etcdx.TenantKey(tenant), info)
	require.NoError(t, err)
	require.True(t, found)
	info.Settings = &metav1.TenantSettings{Quotas: &metav1.TenantQuotas{MaxRanges: proto.Uint32(n)}}
	info.SettingsGeneration++
	_, err = env.cli.Put(ctx, etcdx.TenantKey(tenant), etcdx.Marshal(info))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.effective(tenant).Quotas.MaxRanges == n }, waitFor, pollEvery)
}

// TestMaxRangesQuota: a tenant's max_ranges quota takes precedence over
// --max-ranges-per-tenant, lower or higher, and applies without a restart;
// a split over it is RESOURCE_EXHAUSTED naming the quota.
func TestMaxRangesQuota(t *testing.T) {
	env := newEnv(t)
	s, c := env.leader(func(c *Config) { c.MaxRangesPerTenant = 4 })
	ctx := context.Background()
	env.register(c, 1, 3, 101, 102, 103, 104) // ranges 1 [, t101) 2 [t101, t103) 3 [t103, )

	setMaxRanges(t, env, s, 1, 3)
	_, err := c.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 1, RangeId: 2, SplitKey: tidbcodec.TablePrefix(102)})
	requireCode(t, err, codes.ResourceExhausted, "tenant 1 has 3 active ranges, the most it may have (its max_ranges quota is 3)")
	require.Equal(t, 1.0, refusedCount(s, "SplitRange", reasonTooManyRanges))

	// Above the fleet bound: the tenant's quota wins.
	setMaxRanges(t, env, s, 1, 5)
	_, err = c.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 1, RangeId: 2, SplitKey: tidbcodec.TablePrefix(102)})
	require.NoError(t, err)
	_, err = c.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 1, RangeId: 3, SplitKey: tidbcodec.TablePrefix(104)})
	require.NoError(t, err, "5 active ranges are within the quota of 5, above --max-ranges-per-tenant=4")
	limit, by := s.rangeLimit(1)
	require.Equal(t, 5, limit, by)

	// No quota (0 = unlimited): --max-ranges-per-tenant bounds the tenant.
	setMaxRanges(t, env, s, 1, 0)
	limit, by = s.rangeLimit(1)
	require.Equal(t, 4, limit)
	require.Equal(t, "--max-ranges-per-tenant=4", by)
}
