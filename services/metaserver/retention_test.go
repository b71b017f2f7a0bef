package metaserver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/tidbcodec"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// A range retired longer ago than the retention window is deleted: dropped
// from the manifest, its pool objects and snapshots deleted, its task
// removed; readers from before its successors opened get ErrCompacted.
// The window counts from when the range was sealed (its SEAL entry was
// published), not from its seal watermark: range 1 is sealed at a
// watermark a year old, yet stays until the window has passed since the
// seal. Ranges retired more recently stay.
func TestRetiredRangesExpire(t *testing.T) {
	const retention = 3 * time.Second
	env := newEnv(t)
	s := env.startMeta(func(c *Config) { c.TenantDefaults.Retention, c.RetentionInterval = retention, 30*time.Millisecond })
	require.Eventually(t, func() bool { return s.IsLeader() && s.state.ready() }, waitFor, pollEvery)
	c := env.client(s)
	ctx := context.Background()
	env.register(c, 1, 1, 101, 102, 103, 104)
	env.sorter("s1")
	require.Eventually(t, func() bool { return env.owners(1)[1] == "s1@1" }, waitFor, pollEvery)
	g1 := env.group("s1")
	nowMs := uint64(time.Now().UnixMilli())
	W1, W2 := tso(nowMs-365*24*3600_000), tso(nowMs-10*60_000) // a year and 10 min ago

	// Range 1 is split at W1.
	w1, err := pool.CreateRange(ctx, g1, pool.RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: tso(1000)}, 1)
	require.NoError(t, err)
	require.NoError(t, env.pool.Put(ctx, layout.SorterSnapshotKey(1, 1, 1, 1), []byte("snapshot")))
	split, err := c.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 1, RangeId: 1, SplitKey: tidbcodec.TablePrefix(103)})
	require.NoError(t, err)
	_, err = w1.Flush(ctx, W1, nil)
	require.NoError(t, err)
	ranges := env.ranges(1)
	for _, id := range split.NewRangeIds {
		r := ranges[id]
		_, err := pool.CreateRange(ctx, g1, pool.RangeSpec{Tenant: 1, RangeID: id, Start: r.StartKey, End: r.EndKey,
			OpenedAt: W1, Parents: []uint64{1}}, ranges[1].Epoch)
		require.NoError(t, err)
	}
	require.NoError(t, w1.Seal(ctx, split.NewRangeIds))
	sealed := time.Now()

	// Just sealed: it stays, whatever its seal watermark says.
	require.Eventually(t, func() bool { return env.ranges(1)[1].State == metav1.RangeTask_STATE_RETIRED }, waitFor, pollEvery)
	time.Sleep(300 * time.Millisecond) // several retention rounds
	require.Less(t, time.Since(sealed), retention, "the test ran too slowly to check this")
	require.Contains(t, env.ranges(1), uint64(1), "range 1 was deleted as soon as it was sealed")
	m, err := pool.LoadManifest(ctx, env.pool, 1)
	require.NoError(t, err)
	require.Contains(t, descriptors(m), uint64(1))
	_, err = pool.NewPuller(ctx, env.pool, 1, nil, nil, nil, tso(1000)+1)
	require.NoError(t, err, "its rows are still readable")

	// Once the window has passed since the seal, it goes.
	require.Eventually(t, func() bool { _, ok := env.ranges(1)[1]; return !ok }, waitFor, pollEvery, "range 1 was not deleted")
	require.GreaterOrEqual(t, time.Since(sealed), retention)
	m, err = pool.LoadManifest(ctx, env.pool, 1)
	require.NoError(t, err)
	d := descriptors(m)
	require.NotContains(t, d, uint64(1))
	require.Contains(t, d, uint64(2))
	require.Contains(t, d, uint64(3))
	for _, k := range objects(t, env.pool) {
		require.NotContains(t, k, "range-1/", "object %s of range 1 left", k)
	}
	_, err = pool.NewPuller(ctx, env.pool, 1, nil, nil, nil, W1)
	require.ErrorIs(t, err, pool.ErrCompacted)
	oldest, err := pool.OldestStart(ctx, env.pool, 1, nil, nil)
	require.NoError(t, err)
	require.Equal(t, W1+1, oldest)
	_, err = pool.NewPuller(ctx, env.pool, 1, nil, nil, nil, W1+1)
	require.NoError(t, err)
	list, err := c.ListTasks(ctx, &metav1.ListTasksRequest{TenantId: 1})
	require.NoError(t, err)
	require.Len(t, list.Ranges, 2)

	// Ranges 2 and 3 merge at W2 (within the retention): they stay.
	ranges = env.ranges(1)
	_, err = c.MergeRanges(ctx, &metav1.MergeRangesRequest{TenantId: 1, LeftRangeId: 2, RightRangeId: 3})
	require.NoError(t, err)
	require.Eventually(t, func() bool { r := env.ranges(1); return r[4] != nil && r[2].State == metav1.RangeTask_STATE_SEALING }, waitFor, pollEvery)
	ranges = env.ranges(1)
	var writers []*pool.RangeWriter
	for _, id := range []uint64{2, 3} {
		w, err := pool.OpenRange(ctx, g1, 1, id, ranges[id].Epoch)
		require.NoError(t, err)
		_, err = w.Flush(ctx, W2, nil)
		require.NoError(t, err)
		writers = append(writers, w)
	}
	_, err = pool.CreateRange(ctx, g1, pool.RangeSpec{Tenant: 1, RangeID: 4, OpenedAt: W2, Parents: []uint64{2, 3}}, ranges[2].Epoch)
	require.NoError(t, err)
	for _, w := range writers {
		require.NoError(t, w.Seal(ctx, []uint64{4}))
	}
	require.Eventually(t, func() bool { return env.ranges(1)[2].State == metav1.RangeTask_STATE_RETIRED }, waitFor, pollEvery)
	time.Sleep(300 * time.Millisecond) // several retention rounds
	ranges = env.ranges(1)
	require.Len(t, ranges, 3)
	m, err = pool.LoadManifest(ctx, env.pool, 1)
	require.NoError(t, err)
	require.Len(t, m.Ranges, 3)
	_, err = pool.NewPuller(ctx, env.pool, 1, nil, nil, nil, W1+1)
	require.NoError(t, err, "the retained ranges read from after range 1")
}

// A group whose sorter is gone is deleted once everything in it expired and
// no range's open segment names it: range 1 was published in group A, then
// taken over into group B; after the window, A goes (readers from inside
// it get ErrCompacted) and B, which range 1's log still names, stays
// although it published nothing for as long.
func TestExpiredGroupsOfGoneSortersAreDeleted(t *testing.T) {
	const retention = 2 * time.Second
	env := newEnv(t)
	s := env.startMeta(func(c *Config) { c.TenantDefaults.Retention, c.RetentionInterval = retention, 30*time.Millisecond })
	require.Eventually(t, func() bool { return s.IsLeader() && s.state.ready() }, waitFor, pollEvery)
	c := env.client(s)
	ctx := context.Background()
	env.register(c, 1, 1, 101, 102)
	nowMs := uint64(time.Now().UnixMilli())
	gA, gB := env.group("a"), env.group("b")
	w, err := pool.CreateRange(ctx, gA, pool.RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: tso(1000)}, 1)
	require.NoError(t, err)
	for i := uint64(1); i <= 5; i++ {
		_, err = w.Flush(ctx, tso(nowMs+i), nil)
		require.NoError(t, err)
	}
	gA.Close() // its sorter is gone
	wb, err := pool.OpenRange(ctx, gB, 1, 1, 2)
	require.NoError(t, err)
	require.Equal(t, tso(nowMs+5), wb.Watermark())
	_, err = wb.Flush(ctx, tso(nowMs+6), nil)
	require.NoError(t, err)
	groups, err := pool.ListGroups(ctx, env.pool, 1)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{gA.ID(), gB.ID()}, groups)

	require.Eventually(t, func() bool {
		groups, err := pool.ListGroups(ctx, env.pool, 1)
		require.NoError(t, err)
		return len(groups) == 1 && groups[0] == gB.ID()
	}, waitFor+2*retention, pollEvery, "group A was not deleted")
	for _, k := range objects(t, env.pool) {
		require.NotContains(t, k, "group-"+gA.ID()+"/", "object %s of group A left", k)
	}
	_, err = pool.NewPuller(ctx, env.pool, 1, nil, nil, nil, tso(nowMs+3))
	require.ErrorIs(t, err, pool.ErrCompacted, "its rows were in group A")
	p, err := pool.NewPuller(ctx, env.pool, 1, nil, nil, nil, tso(nowMs+6))
	require.NoError(t, err)
	_, resolved, _, err := p.Poll(ctx)
	require.NoError(t, err)
	require.Equal(t, tso(nowMs+6), resolved)
	wm, err := pool.PublishedWatermark(ctx, env.pool, 1, 1)
	require.NoError(t, err)
	require.Equal(t, tso(nowMs+6), wm)
}
