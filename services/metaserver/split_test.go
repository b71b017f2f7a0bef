package metaserver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Split and merge at the meta-server level; the test plays the sorter's
// part (flush, children's OPEN entries, SEAL).
func TestSplitAndMerge(t *testing.T) {
	env := newEnv(t)
	_, c := env.leader()
	ctx := context.Background()
	env.register(c, 1, 1, 101, 102, 103, 104)
	env.sorter("s1")
	require.Eventually(t, func() bool { return env.owners(1)[1] == "s1@1" }, waitFor, pollEvery)
	g1 := env.group("s1")

	// The sorter creates range 1 and publishes a watermark.
	w1, err := pool.CreateRange(ctx, g1, pool.RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: tso(1000)}, 1)
	require.NoError(t, err)
	_, err = w1.Flush(ctx, tso(1500), nil)
	require.NoError(t, err)

	// Split range 1 at table 103.
	k := tidbcodec.TablePrefix(103)
	split, err := c.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 1, RangeId: 1, SplitKey: k})
	require.NoError(t, err)
	require.Equal(t, []uint64{2, 3}, split.NewRangeIds)
	ranges := env.ranges(1)
	require.Equal(t, metav1.RangeTask_STATE_SEALING, ranges[1].State)
	require.Equal(t, []uint64{2, 3}, ranges[1].SuccessorRangeIds)
	require.Equal(t, k, ranges[2].EndKey)
	require.Equal(t, k, ranges[3].StartKey)
	require.Empty(t, ranges[3].EndKey)
	require.Equal(t, []uint64{1}, ranges[2].ParentRangeIds)

	// The sorter's side: flush to W, open the children at W, seal.
	W := tso(2000)
	_, err = w1.Flush(ctx, W, nil)
	require.NoError(t, err)
	for _, id := range split.NewRangeIds {
		r := ranges[id]
		_, err := pool.CreateRange(ctx, g1, pool.RangeSpec{Tenant: 1, RangeID: id, Start: r.StartKey, End: r.EndKey,
			OpenedAt: W, Parents: []uint64{1}}, ranges[1].Epoch)
		require.NoError(t, err)
	}
	// Until the SEAL, the children wait: no owner.
	require.Equal(t, "@0", env.owners(1)[2])
	require.NoError(t, w1.Seal(ctx, split.NewRangeIds))

	// The meta-server publishes manifest 2, retires range 1 and gives the
	// children to range 1's sorter.
	require.Eventually(t, func() bool { return env.ranges(1)[1].State == metav1.RangeTask_STATE_RETIRED }, waitFor, pollEvery)
	m, err := pool.LoadManifest(ctx, env.pool, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(2), m.Version)
	require.Equal(t, uint64(4), m.NextRangeId)
	d := descriptors(m)
	require.Equal(t, formatv1.RangeDescriptor_STATE_RETIRED, d[1].State)
	require.Equal(t, W, d[1].RetiredAtTs)
	require.Equal(t, []uint64{2, 3}, d[1].SuccessorRangeIds)
	for _, id := range []uint64{2, 3} {
		require.Equal(t, formatv1.RangeDescriptor_STATE_ACTIVE, d[id].State)
		require.Equal(t, W, d[id].OpenedAtTs)
		require.Equal(t, []uint64{1}, d[id].ParentRangeIds)
	}
	ranges = env.ranges(1)
	require.Equal(t, W, ranges[1].SealWatermark)
	for _, id := range []uint64{2, 3} {
		require.Equal(t, "s1", ranges[id].Owner)
		require.Equal(t, uint64(1), ranges[id].Epoch)
		require.Equal(t, W, ranges[id].OpenedAtTs)
	}

	// ListTasks: watermarks from the pool.
	list, err := c.ListTasks(ctx, &metav1.ListTasksRequest{TenantId: 1})
	require.NoError(t, err)
	require.Len(t, list.Ranges, 3)
	for _, rs := range list.Ranges {
		require.Equal(t, W, rs.PublishedWatermark, "range %d", rs.Task.RangeId)
	}
	require.Equal(t, "s1.sorter:7200", list.Ranges[1].OwnerAddr)
	require.Greater(t, list.Ranges[1].LagSeconds, 0.0)
	require.Zero(t, list.Ranges[0].LagSeconds, "a retired range does not lag")

	// A second sorter takes one child by balancing; merging them moves it
	// back to the left range's sorter first.
	env.sorter("s2")
	require.Eventually(t, func() bool { return env.owners(1)[3] == "s2@2" }, waitFor, pollEvery)
	merge, err := c.MergeRanges(ctx, &metav1.MergeRangesRequest{TenantId: 1, LeftRangeId: 2, RightRangeId: 3})
	require.NoError(t, err)
	require.Equal(t, uint64(4), merge.NewRangeId)
	ranges = env.ranges(1)
	for _, id := range []uint64{2, 3} {
		require.Equal(t, metav1.RangeTask_STATE_SEALING, ranges[id].State)
		require.Equal(t, []uint64{4}, ranges[id].SuccessorRangeIds)
		require.Equal(t, "s1", ranges[id].Owner)
	}
	require.Equal(t, uint64(3), ranges[3].Epoch)
	require.Equal(t, []uint64{2, 3}, ranges[4].ParentRangeIds)
	require.Nil(t, ranges[4].StartKey)
	require.Empty(t, ranges[4].EndKey)

	// The sorter's side of the merge: both flushed to W2, C opened, both sealed.
	W2 := tso(3000)
	var writers []*pool.RangeWriter
	for _, id := range []uint64{2, 3} {
		w, err := pool.OpenRange(ctx, g1, 1, id, ranges[id].Epoch)
		require.NoError(t, err)
		_, err = w.Flush(ctx, W2, nil)
		require.NoError(t, err)
		writers = append(writers, w)
	}
	_, err = pool.CreateRange(ctx, g1, pool.RangeSpec{Tenant: 1, RangeID: 4, OpenedAt: W2, Parents: []uint64{2, 3}}, 3)
	require.NoError(t, err)
	require.NoError(t, writers[0].Seal(ctx, []uint64{4}))
	// Half sealed: nothing happens yet.
	require.Equal(t, metav1.RangeTask_STATE_SEALING, env.ranges(1)[2].State)
	require.NoError(t, writers[1].Seal(ctx, []uint64{4}))

	require.Eventually(t, func() bool { return env.ranges(1)[4].Owner == "s1" }, waitFor, pollEvery)
	ranges = env.ranges(1)
	require.Equal(t, uint64(3), ranges[4].Epoch, "the child starts at its parents' highest epoch")
	require.Equal(t, W2, ranges[4].OpenedAtTs)
	for _, id := range []uint64{2, 3} {
		require.Equal(t, metav1.RangeTask_STATE_RETIRED, ranges[id].State)
		require.Equal(t, W2, ranges[id].SealWatermark)
	}
	m, err = pool.LoadManifest(ctx, env.pool, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(3), m.Version)
	require.Equal(t, uint64(5), m.NextRangeId)
	d = descriptors(m)
	require.Equal(t, formatv1.RangeDescriptor_STATE_ACTIVE, d[4].State)
	require.Equal(t, W2, d[4].OpenedAtTs)
	require.Equal(t, W2, d[2].RetiredAtTs)
	require.Equal(t, W2, d[3].RetiredAtTs)

	// Its owner can take the child over at the assigned epoch.
	_, err = pool.OpenRange(ctx, g1, 1, 4, ranges[4].Epoch)
	require.NoError(t, err)
}

func descriptors(m *formatv1.Manifest) map[uint64]*formatv1.RangeDescriptor {
	out := map[uint64]*formatv1.RangeDescriptor{}
	for _, d := range m.Ranges {
		out[d.RangeId] = d
	}
	return out
}
