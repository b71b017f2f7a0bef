package route

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/tidbcodec"
)

func TestTableRules(t *testing.T) {
	_, err := NewTable([]Range{{ID: 1, End: []byte("m")}, {ID: 2, Start: []byte("n")}})
	require.ErrorContains(t, err, "gap or overlap")
	_, err = NewTable([]Range{{ID: 1, End: []byte("m")}})
	require.ErrorContains(t, err, "do not cover")
	tb, err := NewTable([]Range{{ID: 2, Start: []byte("m")}, {ID: 1, End: []byte("m")}})
	require.NoError(t, err)
	require.Equal(t, uint64(1), tb.Lookup([]byte("a")).ID)
	require.Equal(t, uint64(2), tb.Lookup([]byte("m")).ID)
	var ids []uint64
	tb.Overlapping([]byte("l"), []byte("n"), func(r *Range) { ids = append(ids, r.ID) })
	require.Equal(t, []uint64{1, 2}, ids)
	ids = nil
	tb.Overlapping([]byte("m"), nil, func(r *Range) { ids = append(ids, r.ID) })
	require.Equal(t, []uint64{2}, ids)
}

// Every row of the simulator's files goes to exactly the range owning its
// key; region events go to every range the region overlaps.
func TestRouteSimulatedFiles(t *testing.T) {
	store := objstore.NewMemory()
	cfg := sim.DefaultConfig()
	cfg.Duration = 3 * time.Second
	cfg.SplitEvery, cfg.MergeEvery, cfg.TransferEvery = 200*time.Millisecond, 300*time.Millisecond, 100*time.Millisecond
	s, err := sim.New(cfg, sim.Options{Store: store})
	require.NoError(t, err)
	_, err = s.Run(context.Background())
	require.NoError(t, err)

	tb, err := NewTable([]Range{
		{ID: 1, End: tidbcodec.TablePrefix(102)},
		{ID: 2, Start: tidbcodec.TablePrefix(102), End: tidbcodec.TablePrefix(105)},
		{ID: 3, Start: tidbcodec.TablePrefix(105)},
	})
	require.NoError(t, err)
	rows, starts := 0, 0
	for storeID := uint64(1); storeID <= 3; storeID++ {
		files, err := objstore.ListAll(context.Background(), store, layout.StorePrefix(1, 1, storeID), "")
		require.NoError(t, err)
		rt := NewRouter(tb)
		for _, f := range files {
			b, err := store.Get(context.Background(), f.Key)
			require.NoError(t, err)
			batches, h, err := rt.Route(f.Key, b)
			require.NoError(t, err)
			for id, batch := range batches {
				require.Equal(t, id, batch.RangeID)
				require.Equal(t, h.Seq, batch.Pos.Seq)
				rg := rangeByID(tb, id)
				for _, ev := range batch.Events {
					switch ev.Kind {
					case KindRow:
						rows++
						require.True(t, contains(rg, ev.Row.Key), "row %x routed to range %d", ev.Row.Key, id)
					default:
						require.True(t, overlaps(rg, ev.Start, ev.End) || ev.Kind == KindResolved || ev.Kind == KindLeaderResolved || ev.Kind == KindLeaders,
							"region event outside range %d", id)
						if ev.Kind == KindRegionStart {
							starts++
						}
					}
				}
			}
		}
	}
	require.Greater(t, rows, 1000)
	require.Greater(t, starts, 10)
}

func rangeByID(tb *Table, id uint64) Range {
	for _, r := range tb.Ranges() {
		if r.ID == id {
			return r
		}
	}
	return Range{}
}

func contains(r Range, k []byte) bool {
	return bytes.Compare(k, r.Start) >= 0 && (len(r.End) == 0 || bytes.Compare(k, r.End) < 0)
}

func overlaps(r Range, s, e []byte) bool {
	return (len(e) == 0 || bytes.Compare(r.Start, e) < 0) && (len(r.End) == 0 || bytes.Compare(s, r.End) < 0)
}

// A Router whose batches are given back after each file (Recycle) routes
// every file as one that allocates new arrays does, and the next files'
// batches take the arrays given back.
func TestRecycledBatchesRouteTheSame(t *testing.T) {
	store := objstore.NewMemory()
	cfg := sim.DefaultConfig()
	cfg.Duration = time.Second
	cfg.SplitEvery, cfg.TransferEvery = 300*time.Millisecond, 200*time.Millisecond
	s, err := sim.New(cfg, sim.Options{Store: store})
	require.NoError(t, err)
	_, err = s.Run(context.Background())
	require.NoError(t, err)
	tb, err := NewTable([]Range{{ID: 1, End: tidbcodec.TablePrefix(103)}, {ID: 2, Start: tidbcodec.TablePrefix(103)}})
	require.NoError(t, err)
	render := func(batches map[uint64]*Batch) map[uint64]string {
		out := map[uint64]string{}
		for id, b := range batches {
			var sb strings.Builder
			for _, ev := range b.Events {
				fmt.Fprintf(&sb, "%d %v %d %x %x %v %v %d %d", ev.Kind, ev.Inc, ev.Ts, ev.Start, ev.End, ev.Refs, ev.Preds, ev.TakeoverStore, ev.TakeoverSeq)
				if r := ev.Row; r != nil {
					fmt.Fprintf(&sb, " row %d %d %v %v %x %x %x", r.StartTs, r.CommitTs, r.Type, r.OpType, r.Key, r.Value, r.OldValue)
				}
				sb.WriteByte('\n')
			}
			out[id] = sb.String()
		}
		return out
	}
	reused := 0
	for storeID := uint64(1); storeID <= 3; storeID++ {
		files, err := objstore.ListAll(context.Background(), store, layout.StorePrefix(1, 1, storeID), "")
		require.NoError(t, err)
		fresh, recycling := NewRouter(tb), NewRouter(tb)
		for _, f := range files {
			b, err := store.Get(context.Background(), f.Key)
			require.NoError(t, err)
			want, _, err := fresh.Route(f.Key, b)
			require.NoError(t, err)
			free := len(recycling.free)
			got, _, err := recycling.Route(f.Key, b)
			require.NoError(t, err)
			reused += free - len(recycling.free)
			require.Equal(t, render(want), render(got), "file %s", f.Key)
			recycling.Recycle(got)
			for _, g := range got {
				require.Nil(t, g.Events, "recycled batches are emptied")
			}
		}
	}
	require.Positive(t, reused, "no batch took a recycled array")
}
