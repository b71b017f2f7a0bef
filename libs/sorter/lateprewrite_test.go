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

// Owner A publishes a range past the commits of several transactions after
// its last snapshot; owner B restores from that snapshot and is fed again
// every store file after the snapshot's positions (the dispatcher re-sends
// every file since its checkpoint), in every order that keeps each store's
// own order, flushing after each file. Whatever each transaction had in
// the snapshot — its prewrite, its commit waiting for the prewrite, a
// rollback waiting, a row in the correction index — and whichever half
// comes back first, B publishes every row exactly once, and once its
// watermark passes them the matcher holds nothing of them: no prewrite
// left to wait forever in it and in every later snapshot.
//
// Regions 1 (store 1) and 2 (store 2) cover the range, so its watermark
// passes 100 only when both stores have been read up to their resolved
// 100: as in TiKV, no lock is resolved past before its prewrite is read.
// The transactions (start_ts, commit_ts):
//
//	b1 (40, 50): prewrite in the snapshot, commit re-sent
//	b2 (41, 51): commit waiting in the snapshot (read first from store 2),
//	             prewrite re-sent: A matched and published it after the snapshot
//	b3 (42, 52): both re-sent, prewrite on store 1, commit on store 2
//	b4 (43, 53): both re-sent, prewrite on store 2, commit on store 1
//	b5 (44, -):  rollback waiting in the snapshot, prewrite re-sent
//	b6 (45, 55): pipelined: generation 1 matched before the snapshot (a row
//	             in the correction index), generation 2 re-sent
//	b7 (47, 150): commit waiting in the snapshot, prewrite only after A's
//	             last flush: A did not publish it, so it is above A's
//	             published watermark and B must publish it
//	b8 (48, 58): pipelined, generations 1 and 2 re-sent after its commit
//
// The expected stream is written out by hand from this table.
func TestRestoreReplayLeavesNoPrewriteBehind(t *testing.T) {
	pre1 := []route.Event{start(1, 1, 1, "a", "b"), resolved(1, 1, 1, 30),
		row(cdcpb.Event_PREWRITE, "b1", "x1", 40, 0),
		withGeneration(row(cdcpb.Event_PREWRITE, "b6", "g1", 45, 0), 1), row(cdcpb.Event_COMMIT, "b6", "", 45, 55)}
	pre2 := []route.Event{start(2, 1, 1, "b", ""), resolved(2, 1, 1, 30),
		row(cdcpb.Event_COMMIT, "b2", "", 41, 51), row(cdcpb.Event_ROLLBACK, "b5", "", 44, 0),
		row(cdcpb.Event_COMMIT, "b7", "", 47, 150)}
	// The files after the snapshot, by store; A reads them in this order.
	post1 := []step{
		{1, []route.Event{row(cdcpb.Event_COMMIT, "b1", "", 40, 50), row(cdcpb.Event_PREWRITE, "b2", "x2", 41, 0),
			row(cdcpb.Event_PREWRITE, "b5", "x5", 44, 0), row(cdcpb.Event_PREWRITE, "b3", "x3", 42, 0),
			row(cdcpb.Event_COMMIT, "b8", "", 48, 58), resolved(1, 1, 1, 100)}},
		{1, []route.Event{row(cdcpb.Event_COMMIT, "b4", "", 43, 53),
			withGeneration(row(cdcpb.Event_PREWRITE, "b8", "h1", 48, 0), 1),
			withGeneration(row(cdcpb.Event_PREWRITE, "b8", "h2", 48, 0), 2), resolved(1, 1, 1, 200)}},
	}
	post2 := []step{
		{2, []route.Event{row(cdcpb.Event_COMMIT, "b3", "", 42, 52), withGeneration(row(cdcpb.Event_PREWRITE, "b6", "g2", 45, 0), 2),
			row(cdcpb.Event_PREWRITE, "b4", "x4", 43, 0), resolved(2, 1, 1, 100)}},
		{2, []route.Event{row(cdcpb.Event_PREWRITE, "b7", "x7", 47, 0), resolved(2, 1, 1, 200)}},
	}
	wantA := []string{"b1@50=x1", "b2@51=x2", "b3@52=x3", "b4@53=x4", "b6@55=g2", "b8@58=h2"}
	want := append(append([]string(nil), wantA...), "b7@150=x7")

	orders := interleavings(post1, post2)
	require.Len(t, orders, 6)

	for _, order := range orders {
		name := ""
		for _, s := range order {
			name += string(rune('0' + s.store))
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := objstore.NewMemory()
			newDeps := func() Deps {
				return Deps{Pool: store, Snapshots: store, Buffers: sortbuf.NewMemory(), Budget: txnmatch.NewBudget(1 << 20), Owner: "t"}
			}
			a, err := Create(ctx, newDeps(), pool.RangeSpec{Tenant: 1, RangeID: 1, Start: []byte("a"), End: nil, OpenedAt: 10}, 1)
			require.NoError(t, err)
			seqs := map[uint64]uint64{}
			apply := func(r *Range, s step) {
				t.Helper()
				seqs[s.store]++
				require.NoError(t, r.Apply(&route.Batch{RangeID: 1, Pos: route.Position{Store: s.store, Seq: seqs[s.store]}, Events: s.events}))
			}
			apply(a, step{1, pre1})
			apply(a, step{2, pre2})
			_, err = a.Snapshot(ctx)
			require.NoError(t, err)
			snapSeqs := map[uint64]uint64{1: seqs[1], 2: seqs[2]}
			for _, s := range []step{post1[0], post2[0], post1[1]} {
				apply(a, s)
			}
			_, err = a.Flush(ctx)
			require.NoError(t, err)
			require.Equal(t, uint64(100), a.Published())
			got, _ := published(t, store)
			require.Equal(t, wantA, got, "owner A")
			a.Close()

			b, err := Restore(ctx, newDeps(), 1, 1, 2)
			require.NoError(t, err)
			require.Equal(t, snapSeqs, b.Applied())
			seqs = snapSeqs
			for _, s := range order {
				apply(b, s)
				_, err = b.Flush(ctx)
				require.NoError(t, err)
			}
			require.Equal(t, uint64(200), b.Published())
			got, wm := published(t, store)
			require.Equal(t, uint64(200), wm)
			require.Equal(t, want, got, "every row exactly once, none lost")

			m := b.Matcher()
			require.Zero(t, m.Prewrites, "no prewrite of a published or rolled back transaction stays")
			require.Zero(t, m.Txns)
			require.Zero(t, m.SpilledPrewrites)
			require.Zero(t, m.PendingCommits)
			require.Zero(t, m.PendingRollbacks)
			require.Zero(t, m.Corrections)
			require.Zero(t, m.Bytes)
			b.Close()
		})
	}
}
