package metaserver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	"google.golang.org/grpc/codes"
)

func TestRegisterTenant(t *testing.T) {
	env := newEnv(t)
	_, c := env.leader()
	ctx := context.Background()

	bad := []struct {
		name     string
		req      *metav1.RegisterTenantRequest
		code     codes.Code
		contains string
	}{
		{"no cluster", &metav1.RegisterTenantRequest{TenantId: 1}, codes.InvalidArgument, "cluster_id"},
		{"no tenant", &metav1.RegisterTenantRequest{ClusterId: testCluster}, codes.InvalidArgument, "tenant_id"},
		{"too many ranges", &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 1, InitialRanges: 101}, codes.InvalidArgument, "initial_ranges"},
		{"no snapshot", &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 1}, codes.FailedPrecondition, "no schema snapshot"},
	}
	for _, tc := range bad {
		_, err := c.RegisterTenant(ctx, tc.req)
		requireCode(t, err, tc.code, tc.contains)
	}
	require.Empty(t, env.dump())
	require.Empty(t, objects(t, env.pool))

	env.writeSnapshot(1, tso(1000), 103, 101, 102, 105, 104, 106)
	resp, err := c.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 1, InitialRanges: 3})
	require.NoError(t, err)
	require.True(t, resp.Created)
	require.Equal(t, tso(1000), resp.Tenant.SchemaSnapshotTs)
	require.Equal(t, uint64(testCluster), resp.Tenant.ClusterId)

	// Manifest version 1: three ranges split at table boundaries, opened at
	// the snapshot; the snapshot is copied into the pool.
	m, err := pool.LoadManifest(ctx, env.pool, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(1), m.Version)
	require.Equal(t, uint64(4), m.NextRangeId)
	require.Len(t, m.Ranges, 3)
	require.Equal(t, tidbcodec.TablePrefix(101), m.Ranges[0].EndKey, "the meta keys' range")
	require.Equal(t, tidbcodec.TablePrefix(104), m.Ranges[1].EndKey)
	_, err = env.pool.Get(ctx, layout.PoolSchemaSnapshotKey(1, tso(1000)))
	require.NoError(t, err)
	ranges := env.ranges(1)
	require.Len(t, ranges, 3)
	for _, d := range m.Ranges {
		r := ranges[d.RangeId]
		require.Equal(t, d.StartKey, r.StartKey)
		require.Equal(t, d.EndKey, r.EndKey)
		require.Equal(t, tso(1000), r.OpenedAtTs)
		require.Equal(t, metav1.RangeTask_STATE_ACTIVE, r.State)
		require.Empty(t, r.Owner)
		require.Zero(t, r.Epoch)
	}

	// Again: nothing changes.
	before := env.dump()
	resp2, err := c.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 1, InitialRanges: 5})
	require.NoError(t, err)
	require.False(t, resp2.Created)
	require.Equal(t, resp.Tenant.RegisteredUnixMs, resp2.Tenant.RegisteredUnixMs)
	require.Equal(t, before, env.dump())

	// The same tenant id from another cluster is refused.
	_, err = c.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: 2, TenantId: 1})
	requireCode(t, err, codes.FailedPrecondition, "registered for cluster 1")
	require.Equal(t, before, env.dump())

	list, err := c.ListTenants(ctx, &metav1.ListTenantsRequest{})
	require.NoError(t, err)
	require.Len(t, list.Tenants, 1)
}

// A registration that crashed after publishing the manifest is completed
// from the manifest, whatever the retry asks for.
func TestRegisterTenantAfterCrash(t *testing.T) {
	env := newEnv(t)
	_, c := env.leader()
	ctx := context.Background()
	env.writeSnapshot(7, tso(2000), 701, 702, 703)
	data, err := env.buffer.Get(ctx, layout.SchemaSnapshotKey(testCluster, 7, tso(2000)))
	require.NoError(t, err)
	snap, err := schemasnap.Decode("snap", data)
	require.NoError(t, err)
	m, err := pool.InitialManifest(7, snap, 2, time.Now())
	require.NoError(t, err)
	require.NoError(t, pool.PublishManifest(ctx, env.pool, m))

	resp, err := c.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 7, InitialRanges: 3})
	require.NoError(t, err)
	require.True(t, resp.Created)
	ranges := env.ranges(7)
	require.Len(t, ranges, 2)
	require.Equal(t, tidbcodec.TablePrefix(701), ranges[1].EndKey, "the meta keys' range")
	require.Empty(t, ranges[2].EndKey)
	latest, err := pool.LoadManifest(ctx, env.pool, 7)
	require.NoError(t, err)
	require.Equal(t, uint64(1), latest.Version)
	require.Equal(t, formatv1.RangeDescriptor_STATE_ACTIVE, latest.Ranges[1].State)
}
