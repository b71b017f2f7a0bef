package pool_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/sorter"
	"github.com/tistream/tistream/libs/txnmatch"
)

// A range whose group was compacted down to its newest publication is
// restored by a new owner from its latest snapshot: nothing a restore reads
// is deleted.
func TestRestoreAfterCompact(t *testing.T) {
	ctx := context.Background()
	store, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	deps := sorter.Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(1 << 20), Owner: "a"}
	spec := pool.RangeSpec{Tenant: 1, RangeID: 1, Start: []byte("t"), End: []byte("u"), OpenedAt: 100}
	r, err := sorter.Create(ctx, deps, spec, 1)
	require.NoError(t, err)
	_, err = r.Snapshot(ctx)
	require.NoError(t, err)
	r.Close()
	// The owner publishes watermarks for a while, in a group of its own.
	g, err := pool.NewGroupWriter(store, 1, "a-again", "a", pool.GroupOptions{SegmentPubs: 16})
	require.NoError(t, err)
	w, err := pool.OpenRange(ctx, g, 1, 1, 1)
	require.NoError(t, err)
	for wm := uint64(200); wm <= 20000; wm += 100 {
		_, err := w.Flush(ctx, wm, nil)
		require.NoError(t, err)
	}
	g.WaitSegments()
	st, err := pool.CompactGroup(ctx, store, 1, g.ID(), time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Positive(t, st.Pubs+st.Segments)
	g.Close()

	deps.Owner = "b"
	rr, err := sorter.Restore(ctx, deps, 1, 1, 2)
	require.NoError(t, err)
	require.Equal(t, uint64(20000), rr.Published())
	start, end, openedAt := rr.Span()
	require.Equal(t, spec.Start, start)
	require.Equal(t, spec.End, end)
	require.Equal(t, uint64(100), openedAt)
	_, err = rr.Snapshot(ctx)
	require.NoError(t, err)
	rr.Close()
	// And Take (what the sorter service calls) restores it too.
	deps.Owner = "c"
	rt, err := sorter.Take(ctx, deps, spec, 3)
	require.NoError(t, err)
	require.Equal(t, uint64(20000), rt.Published())
	rt.Close()
}
