package sorter

import (
	"context"
	"fmt"
	"testing"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/txnmatch"
)

// step is one store file's worth of events for the range under test.
type step struct {
	store  uint64
	events []route.Event
}

func start(id, ver, term uint64, s, e string, preds ...route.Ref) route.Event {
	return route.Event{Kind: route.KindRegionStart, Inc: route.Ref{RegionID: id, Version: ver, Term: term}, Start: []byte(s), End: endKey(e), Preds: preds}
}

func end(id, ver, term, final uint64) route.Event {
	return route.Event{Kind: route.KindRegionEnd, Inc: route.Ref{RegionID: id, Version: ver, Term: term}, Ts: final}
}

func resolved(id, ver, term, ts uint64) route.Event {
	return route.Event{Kind: route.KindResolved, Refs: []route.Ref{{RegionID: id, Version: ver, Term: term}}, Ts: ts}
}

func row(t cdcpb.Event_LogType, key, value string, startTs, commitTs uint64) route.Event {
	return route.Event{Kind: route.KindRow, Row: &cdcpb.Event_Row{Type: t, OpType: cdcpb.Event_Row_PUT, Key: []byte(key),
		Value: []byte(value), StartTs: startTs, CommitTs: commitTs}}
}

func ref(id, ver, term uint64) route.Ref { return route.Ref{RegionID: id, Version: ver, Term: term} }

func endKey(e string) []byte {
	if e == "" {
		return nil
	}
	return []byte(e)
}

// published is a row the pool returned: key@commit_ts=value.
func published(t *testing.T, store objstore.Store) ([]string, uint64) {
	r, err := pool.OpenRangeReader(context.Background(), store, 1, 1, 0)
	require.NoError(t, err)
	var out []string
	for {
		c, ok, err := r.Next(context.Background())
		require.NoError(t, err)
		if !ok {
			return out, r.Watermark()
		}
		for _, row := range c.Rows {
			out = append(out, fmt.Sprintf("%s@%d=%s", row.Key, row.CommitTs, row.Value))
		}
	}
}

// runInterleavings feeds two stores' steps to a fresh range [a, c) in every
// order that keeps each store's own order, flushing after each step, and
// checks after each step that what is published is exactly the truth up to
// the published watermark, and at the end that everything was published.
// interleavings returns every order of two stores' steps that keeps each
// store's own order.
func interleavings(a, b []step) [][]step {
	var orders [][]step
	var gen func(i, j int, cur []step)
	gen = func(i, j int, cur []step) {
		if i == len(a) && j == len(b) {
			orders = append(orders, append([]step(nil), cur...))
			return
		}
		if i < len(a) {
			gen(i+1, j, append(cur, a[i]))
		}
		if j < len(b) {
			gen(i, j+1, append(cur, b[j]))
		}
	}
	gen(0, 0, nil)
	return orders
}

func runInterleavings(t *testing.T, a, b []step, truth map[uint64][]string, finalWm uint64, watch func(order string, wms []uint64)) {
	for n, order := range interleavings(a, b) {
		store := objstore.NewMemory()
		deps := Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(1 << 20), Owner: "t"}
		r, err := Create(context.Background(), deps, pool.RangeSpec{Tenant: 1, RangeID: 1, Start: []byte("a"), End: []byte("c"), OpenedAt: 1}, 1)
		require.NoError(t, err)
		seq := map[uint64]uint64{}
		var wms []uint64
		desc := ""
		for _, s := range order {
			seq[s.store]++
			desc += fmt.Sprintf("%c%d ", 'A'+rune(s.store-1), seq[s.store])
			require.NoError(t, r.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: s.store, Seq: seq[s.store]}, Events: s.events}))
			_, err := r.Flush(context.Background())
			require.NoError(t, err)
			got, wm := published(t, store)
			var want []string
			for ts := uint64(0); ts <= wm; ts++ {
				want = append(want, truth[ts]...)
			}
			require.Equal(t, want, got, "order %d (%s): published rows up to watermark %d", n, desc, wm)
			wms = append(wms, wm)
		}
		require.Equal(t, finalWm, wms[len(wms)-1], "order %d (%s)", n, desc)
		if watch != nil {
			watch(desc, wms)
		}
	}
}

// The design's split case: region [a,c) splits at b; the new region [b,c)
// moves its leader to store B, which commits key b at 100 (prewritten at 90
// by the old leader on store A) and writes b again at 105. Store B's file
// can be read before store A's. The design gives the old leader's watermark
// as 100; with b's lock at 90 TiKV's rule holds it at 90, which is what the
// old leader publishes here.
func TestSeedSplitCase(t *testing.T) {
	storeA := []step{
		{1, []route.Event{start(2, 1, 5, "a", "c"), row(cdcpb.Event_PREWRITE, "b", "xxxxxx", 90, 0), resolved(2, 1, 5, 90)}},
		{1, []route.Event{end(2, 1, 5, 90), start(2, 2, 5, "a", "b", ref(2, 1, 5)), start(3, 2, 6, "b", "c", ref(2, 1, 5)), end(3, 2, 6, 0)}},
		{1, []route.Event{resolved(2, 2, 5, 110)}},
	}
	storeB := []step{
		{2, []route.Event{start(3, 2, 7, "b", "c", ref(3, 2, 6)), row(cdcpb.Event_COMMIT, "b", "", 90, 100),
			row(cdcpb.Event_PREWRITE, "b", "zzzzzz", 101, 0), row(cdcpb.Event_COMMIT, "b", "", 101, 105), resolved(3, 2, 7, 105)}},
	}
	truth := map[uint64][]string{100: {"b@100=xxxxxx"}, 105: {"b@105=zzzzzz"}}
	seedOrder := false
	runInterleavings(t, storeA, storeB, truth, 105, func(order string, wms []uint64) {
		if order == "B1 A1 A2 A3 " { // the design's arrival order: the new leader first
			seedOrder = true
			require.Equal(t, []uint64{1, 90, 90, 105}, wms)
		}
	})
	require.True(t, seedOrder)
}

// The design's merge case: source [a,b) on store A merges into target [b,c)
// on store B, which becomes [a,c) at a new version and whose file is read
// first. The merged region's watermark must not lift [a,b) before store A's
// last events (a commit at 110) are read.
func TestSeedMergeCase(t *testing.T) {
	storeA := []step{
		{1, []route.Event{start(4, 3, 5, "a", "b"), row(cdcpb.Event_PREWRITE, "a1", "v1", 100, 0), resolved(4, 3, 5, 100)}},
		{1, []route.Event{row(cdcpb.Event_COMMIT, "a1", "", 100, 110), resolved(4, 3, 5, 115), end(4, 3, 5, 115)}},
	}
	storeB := []step{
		{2, []route.Event{start(5, 3, 5, "b", "c"), resolved(5, 3, 5, 112)}},
		{2, []route.Event{end(5, 3, 5, 112), start(5, 4, 5, "a", "c", ref(4, 3, 5), ref(5, 3, 5)),
			row(cdcpb.Event_COMMITTED, "b1", "v2", 119, 120), resolved(5, 4, 5, 130)}},
	}
	truth := map[uint64][]string{110: {"a1@110=v1"}, 120: {"b1@120=v2"}}
	seedOrder := false
	runInterleavings(t, storeA, storeB, truth, 130, func(order string, wms []uint64) {
		if order == "B1 B2 A1 A2 " { // the new leader's files first
			seedOrder = true
			require.Equal(t, []uint64{1, 1, 100, 130}, wms)
		}
	})
	require.True(t, seedOrder)
}
