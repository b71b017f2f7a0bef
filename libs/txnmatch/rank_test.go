package txnmatch

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
)

// rankEvent is a prewrite (commit false) or the commit of key k at 10/20.
type rankEvent struct {
	name   string
	commit bool
	op     sortbuf.Op // the prewrite's, or the commit's (0: take the prewrite's)
	value  string
	gen    uint64
}

func (e rankEvent) apply(h *harness) {
	h.t.Helper()
	if e.commit {
		require.NoError(h.t, h.m.Commit([]byte("k"), e.op, 10, 20))
		return
	}
	require.NoError(h.t, h.m.Prewrite([]byte("k"), e.op, []byte(e.value), []byte("old"), 10, e.gen))
}

func permutations(evs []rankEvent) [][]rankEvent {
	if len(evs) <= 1 {
		return [][]rankEvent{evs}
	}
	var out [][]rankEvent
	for i := range evs {
		rest := append(append([]rankEvent(nil), evs[:i]...), evs[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]rankEvent{evs[i]}, p...))
		}
	}
	return out
}

func orderName(evs []rankEvent) string {
	names := make([]string, len(evs))
	for i, e := range evs {
		names[i] = e.name
	}
	return strings.Join(names, " ")
}

// finalRow is what the sorter buffer holds after the emitted rows: a
// re-emitted row replaces the first (same commit_ts, start_ts and key).
func finalRow(t *testing.T, rows []sortbuf.Row) []sortbuf.Row {
	buf := sortbuf.NewMemory().Buffer(1)
	for _, r := range rows {
		require.NoError(t, buf.Add(r))
	}
	var out []sortbuf.Row
	require.NoError(t, buf.Scan(math.MaxUint64, func(r sortbuf.Row) error {
		out = append(out, r.Clone())
		return nil
	}))
	return out
}

// rankCase runs every order of evs, with an ample budget and with one
// that spills at once, and also stopped after each event, snapshotted and
// restored into a fresh matcher: the final row must be want, and once the
// row is forgotten the matcher holds nothing, except (leftover) a prewrite
// in the orders where leftover says one is expected.
func rankCase(t *testing.T, evs []rankEvent, want sortbuf.Row, leftover func(order []rankEvent) bool) {
	for _, order := range permutations(evs) {
		name := orderName(order)
		for _, budget := range []int64{1 << 40, 1} {
			for cut := 0; cut <= len(order); cut++ {
				desc := fmt.Sprintf("%s, budget %d, restored after %d", name, budget, cut)
				h := newHarness(t, budget)
				for _, e := range order[:cut] {
					e.apply(h)
				}
				if cut < len(order) { // a full run is the cut at the end
					var snap bytes.Buffer
					require.NoError(t, h.m.Snapshot(&snap))
					r := newHarness(t, budget)
					r.out.rows = h.out.rows
					for _, e := range saveSpill(t, h.spill) {
						require.NoError(t, r.spill.Put(e.startTs, e.key, e.value))
					}
					require.NoError(t, r.m.Restore(bytes.NewReader(snap.Bytes())), desc)
					h = r
				}
				for _, e := range order[cut:] {
					e.apply(h)
				}
				require.Equal(t, []sortbuf.Row{want}, finalRow(t, h.out.rows), desc)
				st := h.m.Stats()
				require.Zero(t, st.PendingCommits, desc)
				h.m.Forget(20)
				st = h.m.Stats()
				require.Zero(t, st.Corrections, desc)
				held := st.Prewrites + int(st.SpilledPrewrites)
				if leftover != nil && leftover(order) {
					require.Equal(t, 1, held, "%s: the known leftover", desc)
				} else {
					require.Zero(t, held, "%s: nothing is kept", desc)
					require.Zero(t, h.used(), desc)
				}
				h.requireConsistent()
			}
		}
	}
}

// before reports whether the event named a comes before the one named b.
func before(order []rankEvent, a, b string) bool {
	for _, e := range order {
		switch e.name {
		case a:
			return true
		case b:
			return false
		}
	}
	return false
}

// A lock refresh (a PUT with an empty value) carries nothing and is
// ignored, in any order with the real prewrite and the commit: the row
// always has the real prewrite's value, and nothing is left behind (not
// even after the match, where a refresh used to wait as a prewrite that
// nothing ends).
func TestLockRefreshEveryOrder(t *testing.T) {
	var lateRefresh func([]rankEvent) bool // no order leaves anything
	t.Run("put", func(t *testing.T) {
		rankCase(t, []rankEvent{
			{name: "real", op: sortbuf.OpPut, value: "real"},
			{name: "refresh", op: sortbuf.OpPut},
			{name: "commit", commit: true},
		}, sortbuf.Row{CommitTs: 20, StartTs: 10, Op: sortbuf.OpPut, Key: []byte("k"), Value: []byte("real"), OldValue: []byte("old")},
			lateRefresh)
	})
	t.Run("delete with an empty value is content", func(t *testing.T) {
		rankCase(t, []rankEvent{
			{name: "real", op: sortbuf.OpDelete},
			{name: "refresh", op: sortbuf.OpPut},
			{name: "commit", commit: true},
		}, sortbuf.Row{CommitTs: 20, StartTs: 10, Op: sortbuf.OpDelete, Key: []byte("k"), OldValue: []byte("old")},
			lateRefresh)
	})
	t.Run("the commit's op wins", func(t *testing.T) {
		rankCase(t, []rankEvent{
			{name: "real", op: sortbuf.OpPut, value: "real"},
			{name: "refresh", op: sortbuf.OpPut},
			{name: "commit", commit: true, op: sortbuf.OpDelete},
		}, sortbuf.Row{CommitTs: 20, StartTs: 10, Op: sortbuf.OpDelete, Key: []byte("k"), Value: []byte("real"), OldValue: []byte("old")},
			lateRefresh)
	})
}

// Pipelined DML: the highest generation wins in every order of three
// generations and the commit, and a lower generation arriving after a
// higher one matched is dropped, not kept.
func TestGenerationsEveryOrder(t *testing.T) {
	rankCase(t, []rankEvent{
		{name: "gen1", op: sortbuf.OpPut, value: "g1", gen: 1},
		{name: "gen2", op: sortbuf.OpDelete, gen: 2},
		{name: "gen3", op: sortbuf.OpPut, value: "g3", gen: 3},
		{name: "commit", commit: true},
	}, sortbuf.Row{CommitTs: 20, StartTs: 10, Op: sortbuf.OpPut, Key: []byte("k"), Value: []byte("g3"), OldValue: []byte("old")}, nil)
}

// Generations and refreshes together: a refresh of the highest generation
// changes nothing.
func TestGenerationsAndRefreshEveryOrder(t *testing.T) {
	rankCase(t, []rankEvent{
		{name: "gen1", op: sortbuf.OpPut, value: "g1", gen: 1},
		{name: "gen2", op: sortbuf.OpPut, value: "g2", gen: 2},
		{name: "refresh2", op: sortbuf.OpPut, gen: 2},
		{name: "commit", commit: true},
	}, sortbuf.Row{CommitTs: 20, StartTs: 10, Op: sortbuf.OpPut, Key: []byte("k"), Value: []byte("g2"), OldValue: []byte("old")}, nil)
}

// At equal rank the first prewrite seen is kept.
func TestEqualRankKeepsFirst(t *testing.T) {
	for _, budget := range []int64{1 << 40, 1} {
		h := newHarness(t, budget)
		require.NoError(t, h.m.Prewrite([]byte("k"), sortbuf.OpPut, []byte("first"), nil, 10, 2))
		require.NoError(t, h.m.Prewrite([]byte("k"), sortbuf.OpPut, []byte("second"), nil, 10, 2))
		h.commit("k", 10, 20)
		require.NoError(t, h.m.Prewrite([]byte("k"), sortbuf.OpPut, []byte("third"), nil, 10, 2))
		require.Equal(t, []string{"20/10/k=first"}, h.out.ids(), "budget %d", budget)
		require.Equal(t, uint64(2), h.m.Stats().Superseded)
	}
}

// A prewrite of lower or equal rank arriving after the row was emitted
// from an indexed prewrite is dropped: it does not wait as a new prewrite.
// A repeated commit of such a row is dropped too.
func TestLateLowerRankDropped(t *testing.T) {
	for _, budget := range []int64{1 << 40, 1} {
		h := newHarness(t, budget)
		require.NoError(t, h.m.Prewrite([]byte("k"), sortbuf.OpPut, []byte("g2"), nil, 10, 2))
		h.commit("k", 10, 20)
		require.NoError(t, h.m.Prewrite([]byte("k"), sortbuf.OpPut, []byte("g1"), nil, 10, 1))
		require.NoError(t, h.m.Prewrite([]byte("k"), sortbuf.OpPut, nil, nil, 10, 2)) // a refresh of gen 2
		require.NoError(t, h.m.Prewrite([]byte("k"), sortbuf.OpPut, []byte("g2"), nil, 10, 2))
		h.commit("k", 10, 20)
		require.Equal(t, []string{"20/10/k=g2"}, h.out.ids())
		st := h.m.Stats()
		require.Equal(t, Stats{Corrections: 1, Emitted: 1, Superseded: 2, Refreshes: 1, Spills: st.Spills, Bytes: st.Bytes}, st, "budget %d", budget)
		h.requireConsistent()
	}
}

// Forget drops the correction index's rows up to a commit_ts; a prewrite
// of a forgotten row is no longer compared with it.
func TestForget(t *testing.T) {
	h := newUnlimited(t)
	require.NoError(t, h.m.Prewrite([]byte("a"), sortbuf.OpPut, []byte("1"), nil, 10, 1))
	require.NoError(t, h.m.Prewrite([]byte("b"), sortbuf.OpPut, []byte("b1"), nil, 11, 1))
	require.NoError(t, h.m.Prewrite([]byte("c"), sortbuf.OpPut, []byte("3"), nil, 12, 0))
	h.commit("a", 10, 30)
	h.commit("b", 11, 20)
	h.commit("c", 12, 25) // an ordinary row: not indexed
	require.Equal(t, 2, h.m.Stats().Corrections)
	require.Positive(t, h.used(), "index entries are charged")
	h.m.Forget(19)
	require.Equal(t, 2, h.m.Stats().Corrections)
	h.m.Forget(29)
	require.Equal(t, 1, h.m.Stats().Corrections)
	require.NoError(t, h.m.Prewrite([]byte("b"), sortbuf.OpPut, []byte("late"), nil, 11, 0))
	require.Equal(t, 1, h.m.Stats().Prewrites, "forgotten: the prewrite waits like any other")
	require.NoError(t, h.m.Prewrite([]byte("a"), sortbuf.OpPut, []byte("2"), nil, 10, 2))
	require.Equal(t, []string{"30/10/a=1", "20/11/b=b1", "25/12/c=3", "30/10/a=2"}, h.out.ids())
	require.Equal(t, uint64(1), h.m.Stats().Reemitted)
	h.m.Forget(math.MaxUint64)
	h.m.Forget(math.MaxUint64)
	require.Zero(t, h.m.Stats().Corrections)
	h.rollback("b", 11)
	require.Zero(t, h.used())
	h.requireConsistent()
}

// The correction index and generations survive a snapshot, a split and a
// merge: the restored matcher re-emits and drops as the original would.
func TestCorrectionsSurviveSnapshotSplitMerge(t *testing.T) {
	h := newUnlimited(t)
	require.NoError(t, h.m.Prewrite([]byte("a"), sortbuf.OpPut, []byte("a1"), nil, 10, 1))
	h.commit("a", 10, 20)
	require.NoError(t, h.m.Prewrite([]byte("z"), sortbuf.OpPut, []byte("z1"), nil, 10, 1))
	h.commit("z", 10, 20)
	require.NoError(t, h.m.Prewrite([]byte("y"), sortbuf.OpPut, []byte("y2"), nil, 11, 2))
	var whole bytes.Buffer
	require.NoError(t, h.m.Snapshot(&whole))

	left := splitHarness(t, h, leftKey, 1<<40)
	right := splitHarness(t, h, rightKey, 1<<40)
	require.Equal(t, 1, left.m.Stats().Corrections)
	require.Equal(t, 1, right.m.Stats().Corrections)
	merged := mergeHarnesses(t, 1<<40, left, right)
	var again bytes.Buffer
	require.NoError(t, merged.m.Snapshot(&again))
	require.Equal(t, whole.Bytes(), again.Bytes(), "split and merged back: the same state")

	require.NoError(t, merged.m.Prewrite([]byte("a"), sortbuf.OpPut, []byte("real"), nil, 10, 3))
	require.NoError(t, merged.m.Prewrite([]byte("z"), sortbuf.OpPut, []byte("z0"), nil, 10, 0))
	require.NoError(t, merged.m.Prewrite([]byte("z"), sortbuf.OpPut, []byte("z2"), nil, 10, 2))
	require.NoError(t, merged.m.Prewrite([]byte("y"), sortbuf.OpPut, []byte("y1"), nil, 11, 1))
	merged.commit("y", 11, 21)
	require.Equal(t, []string{"20/10/a=real", "20/10/z=z2", "21/11/y=y2"}, merged.out.ids())
	merged.requireConsistent()
}

// A rollback with no prewrite (a failed prewrite, a pessimistic or
// Lock-type lock) waits only until the range publishes past its start_ts;
// Forget then drops it and returns its budget, as TiKV never writes that
// prewrite after the rollback.
func TestForgetDropsRollbacksBelowWatermark(t *testing.T) {
	h := newUnlimited(t)
	h.rollback("a", 10)
	h.rollback("b", 10)
	h.rollback("c", 20)
	require.Equal(t, 3, h.m.Stats().PendingRollbacks)
	h.m.Forget(10)
	require.Equal(t, 3, h.m.Stats().PendingRollbacks, "a resolved ts may equal a lock's start_ts: kept")
	h.m.Forget(11)
	require.Equal(t, 1, h.m.Stats().PendingRollbacks)
	require.Positive(t, h.used())
	h.m.Forget(21)
	require.Zero(t, h.m.Stats().PendingRollbacks)
	require.Zero(t, h.used())
	h.requireConsistent()
}
