package metaserver

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/usage"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// sizeUnder sums the sizes of the objects under prefix.
func sizeUnder(t *testing.T, s objstore.Store, prefix string) uint64 {
	objs, err := objstore.ListAll(context.Background(), s, prefix, "")
	require.NoError(t, err)
	n := uint64(0)
	for _, o := range objs {
		n += uint64(o.Size)
	}
	return n
}

// GetUsage adds up the checkpoints' ingest counters, the processes' usage
// records and the leader's stored-bytes samples; the rollup of a closed
// hour changes none of the figures, only makes them final.
func TestGetUsage(t *testing.T) {
	env := newEnv(t)
	s, c := env.leader(func(c *Config) { c.Usage.SampleInterval = time.Hour }) // rounds run by hand
	ctx := context.Background()
	env.register(c, 1, 1, 101)
	env.register(c, 2, 1, 101)
	putCkpt := func(tenant, store, rows, bytes uint64) {
		_, err := env.cli.Put(ctx, etcdx.CheckpointKey(tenant, store), etcdx.Marshal(&metav1.Checkpoint{Seq: 1, IngestedRows: rows, IngestedBytes: bytes}))
		require.NoError(t, err)
	}
	putCkpt(1, 1, 10, 100)
	putCkpt(1, 2, 20, 200)
	putCkpt(2, 1, 1000, 1) // another tenant's

	// Stored objects of each class.
	require.NoError(t, env.pool.Put(ctx, layout.DataFileKey(1, 1, 5, 1), make([]byte, 5)))
	require.NoError(t, env.pool.Put(ctx, layout.SorterSnapshotKey(1, 1, 1, 1), make([]byte, 8)))
	require.NoError(t, env.pool.Put(ctx, layout.SchemaHistoryPrefix(1)+layout.Pad(1), make([]byte, 3)))
	require.NoError(t, env.buffer.Put(ctx, layout.StoreFileKey(testCluster, 1, 1, 1, 9), make([]byte, 11)))
	buffer := sizeUnder(t, env.buffer, layout.TenantBufferPrefix(testCluster, 1))

	// An api-server's usage, flushed.
	m := usage.NewMeter(prometheus.NewRegistry(), usage.MeterOptions{})
	m.Served(1, 5, 500)
	m.Served(2, 7, 700)
	require.NoError(t, usage.NewFlusher(m, env.pool, "api-server-x", env.log).Flush(ctx))

	// A sampling round covers the tenants the leader's mirror knows (a
	// tenant registered a moment ago is sampled by the next round).
	require.Eventually(t, func() bool { return s.tenantActive(1) && s.tenantActive(2) }, waitFor, pollEvery)
	s.usageRound(s.leading())
	resp, err := c.GetUsage(ctx, &metav1.GetUsageRequest{TenantId: 1, FromUnixMs: time.Now().Add(-time.Hour).UnixMilli()})
	require.NoError(t, err)
	tot := resp.Total
	require.Equal(t, uint64(30), tot.IngestedRows)
	require.Equal(t, uint64(300), tot.IngestedBytes)
	require.Equal(t, uint64(5), tot.ServedRows)
	require.Equal(t, uint64(500), tot.ServedBytes)
	pool := sizeUnder(t, env.pool, layout.PoolTenantPrefix(1)) - sizeUnder(t, env.pool, layout.PoolSchemaSnapshotPrefix(1)) -
		sizeUnder(t, env.pool, layout.UsagePrefix(1)) // the manifest and the data file
	require.Greater(t, pool, uint64(5))
	require.Equal(t, map[string]uint64{classPool: pool, classSnapshot: 8, classSchema: 3 + sizeUnder(t, env.pool, layout.PoolSchemaSnapshotPrefix(1)), classBuffer: buffer}, tot.StoredBytes)
	require.Len(t, resp.Hours, 1)
	require.False(t, resp.Hours[0].Final)

	// The open hour follows the checkpoints live.
	putCkpt(1, 1, 15, 150)
	resp, err = c.GetUsage(ctx, &metav1.GetUsageRequest{TenantId: 1})
	require.NoError(t, err)
	require.Equal(t, uint64(35), resp.Total.IngestedRows)

	// Rolled up once the hour is over: the same figures, final.
	_, err = usage.Rollup(ctx, env.pool, 1, time.Now().Add(2*time.Hour), s.cfg.Usage.RollupGrace)
	require.NoError(t, err)
	resp, err = c.GetUsage(ctx, &metav1.GetUsageRequest{TenantId: 1, FromUnixMs: time.Now().Add(-time.Hour).UnixMilli()})
	require.NoError(t, err)
	require.True(t, resp.Hours[0].Final)
	require.Equal(t, uint64(30), resp.Hours[0].Counts.IngestedRows, "the hour ends at its last sample")
	require.Equal(t, uint64(5), resp.Hours[0].Counts.ServedRows)
	// (The rollup ran early, as if the hour were over: the live totals,
	// which fall in the same hour, are not added to a final hour.)
	require.Equal(t, uint64(30), resp.Total.IngestedRows)

	_, err = c.GetUsage(ctx, &metav1.GetUsageRequest{})
	requireCode(t, err, codes.InvalidArgument, "tenant_id")
	_, err = c.GetUsage(ctx, &metav1.GetUsageRequest{TenantId: 9})
	requireCode(t, err, codes.NotFound, "not registered")
	_, err = c.GetUsage(ctx, &metav1.GetUsageRequest{TenantId: 1, FromUnixMs: 10, ToUnixMs: 5})
	requireCode(t, err, codes.InvalidArgument, "after")
}
