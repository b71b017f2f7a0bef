package sorter

import (
	"context"
	"errors"
	"testing"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/txnmatch"
)

// A commit at or below the watermark the range itself published (above
// the one it inherited at Create) is refused with ErrLateCommit before any
// event of the batch is applied; a commit at or below the inherited
// watermark (a possible replay of a previous owner's input) is dropped and
// counted as before.
func TestApplyRefusesCommitBelowPublished(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	deps := Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(1 << 20), Owner: "t"}
	r, err := Create(ctx, deps, pool.RangeSpec{Tenant: 1, RangeID: 1, Start: []byte("a"), End: []byte("c"), OpenedAt: 10}, 1)
	require.NoError(t, err)
	apply := func(store, seq uint64, evs ...route.Event) error {
		return r.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: store, Seq: seq}, Events: evs})
	}
	// Below the inherited (opened-at) watermark: dropped and counted.
	require.NoError(t, apply(1, 1, start(1, 1, 1, "a", "c"), row(cdcpb.Event_COMMITTED, "a1", "x", 5, 8), resolved(1, 1, 1, 100)))
	require.Equal(t, int64(1), r.Stats().LateCommits)
	_, err = r.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(100), r.Published())

	// Above the inherited watermark, at or below the published one.
	err = apply(2, 1, row(cdcpb.Event_COMMITTED, "b1", "y", 40, 50), resolved(1, 1, 1, 200))
	require.ErrorIs(t, err, ErrLateCommit)
	var le *LateCommitError
	require.True(t, errors.As(err, &le))
	require.Equal(t, uint64(2), le.Store)
	require.Equal(t, uint64(50), le.CommitTs)
	require.Equal(t, uint64(100), le.Published)
	require.Equal(t, int64(1), r.Stats().RefusedLate)
	require.Zero(t, r.Applied()[2], "the batch's position is not recorded")
	require.Equal(t, uint64(100), r.Watermark(), "nothing of the batch applied (not even its resolved ts)")

	// The fixed file applies (the region's resolved ts comes from its
	// leader, store 1).
	require.NoError(t, apply(2, 1, row(cdcpb.Event_COMMITTED, "b1", "y", 140, 150)))
	require.NoError(t, apply(1, 2, resolved(1, 1, 1, 200)))
	_, err = r.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(200), r.Published())
	got, wm := published(t, store)
	require.Equal(t, uint64(200), wm)
	require.Len(t, got, 1)
}

// A range restored from a snapshot whose watermark map is ahead of its
// published watermark (as after a merge, whose store positions are the
// parents' minimum) treats commits up to the map's highest ts as possible
// replays: counted, not refused.
func TestApplyAfterRestoreAllowsReplays(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	deps := Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(1 << 20), Owner: "t"}
	r, err := Create(ctx, deps, pool.RangeSpec{Tenant: 1, RangeID: 1, Start: []byte("a"), End: []byte("c"), OpenedAt: 10}, 1)
	require.NoError(t, err)
	require.NoError(t, r.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: 1, Seq: 1}, Events: []route.Event{
		start(1, 1, 1, "a", "c"), row(cdcpb.Event_COMMITTED, "a1", "x", 40, 50), resolved(1, 1, 1, 100)}}))
	_, err = r.Flush(ctx)
	require.NoError(t, err)
	// Resolved to 200 but not flushed before the snapshot.
	require.NoError(t, r.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: 1, Seq: 2}, Events: []route.Event{
		row(cdcpb.Event_COMMITTED, "a2", "y", 140, 150), resolved(1, 1, 1, 200)}}))
	_, err = r.Snapshot(ctx)
	require.NoError(t, err)
	r.Close()

	r2, err := Restore(ctx, Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(1 << 20), Owner: "t"}, 1, 1, 2)
	require.NoError(t, err)
	_, err = r2.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(200), r2.Published())
	// Another store's file with a commit at 150 (a replay, e.g. of a merged
	// parent's input): counted and dropped.
	require.NoError(t, r2.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: 2, Seq: 1}, Events: []route.Event{
		row(cdcpb.Event_COMMITTED, "b1", "z", 140, 150)}}))
	require.Equal(t, int64(1), r2.Stats().LateCommits)
	require.Zero(t, r2.Stats().RefusedLate)
	// Past what it inherited, a late commit is refused.
	require.NoError(t, r2.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: 1, Seq: 3}, Events: []route.Event{resolved(1, 1, 1, 300)}}))
	_, err = r2.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(300), r2.Published())
	err = r2.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: 2, Seq: 2}, Events: []route.Event{
		row(cdcpb.Event_COMMITTED, "b2", "z", 240, 250)}})
	require.ErrorIs(t, err, ErrLateCommit)
}

// A commit below the published watermark that the range has already
// published (the same key, start_ts and commit_ts) is a re-upload — a new
// leader re-writing a crashed leader's events (store-file spec, rule 3) —
// and is dropped with proof instead of refused; the published rows stay as
// they were. A different commit at the same ts is still refused.
func TestApplyDropsProvenDuplicateCommit(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	deps := Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(1 << 20), Owner: "t"}
	r, err := Create(ctx, deps, pool.RangeSpec{Tenant: 1, RangeID: 1, Start: []byte("a"), End: []byte("c"), OpenedAt: 10}, 1)
	require.NoError(t, err)
	apply := func(store, seq uint64, evs ...route.Event) error {
		return r.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: store, Seq: seq}, Events: evs})
	}
	require.NoError(t, apply(1, 1, start(1, 1, 1, "a", "c"), row(cdcpb.Event_COMMITTED, "a1", "x", 40, 50),
		row(cdcpb.Event_COMMITTED, "b1", "y", 60, 70), resolved(1, 1, 1, 100)))
	_, err = r.Flush(ctx)
	require.NoError(t, err)
	require.NoError(t, apply(1, 2, resolved(1, 1, 1, 200)))
	_, err = r.Flush(ctx)
	require.NoError(t, err)
	before, wm := published(t, store)
	require.Equal(t, uint64(200), wm)
	require.Len(t, before, 2)

	// The takeover re-upload from another store: both rows again.
	require.NoError(t, apply(2, 1, row(cdcpb.Event_COMMITTED, "a1", "x", 40, 50), row(cdcpb.Event_COMMITTED, "b1", "y", 60, 70)))
	require.Equal(t, int64(2), r.Stats().ProvenDuplicates)
	require.Zero(t, r.Stats().RefusedLate)
	require.NoError(t, apply(1, 3, resolved(1, 1, 1, 300)))
	_, err = r.Flush(ctx)
	require.NoError(t, err)
	after, wm := published(t, store)
	require.Equal(t, uint64(300), wm)
	require.Equal(t, before, after, "nothing published twice")

	// Same ts, another start_ts: not a duplicate, refused.
	err = apply(2, 2, row(cdcpb.Event_COMMITTED, "a1", "x", 41, 50))
	require.ErrorIs(t, err, ErrLateCommit)
}

// What the watermark map sets aside that can hold the watermark back is
// noted with the store file and the incarnation, for the sorter's log: an
// END before its START, and an incarnation a store's full leader list left
// out. Ordinary input notes nothing.
func TestNotesNameWhatWasSetAside(t *testing.T) {
	r, _, apply := memRange(t)
	apply(1, 1, start(1, 1, 1, "a", "b"), start(2, 1, 1, "b", "c"), resolved(1, 1, 1, 100))
	require.Empty(t, r.TakeNotes())
	// Store 2's END of region 3, never started here.
	e := end(3, 1, 1, 120)
	e.Start, e.End = []byte("a"), []byte("b")
	apply(2, 1, e)
	// Store 1 restarted: its full list leaves region 2 out.
	apply(1, 2, route.Event{Kind: route.KindLeaders, Refs: []route.Ref{{RegionID: 1, Version: 1, Term: 1}}})
	require.Equal(t, []string{
		"store 2 file 1: END of r3/v1/t1 before its START (kept for it)",
		"store 1 file 2: the full leader list leaves out [r2/v1/t1], which the store led (no longer led)",
	}, r.TakeNotes())
	require.Empty(t, r.TakeNotes(), "taken")
}

// memRange creates range 1 of tenant 1 over [a, c) in a memory pool, and
// returns it, the pool and a function applying one store file's events to
// it (failing the test on an error).
func memRange(t *testing.T) (*Range, objstore.Store, func(store, seq uint64, evs ...route.Event)) {
	store := objstore.NewMemory()
	deps := Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(1 << 20), Owner: "t"}
	r, err := Create(context.Background(), deps, pool.RangeSpec{Tenant: 1, RangeID: 1, Start: []byte("a"), End: []byte("c"), OpenedAt: 10}, 1)
	require.NoError(t, err)
	return r, store, func(store, seq uint64, evs ...route.Event) {
		t.Helper()
		require.NoError(t, r.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: store, Seq: seq}, Events: evs}))
	}
}
