package sorter

import (
	"context"
	"fmt"
	"testing"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/txnmatch"
)

// A commit re-uploaded by another store waits in the matcher (its row was
// matched already) when the snapshot is taken; the old owner then finds it
// a duplicate, drops it and publishes past it. The new owner restores it
// from the snapshot, but the row it duplicates is gone from the buffer
// (published), so nothing can resolve it: it must be dropped at restore,
// or it holds the range below its published watermark forever.
func TestRestoreDropsPendingCommitsBelowPublished(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	newDeps := func() Deps {
		return Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(1 << 20), Owner: "t"}
	}
	r, err := Create(ctx, newDeps(), pool.RangeSpec{Tenant: 1, RangeID: 1, Start: []byte("a"), End: []byte("c"), OpenedAt: 10}, 1)
	require.NoError(t, err)
	apply := func(r *Range, store, seq uint64, evs ...route.Event) {
		t.Helper()
		require.NoError(t, r.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: store, Seq: seq}, Events: evs}))
	}
	apply(r, 1, 1, start(1, 1, 1, "a", "c"), row(cdcpb.Event_PREWRITE, "b", "x", 40, 0), row(cdcpb.Event_COMMIT, "b", "", 40, 50))
	apply(r, 2, 1, row(cdcpb.Event_COMMIT, "b", "", 40, 50)) // the re-upload: waits
	require.Equal(t, 1, r.Matcher().PendingCommits)
	_, err = r.Snapshot(ctx)
	require.NoError(t, err)

	apply(r, 1, 2, resolved(1, 1, 1, 100))
	_, err = r.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(100), r.Published(), "the old owner drops the duplicate and publishes past it")
	r.Close()

	r2, err := Restore(ctx, newDeps(), 1, 1, 2)
	require.NoError(t, err)
	apply(r2, 1, 2, resolved(1, 1, 1, 100))
	apply(r2, 1, 3, resolved(1, 1, 1, 200))
	_, err = r2.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(200), r2.Published(), "the restored range advances")
	require.Zero(t, r2.Matcher().PendingCommits, "a pending commit at or below the published watermark is not restored")
	require.Equal(t, int64(1), r2.Stats().LateCommits)
	got, wm := published(t, store)
	require.Equal(t, uint64(200), wm)
	require.Equal(t, []string{"b@50=x"}, got)
}

// A ROLLBACK with no PREWRITE anywhere (the TiDB capture sees hundreds a
// minute: failed prewrites, pessimistic and Lock-type locks) must not be
// kept forever: once the range publishes past its start_ts the prewrite can
// no longer come, so neither the matcher nor any later snapshot holds it.
func TestRollbackWithoutPrewriteIsForgotten(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	newDeps := func() Deps {
		return Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(1 << 20), Owner: "t"}
	}
	r, err := Create(ctx, newDeps(), pool.RangeSpec{Tenant: 1, RangeID: 1, Start: []byte("a"), End: []byte("c"), OpenedAt: 10}, 1)
	require.NoError(t, err)
	apply := func(r *Range, store, seq uint64, evs ...route.Event) {
		t.Helper()
		require.NoError(t, r.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: store, Seq: seq}, Events: evs}))
	}
	apply(r, 1, 1, start(1, 1, 1, "a", "c"), row(cdcpb.Event_ROLLBACK, "b", "", 40, 0),
		row(cdcpb.Event_ROLLBACK, "b", "", 60, 0))
	require.Equal(t, 2, r.Matcher().PendingRollbacks)
	apply(r, 1, 2, resolved(1, 1, 1, 50))
	_, err = r.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(50), r.Published())
	require.Equal(t, 1, r.Matcher().PendingRollbacks, "start_ts 60 is above the watermark: its prewrite may still come")
	_, err = r.Snapshot(ctx)
	require.NoError(t, err)
	r.Close()

	r2, err := Restore(ctx, newDeps(), 1, 1, 2)
	require.NoError(t, err)
	require.Equal(t, 1, r2.Matcher().PendingRollbacks)
	apply(r2, 1, 3, resolved(1, 1, 1, 100))
	_, err = r2.Flush(ctx)
	require.NoError(t, err)
	require.Zero(t, r2.Matcher().PendingRollbacks)
	require.Zero(t, r2.Matcher().Bytes)
}

// A commit at or below the published watermark is never published again;
// its prewrite — here re-sent after the row was published, as a new leader
// or a restore from an older snapshot redelivers it — must go with it, in
// either order, or it stays in the matcher and in every snapshot forever.
func TestLateCommitDropsItsPrewrite(t *testing.T) {
	ctx := context.Background()
	r, store, apply := memRange(t)
	apply(1, 1, start(1, 1, 1, "a", "c"), row(cdcpb.Event_PREWRITE, "b", "x", 40, 0), row(cdcpb.Event_COMMIT, "b", "", 40, 50),
		row(cdcpb.Event_PREWRITE, "b2", "y", 41, 0), row(cdcpb.Event_COMMIT, "b2", "", 41, 51), resolved(1, 1, 1, 100))
	_, err := r.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(100), r.Published())

	// Prewrite then late commit (a re-upload of the whole transaction), and
	// late commit then prewrite.
	apply(2, 1, row(cdcpb.Event_PREWRITE, "b", "x", 40, 0), row(cdcpb.Event_COMMIT, "b", "", 40, 50),
		row(cdcpb.Event_COMMIT, "b2", "", 41, 51), row(cdcpb.Event_PREWRITE, "b2", "y", 41, 0))
	require.Equal(t, int64(2), r.Stats().LateCommits)
	m := r.Matcher()
	require.Zero(t, m.Prewrites, "no prewrite of an already published commit stays")
	require.Zero(t, m.Txns)

	apply(1, 2, resolved(1, 1, 1, 200))
	_, err = r.Flush(ctx)
	require.NoError(t, err)
	m = r.Matcher()
	require.Zero(t, m.PendingRollbacks, "forgotten once published passes their start_ts")
	require.Zero(t, m.Bytes)
	got, wm := published(t, store)
	require.Equal(t, uint64(200), wm)
	require.Equal(t, []string{"b@50=x", "b2@51=y"}, got, "each row exactly once")
}

// Only a range's two newest snapshots stay: each write deletes the older
// ones, a restore picks up what it listed (a previous owner's included)
// and the next write prunes them, and the range restored from what is
// left has every row.
func TestSnapshotsArePruned(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	newDeps := func() Deps {
		return Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(1 << 20), Owner: "t"}
	}
	list := func() []string {
		t.Helper()
		objs, err := objstore.ListAll(ctx, store, layout.SorterSnapshotPrefix(1, 1), "")
		require.NoError(t, err)
		var keys []string
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
		return keys
	}
	r, err := Create(ctx, newDeps(), pool.RangeSpec{Tenant: 1, RangeID: 1, Start: []byte("a"), End: []byte("c"), OpenedAt: 10}, 1)
	require.NoError(t, err)
	apply := func(r *Range, seq uint64, evs ...route.Event) {
		t.Helper()
		require.NoError(t, r.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: 1, Seq: seq}, Events: evs}))
	}
	apply(r, 1, start(1, 1, 1, "a", "c"))
	var written []string
	for i := uint64(0); i < 5; i++ {
		apply(r, 2+i, row(cdcpb.Event_COMMITTED, fmt.Sprintf("b%d", i), "v", 20+i*10, 25+i*10))
		key, err := r.Snapshot(ctx)
		require.NoError(t, err)
		written = append(written, key)
	}
	require.Equal(t, written[3:], list(), "the two newest stay")
	require.Equal(t, int64(3), r.Stats().SnapshotsDeleted)
	r.Close()

	// A previous owner's snapshots are older than any of the new owner's.
	r2, err := Restore(ctx, newDeps(), 1, 1, 2)
	require.NoError(t, err)
	apply(r2, 7, resolved(1, 1, 1, 100))
	key, err := r2.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{written[4], key}, list())
	r2.Close()

	r3, err := Restore(ctx, newDeps(), 1, 1, 3)
	require.NoError(t, err)
	_, err = r3.Flush(ctx)
	require.NoError(t, err)
	got, wm := published(t, store)
	require.Equal(t, uint64(100), wm)
	require.Equal(t, []string{"b0@25=v", "b1@35=v", "b2@45=v", "b3@55=v", "b4@65=v"}, got)
}
