package sorter

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/sim/simtest"
	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/tidbcodec"
	"github.com/tistream/tistream/libs/txnmatch"
)

// history is a simulated upstream: every store's files, in seq order.
type history struct {
	buffer objstore.Store
	stores []uint64
	files  map[uint64][]string // store -> keys, file seq i+1 at index i
	final  uint64              // the sim's final resolved ts
}

func newHistory(t *testing.T, seed uint64) *history { return newHistoryWith(t, seed, nil) }

// newHistoryWith is newHistory with the simulator's settings changed by tune.
func newHistoryWith(t *testing.T, seed uint64, tune func(*sim.Config)) *history {
	cfg := sim.DefaultConfig()
	cfg.Seed = seed
	cfg.Duration = 6 * time.Second
	cfg.RowsPerSec = 1500
	cfg.SplitEvery, cfg.MergeEvery, cfg.TransferEvery = 300*time.Millisecond, 500*time.Millisecond, 200*time.Millisecond
	cfg.DDLEvery = 2 * time.Second
	cfg.FlushInterval, cfg.ResolveEvery = 250*time.Millisecond, 250*time.Millisecond
	cfg.LongTxnEvery, cfg.LongTxnHold = 2*time.Second, 2*time.Second
	cfg.LargeTxnEvery, cfg.LargeTxnRows = 3*time.Second, 2000
	if tune != nil {
		tune(&cfg)
	}
	buffer, _, st := simtest.Run(t, cfg)
	h := &history{buffer: buffer, files: map[uint64][]string{}, final: st.FinalResolvedTs}
	for s := uint64(1); s <= uint64(cfg.Stores); s++ {
		objs, err := objstore.ListAll(context.Background(), buffer, layout.StorePrefix(cfg.ClusterID, 1, s), "")
		require.NoError(t, err)
		for _, o := range objs {
			h.files[s] = append(h.files[s], o.Key)
		}
		h.stores = append(h.stores, s)
	}
	return h
}

// rounds is the number of delivery rounds (one file of each store each).
func (h *history) rounds() int {
	n := 0
	for _, f := range h.files {
		n = max(n, len(f))
	}
	return n
}

// fleet is the ranges of one tenant being fed, with the table routing to
// them.
type fleet struct {
	t      *testing.T
	h      *history
	deps   Deps
	ranges map[uint64]*Range
	table  *route.Table
}

func newFleet(t *testing.T, h *history, pools objstore.Store, budget int64) *fleet {
	return &fleet{t: t, h: h, ranges: map[uint64]*Range{},
		deps: Deps{Pool: pools, Snapshots: pools, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(budget), Owner: "test"}}
}

// use makes ranges the fleet's set and routes to them.
func (f *fleet) use(rs ...*Range) {
	f.ranges = map[uint64]*Range{}
	var rt []route.Range
	for _, r := range rs {
		f.ranges[r.id] = r
		rt = append(rt, route.Range{ID: r.id, Start: r.start, End: r.end})
	}
	tb, err := route.NewTable(rt)
	require.NoError(f.t, err)
	f.table = tb
}

// deliver routes file seq of store to every range of the fleet (only: to
// that one range); a range that applied it already skips it.
func (f *fleet) deliver(store uint64, seq int, only ...uint64) {
	keys := f.h.files[store]
	if seq < 1 || seq > len(keys) {
		return
	}
	data, err := f.h.buffer.Get(context.Background(), keys[seq-1])
	require.NoError(f.t, err)
	// A fresh Router per file: a delta header reads its base's header.
	base := storefile.BaseFromStore(context.Background(), f.h.buffer, 1, 1, store)
	batches, _, err := route.NewRouter(f.table).WithBase(base).Route(keys[seq-1], data)
	require.NoError(f.t, err)
	for _, id := range slices.Sorted(maps.Keys(batches)) {
		if len(only) > 0 && id != only[0] {
			continue
		}
		require.NoError(f.t, f.ranges[id].Apply(batches[id]))
	}
}

// round delivers file i of every store, then flushes unless held.
func (f *fleet) round(i int, flush bool) {
	for _, s := range f.h.stores {
		f.deliver(s, i)
	}
	if flush {
		f.flush()
	}
}

func (f *fleet) flush() {
	for _, id := range slices.Sorted(maps.Keys(f.ranges)) {
		_, err := f.ranges[id].Flush(context.Background())
		require.NoError(f.t, err)
	}
}

// catchUp redelivers, to ranges restored from snapshots, each store's files
// after their positions up to round upTo.
func (f *fleet) catchUp(upTo int) {
	for _, s := range f.h.stores {
		from := upTo + 1
		for _, r := range f.ranges {
			from = min(from, int(r.Applied()[s])+1)
		}
		for i := from; i <= upTo; i++ {
			f.deliver(s, i)
		}
	}
}

// rows reads every row a range published, following nothing.
func rows(t *testing.T, store objstore.Store, id uint64) ([]string, uint64) {
	r, err := pool.OpenRangeReader(context.Background(), store, 1, id, 0)
	require.NoError(t, err)
	var out []string
	for {
		c, ok, err := r.Next(context.Background())
		require.NoError(t, err)
		if !ok {
			return out, r.Watermark()
		}
		for _, row := range c.Rows {
			out = append(out, fmt.Sprintf("%020d/%020d/%x/%d=%x", row.CommitTs, row.StartTs, row.Key, row.Op, row.Value))
		}
	}
}

// reference runs the whole history through one unsplit range.
func reference(t *testing.T, h *history) ([]string, uint64) { return referenceOf(t, h, 1000) }

// referenceOf is reference for a history of more than minRows rows.
func referenceOf(t *testing.T, h *history, minRows int) ([]string, uint64) {
	store := objstore.NewMemory()
	f := newFleet(t, h, store, 4<<10)
	r, err := Create(context.Background(), f.deps, pool.RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 1}, 1)
	require.NoError(t, err)
	f.use(r)
	for i := 1; i <= h.rounds(); i++ {
		f.round(i, true)
	}
	out, wm := rows(t, store, 1)
	require.Equal(t, h.final, wm, "the reference reaches the final watermark")
	require.Greater(t, len(out), minRows)
	return out, wm
}

func tableKey(id int64) []byte { return tidbcodec.TablePrefix(id) }
