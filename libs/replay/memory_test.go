package replay_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pull"
	"github.com/tistream/tistream/libs/replay"
	"github.com/tistream/tistream/libs/sim/simtest"
	"github.com/tistream/tistream/libs/verify"
)

// TestReplayTinyBufferMemory runs a chaos history through the ordering core
// with a sorted-row budget of 64 KiB, so that ranges move to Pebble and back
// all the time — while they flush, take large transactions, are snapshotted
// and restored — and checks the pulled streams against the truth.
func TestReplayTinyBufferMemory(t *testing.T) {
	cfg := history(8)
	cfg.EnableChaos()
	buffer, truthFile, st := simtest.Run(t, cfg)
	poolStore := objstore.NewMemory()
	sum, err := replay.Run(context.Background(), replay.Config{
		Buffer: buffer, Pool: poolStore, Cluster: cfg.ClusterID, Ranges: 3, WorkDir: t.TempDir(),
		Random: true, Seed: 8, RestoreChance: 0.1, BufferMemory: 64 << 10,
	})
	require.NoError(t, err)
	require.Positive(t, sum.BufferSpills, "ranges moved to Pebble")
	require.Positive(t, sum.Restores)
	for tenant := uint64(1); tenant <= uint64(cfg.Tenants); tenant++ {
		require.Equal(t, st.FinalResolvedTs, sum.Watermarks[tenant], "tenant %d reaches the final watermark", tenant)
		ten := tenant
		check(t, truthFile, pullJSONL(t, poolStore, pull.Request{Tenant: tenant}), verify.Options{Tenant: &ten})
	}
}
