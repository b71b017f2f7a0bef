package sorter

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/txnmatch"
)

// An idle range (only resolved ts, everything flushed) writes one snapshot
// and then none however long it stays idle; a prewrite waiting for its
// commit changes it (one snapshot), the commit flushed changes it back (one
// more), and idle again it writes nothing. Snapshot always writes.
func TestSnapshotIfChangedIdleRange(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	deps := Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(1 << 20), Owner: "t"}
	r, err := Create(ctx, deps, pool.RangeSpec{Tenant: 1, RangeID: 1, Start: []byte("a"), End: []byte("c"), OpenedAt: 10}, 1)
	require.NoError(t, err)
	seq := uint64(0)
	feed := func(evs ...route.Event) {
		t.Helper()
		seq++
		require.NoError(t, r.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: 1, Seq: seq}, Events: evs}))
		_, err := r.Flush(ctx)
		require.NoError(t, err)
	}
	snap := func() bool {
		t.Helper()
		_, wrote, err := r.SnapshotIfChanged(ctx)
		require.NoError(t, err)
		return wrote
	}
	written := func() int {
		t.Helper()
		objs, err := objstore.ListAll(ctx, store, layout.SorterSnapshotPrefix(1, 1), "")
		require.NoError(t, err)
		return len(objs)
	}
	ts := uint64(100)
	idle := func(rounds int) {
		t.Helper()
		for range rounds {
			ts += 10
			feed(resolved(1, 1, 1, ts))
			require.False(t, snap(), "idle at ts %d", ts)
		}
	}

	feed(start(1, 1, 1, "a", "c"), resolved(1, 1, 1, ts))
	require.True(t, snap(), "a range that never wrote a snapshot writes one")
	idle(100)
	require.Equal(t, 1, written(), "100 idle snapshot intervals cost no PUT")

	ts += 10
	startTs := ts + 5
	feed(row(cdcpb.Event_PREWRITE, "b", "x", startTs, 0), resolved(1, 1, 1, ts))
	require.True(t, snap(), "a prewrite waiting for its commit is a change")
	require.False(t, snap(), "and only once")
	ts += 10
	commitTs := ts
	feed(row(cdcpb.Event_COMMIT, "b", "", startTs, commitTs), resolved(1, 1, 1, ts+1))
	ts++
	require.Equal(t, ts, r.Published())
	require.True(t, snap(), "the commit published: the content changed back")
	idle(20)
	require.Equal(t, int64(3), r.Stats().Snapshots)
	require.Equal(t, 2, written(), "the two newest stay")
	require.Equal(t, int64(121), r.Stats().SnapshotsSkipped)

	_, err = r.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(4), r.Stats().Snapshots, "Snapshot writes whatever the content")
	require.Equal(t, 2, written())

	// Restored, the range knows its content: idle, it writes nothing.
	r.Close()
	r, err = Restore(ctx, Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(1 << 20), Owner: "t"}, 1, 1, 2)
	require.NoError(t, err)
	idle(5)
	require.Zero(t, r.Stats().Snapshots)
	require.Equal(t, 2, written())
	got, wm := published(t, store)
	require.Equal(t, []string{"b@" + strconv.FormatUint(commitTs, 10) + "=x"}, got)
	require.Equal(t, ts, wm)
}

// TestRestoreAfterSkippedSnapshots feeds a quiet simulated history (few
// rows over nine ranges, region splits, merges and leader moves, 2PC,
// rollbacks, long transactions) round by round, with SnapshotIfChanged
// after every round and a snapshot forced only once a range has gone
// maxSkip rounds without one (the sorter's bound). Every few rounds every
// range is lost and restored from its last snapshot written — often many
// rounds old — and fed again from its positions, as a dispatcher does from
// the checkpoint the written snapshots acknowledged. What the ranges
// publish, together, is exactly what one range fed everything publishes,
// and most snapshots were skipped.
func TestRestoreAfterSkippedSnapshots(t *testing.T) {
	ctx := context.Background()
	h := newHistoryWith(t, 11, func(c *sim.Config) {
		c.RowsPerSec = 40
		c.Duration = 8 * time.Second
		c.LargeTxnEvery = 0
	})
	want, _ := referenceOf(t, h, 200)

	store := objstore.NewMemory()
	f := newFleet(t, h, store, 4<<10)
	const tables, maxSkip, crashEvery = 8, 6, 7
	var rs []*Range
	bounds := []byte(nil)
	for i := range tables + 1 {
		end := []byte(nil)
		if i < tables {
			end = tableKey(int64(102 + i))
		}
		r, err := Create(ctx, f.deps, pool.RangeSpec{Tenant: 1, RangeID: uint64(i + 1), Start: bounds, End: end, OpenedAt: 1}, 1)
		require.NoError(t, err)
		rs = append(rs, r)
		bounds = end
	}
	f.use(rs...)
	epoch := uint64(1)
	since := map[uint64]int{} // rounds since a range's last snapshot written
	written, skipped, restores := 0, 0, 0
	n := h.rounds()
	for i := 1; i <= n; i++ {
		f.round(i, true)
		for _, id := range slices.Sorted(maps.Keys(f.ranges)) {
			r := f.ranges[id]
			var wrote bool
			var err error
			if since[id] >= maxSkip {
				_, err = r.Snapshot(ctx)
				wrote = true
			} else {
				_, wrote, err = r.SnapshotIfChanged(ctx)
			}
			require.NoError(t, err)
			if wrote {
				written++
				since[id] = 0
			} else {
				skipped++
				since[id]++
			}
		}
		if i%crashEvery == 0 && i < n {
			// Every range is lost: the next owner restores the last
			// snapshot written and is fed from its positions.
			epoch++
			var restored []*Range
			for _, id := range slices.Sorted(maps.Keys(f.ranges)) {
				f.ranges[id].Close()
				r, err := Restore(ctx, f.deps, 1, id, epoch)
				require.NoError(t, err)
				restored = append(restored, r)
				since[id] = 0
				restores++
			}
			f.use(restored...)
			f.catchUp(i)
			f.flush()
		}
	}
	t.Logf("%d rounds, %d ranges: %d snapshots written, %d skipped, %d restores", n, len(f.ranges), written, skipped, restores)
	require.Greater(t, skipped, written, "a quiet history skips most snapshots")

	var got []string
	for id := uint64(1); id <= tables+1; id++ {
		rows, wm := rows(t, store, id)
		got = append(got, rows...)
		require.Equal(t, h.final, wm, "range %d reaches the final watermark", id)
		// Nothing holds the watermark. Prewrites may be left: a replayed
		// transaction whose commit the previous owner had published loses
		// its commit (dropped at or below the published watermark) but
		// keeps its prewrite, after any restore that replays files, skipped
		// snapshots or not (reported in issue 14's notes).
		m := f.ranges[id].Matcher()
		require.Zero(t, m.PendingCommits, "range %d: no commit left waiting after the end", id)
		if left := m.Prewrites + int(m.SpilledPrewrites); left > 0 {
			t.Logf("range %d: %d replayed prewrites left in the matcher", id, left)
		}
	}
	slices.Sort(got)
	require.Equal(t, len(want), len(got))
	require.Equal(t, want, got)
}

// Apply settles the matcher's charges once a batch: after it the shared
// budget counts exactly what the range's matcher holds.
func TestApplySettlesTheMatcherBudget(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	budget := txnmatch.NewBudget(1 << 30)
	deps := Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: budget, Owner: "t"}
	r, err := Create(ctx, deps, pool.RangeSpec{Tenant: 1, RangeID: 1, Start: []byte("a"), End: []byte("c"), OpenedAt: 10}, 1)
	require.NoError(t, err)
	require.NoError(t, r.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: 1, Seq: 1},
		Events: []route.Event{start(1, 1, 1, "a", "c"), row(cdcpb.Event_PREWRITE, "b", "x", 105, 0), row(cdcpb.Event_COMMIT, "bb", "", 107, 108)}}))
	held := r.Matcher().Bytes
	require.Positive(t, held, "a prewrite and a commit wait")
	require.Equal(t, held, budget.Used())
	require.NoError(t, r.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: 1, Seq: 2},
		Events: []route.Event{row(cdcpb.Event_COMMIT, "b", "", 105, 110), row(cdcpb.Event_PREWRITE, "bb", "y", 107, 0)}}))
	require.Zero(t, r.Matcher().Bytes, "both matched")
	require.Zero(t, budget.Used())
}
