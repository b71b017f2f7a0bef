package sorter

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/route"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// TestSplitThenMergeMatchesUnsplit feeds a simulated history (region
// splits, merges and leader moves, 2PC, async commit, 1PC, rollbacks, a
// large transaction, spilling under a small matcher budget) to one range,
// splits it three ways a third of the way in, restores the children (at the
// parent's epoch and at a greater one), merges two of them two thirds of
// the way in, restores the merged range and finishes. Everything the five
// ranges published, taken together, is exactly what one unsplit range fed
// the same files publishes, and the last ranges reach its final watermark.
func TestSplitThenMergeMatchesUnsplit(t *testing.T) {
	ctx := context.Background()
	h := newHistory(t, 7)
	want, _ := reference(t, h)

	store := objstore.NewMemory()
	f := newFleet(t, h, store, 4<<10)
	p, err := Create(ctx, f.deps, pool.RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 1}, 1)
	require.NoError(t, err)
	f.use(p)
	n := h.rounds()
	i := 1
	for ; i <= n/3; i++ {
		f.round(i, true)
	}
	require.Positive(t, p.Matcher().Prewrites+int(p.Matcher().SpilledPrewrites), "a split with prewrites in flight")

	children := []Successor{ // not in key order: the SEAL keeps this order
		{ID: 3, Start: tableKey(103), End: tableKey(106)},
		{ID: 2, End: tableKey(103)},
		{ID: 4, Start: tableKey(106)},
	}
	require.NoError(t, p.SplitInto(ctx, children))
	require.True(t, p.Sealed())
	w := p.Published()
	require.ErrorIs(t, p.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: 1, Seq: 999}}), ErrSealed)
	require.NoError(t, p.Drop())
	head, _, err := pool.FindHead(ctx, store, 1, 1)
	require.NoError(t, err)
	require.Equal(t, formatv1.RangeLogEntry_KIND_SEAL, head.Kind)
	require.Equal(t, []uint64{3, 2, 4}, head.SuccessorRangeIds)
	require.Equal(t, w, head.Watermark)
	for _, c := range children {
		open, err := pool.GetEntry(ctx, store, 1, c.ID, 1)
		require.NoError(t, err)
		require.Equal(t, w, open.PrevWatermark)
		require.Equal(t, []uint64{1}, open.ParentRangeIds)
		require.Equal(t, uint64(1), open.OwnerEpoch, "children are opened with the parent's epoch")
	}

	c2 := restore(t, f, 2, 1) // at the parent's epoch: no TAKEOVER
	c3 := restore(t, f, 3, 2)
	c4 := restore(t, f, 4, 1)
	f.use(c2, c3, c4)
	f.catchUp(i - 1)
	f.deliver(1, i-1) // a redelivery is skipped
	for ; i <= 2*n/3; i++ {
		f.round(i, true)
	}

	// One parent runs ahead of the other in some stores: the merged range
	// starts from the lower positions.
	for _, s := range h.stores[1:] {
		f.deliver(s, i, 4)
	}
	merged := Successor{ID: 5, Start: tableKey(103), Parents: []uint64{3, 4}}
	for {
		err := MergeInto(ctx, merged, []*Range{c4, c3})
		if err == nil {
			break
		}
		require.ErrorIs(t, err, ErrNotReady)
		require.LessOrEqual(t, i, n, "the merge never aligned")
		f.round(i, false) // the parents are held: only the merge flushes them
		_, err = c2.Flush(ctx)
		require.NoError(t, err)
		i++
	}
	require.True(t, c3.Sealed() && c4.Sealed())
	require.Equal(t, c3.Published(), c4.Published())
	open, err := pool.GetEntry(ctx, store, 1, 5, 1)
	require.NoError(t, err)
	require.Equal(t, c3.Published(), open.PrevWatermark)
	require.Equal(t, uint64(2), open.OwnerEpoch, "the merged range takes the parents' highest epoch")
	require.NoError(t, c3.Drop())
	require.NoError(t, c4.Drop())

	c5 := restore(t, f, 5, 2)
	f.use(c2, c5)
	f.catchUp(i - 1)
	for ; i <= n; i++ {
		f.round(i, true)
	}

	var got []string
	for id := uint64(1); id <= 5; id++ {
		rs, wm := rows(t, store, id)
		got = append(got, rs...)
		if id == 2 || id == 5 {
			require.Equal(t, h.final, wm, "range %d reaches the final watermark", id)
		}
	}
	slices.Sort(got)
	require.Equal(t, len(want), len(got))
	require.Equal(t, want, got)
}

func restore(t *testing.T, f *fleet, id, epoch uint64) *Range {
	r, err := Restore(context.Background(), f.deps, 1, id, epoch)
	require.NoError(t, err)
	return r
}

// failing fails the next PutIfAbsent of a key under prefix once armed.
type failing struct {
	objstore.Store
	prefix string
	armed  atomic.Bool
}

var errInjected = errors.New("injected failure")

func (s *failing) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if strings.HasPrefix(key, s.prefix) && s.armed.CompareAndSwap(true, false) {
		return errInjected
	}
	return s.Store.PutIfAbsent(ctx, key, data)
}

// TestSplitRetriedByNewOwner: the first owner's split stops after one
// child's snapshot; a new owner restores the parent from a stale snapshot,
// catches up and splits again at the same watermark, keeping the snapshot
// that exists and writing the missing one. The result still equals the
// unsplit range.
func TestSplitRetriedByNewOwner(t *testing.T) {
	ctx := context.Background()
	h := newHistory(t, 8)
	want, _ := reference(t, h)

	store := &failing{Store: objstore.NewMemory(), prefix: layout.SorterSnapshotPrefix(1, 3)}
	f := newFleet(t, h, store, 1<<30)
	p, err := Create(ctx, f.deps, pool.RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 1}, 1)
	require.NoError(t, err)
	f.use(p)
	n, i := h.rounds(), 1
	for ; i <= n/2; i++ {
		f.round(i, true)
	}
	_, err = p.Snapshot(ctx)
	require.NoError(t, err)
	for ; i <= n/2+2; i++ {
		f.round(i, true)
	}
	children := []Successor{{ID: 2, End: tableKey(104)}, {ID: 3, Start: tableKey(104)}}
	store.armed.Store(true)
	require.ErrorIs(t, p.SplitInto(ctx, children), errInjected)
	w := p.Published()
	require.NoError(t, p.Drop())

	p2 := restore(t, f, 1, 2)
	f.use(p2)
	f.catchUp(i - 1)
	f.round(i, false) // more input, not flushed: the split must not pass w
	i++
	require.NoError(t, p2.SplitInto(ctx, children))
	require.Equal(t, w, p2.Published())
	snaps2, err := objstore.ListAll(ctx, store, layout.SorterSnapshotPrefix(1, 2), "")
	require.NoError(t, err)
	require.Equal(t, []string{layout.SorterSnapshotKey(1, 2, 1, 1)}, keysOf(snaps2), "the first attempt's snapshot is kept")
	snaps3, err := objstore.ListAll(ctx, store, layout.SorterSnapshotPrefix(1, 3), "")
	require.NoError(t, err)
	require.Equal(t, []string{layout.SorterSnapshotKey(1, 3, 2, 1)}, keysOf(snaps3))
	require.NoError(t, p2.Drop())

	c2, c3 := restore(t, f, 2, 2), restore(t, f, 3, 2)
	f.use(c2, c3)
	f.catchUp(i - 1)
	for ; i <= n; i++ {
		f.round(i, true)
	}
	var got []string
	for id := uint64(1); id <= 3; id++ {
		rs, wm := rows(t, store, id)
		got = append(got, rs...)
		if id > 1 {
			require.Equal(t, h.final, wm)
		}
	}
	slices.Sort(got)
	require.Equal(t, want, got)
}

func keysOf(objs []objstore.ObjectInfo) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Key
	}
	return out
}
