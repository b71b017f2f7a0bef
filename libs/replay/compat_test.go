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

// TestReplayBothFormatVersions: the ordering core pulls the same stream
// from store change files of format version 1 written before version 2
// existed (simtest.Version1Fixture) and from the simulator's format version
// 2 files of the same history (full leader lists every other file, deltas
// between, LeaderResolvedTs records), read in random store order with
// ranges restored from stale snapshots and fed again from the middle of a
// stream, where a delta header reads its base's header; both verify against
// the truth.
func TestReplayBothFormatVersions(t *testing.T) {
	v1, cfg := simtest.Version1Fixture(t)
	cfg.FullListEvery = 2
	v2, truthFile, _ := simtest.Run(t, cfg)
	var pulls []string
	for _, buffer := range []objstore.Store{v1, v2} {
		pool := objstore.NewMemory()
		sum, err := replay.Run(context.Background(), replay.Config{Buffer: buffer, Pool: pool, Cluster: 1, Ranges: 3,
			WorkDir: t.TempDir(), Random: true, Seed: 3, RestoreChance: 0.2})
		require.NoError(t, err)
		require.Positive(t, sum.Restores)
		pulled := pullJSONL(t, pool, pull.Request{Tenant: 1})
		check(t, truthFile, pulled, verify.Options{})
		pulls = append(pulls, string(pulled))
	}
	require.Equal(t, pulls[0], pulls[1], "the two formats pull the same stream")
}
