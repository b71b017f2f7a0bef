package sorter

import (
	"context"
	"testing"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/txnmatch"
)

// The two-phase flush of ranges sharing a group: each range stages its
// rows up to its target, keeps applying batches meanwhile (a commit at or
// below the staged watermark is refused as a late commit, as below the
// published one), the group publishes both ranges in one publication, and
// each range commits its own; what the pool holds is exactly what was
// committed upstream, once.
func TestTwoPhaseFlushInOneGroup(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	g, err := pool.NewGroupWriter(store, 1, "sorter-t-1", "t", pool.GroupOptions{})
	require.NoError(t, err)
	defer g.Close()
	deps := Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(1 << 20), Owner: "t",
		Group: func(uint64) (*pool.GroupWriter, error) { return g, nil }}
	r1, err := Create(ctx, deps, pool.RangeSpec{Tenant: 1, RangeID: 1, Start: []byte("a"), End: []byte("c"), OpenedAt: 10}, 1)
	require.NoError(t, err)
	r2, err := Create(ctx, deps, pool.RangeSpec{Tenant: 1, RangeID: 2, Start: []byte("c"), End: []byte("e"), OpenedAt: 10}, 1)
	require.NoError(t, err)
	apply := func(r *Range, store, seq uint64, evs ...route.Event) error {
		return r.Apply(&route.Batch{RangeID: r.ID(), Pos: route.Position{Store: store, Seq: seq}, Events: evs})
	}
	require.NoError(t, apply(r1, 1, 1, start(1, 1, 1, "a", "c"), row(cdcpb.Event_COMMITTED, "a1", "x", 40, 50), resolved(1, 1, 1, 100)))
	require.NoError(t, apply(r2, 1, 1, start(2, 1, 1, "c", "e"), resolved(2, 1, 1, 100)))

	s1, err := r1.Prepare(^uint64(0))
	require.NoError(t, err)
	s2, err := r2.Prepare(^uint64(0))
	require.NoError(t, err)
	require.Equal(t, uint64(100), s1.Watermark)
	require.Equal(t, uint64(1), s1.Rows())
	require.Zero(t, s2.Rows(), "an idle range stages only its watermark")
	again, err := r1.Prepare(^uint64(0))
	require.NoError(t, err)
	require.Nil(t, again, "one staged flush at a time")

	// The range keeps applying while its flush is staged.
	require.NoError(t, apply(r1, 1, 2, row(cdcpb.Event_COMMITTED, "a2", "y", 140, 150), resolved(1, 1, 1, 200)))
	err = apply(r1, 2, 1, row(cdcpb.Event_COMMITTED, "b1", "late", 60, 70))
	require.ErrorIs(t, err, ErrLateCommit, "below the staged watermark")
	require.Equal(t, uint64(10), r1.Published(), "nothing is published before the publication is durable")

	res, err := g.Publish(ctx, []*pool.Staged{s1, s2})
	require.NoError(t, err)
	require.Equal(t, uint64(1), res.Seq, "both ranges in one publication")
	require.NoError(t, r1.Commit(s1))
	require.NoError(t, r2.Commit(s2))
	require.Equal(t, uint64(100), r1.Published())
	require.Equal(t, uint64(100), r2.Published())
	got, wm := published(t, store)
	require.Equal(t, uint64(100), wm)
	require.Equal(t, []string{"a1@50=x"}, got)

	// The row applied meanwhile is published by the next round.
	ok, err := r1.Flush(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	got, wm = published(t, store)
	require.Equal(t, uint64(200), wm)
	require.Equal(t, []string{"a1@50=x", "a2@150=y"}, got)
	require.Equal(t, int64(2), r1.Stats().Flushes)
	require.Equal(t, int64(2), r1.Stats().RowsFlushed)
	require.Equal(t, int64(2), g.Stats().Pubs)
}

// A staged flush whose range a newer owner fenced meanwhile is never
// published: Commit says ErrFenced and the range publishes nothing more.
func TestStagedFlushOfFencedRange(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	deps := Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(1 << 20), Owner: "old"}
	r, err := Create(ctx, deps, pool.RangeSpec{Tenant: 1, RangeID: 1, Start: []byte("a"), End: []byte("c"), OpenedAt: 10}, 1)
	require.NoError(t, err)
	require.NoError(t, r.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: 1, Seq: 1}, Events: []route.Event{
		start(1, 1, 1, "a", "c"), row(cdcpb.Event_COMMITTED, "a1", "x", 40, 50), resolved(1, 1, 1, 100)}}))
	st, err := r.Prepare(^uint64(0))
	require.NoError(t, err)

	deps2 := deps
	deps2.Owner, deps2.Buffers = "new", sortbuf.NewMemory()
	nr, err := Restore(ctx, deps2, 1, 1, 2)
	require.NoError(t, err)
	require.Equal(t, uint64(10), nr.Published())

	_, err = r.writer.Group().Publish(ctx, []*pool.Staged{st})
	require.NoError(t, err)
	require.ErrorIs(t, r.Commit(st), pool.ErrFenced)
	require.Equal(t, uint64(10), r.Published())
	_, err = r.Flush(ctx)
	require.ErrorIs(t, err, pool.ErrFenced)
	got, wm := published(t, store)
	require.Empty(t, got)
	require.Equal(t, uint64(10), wm)
}
