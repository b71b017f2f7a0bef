package txnmatch

import (
	"bytes"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func leftKey(k []byte) bool  { return string(k) < "k20" }
func rightKey(k []byte) bool { return !leftKey(k) }

// splitHarness restores the share of h's state that keep selects into a
// fresh harness with the given budget.
func splitHarness(t *testing.T, h *harness, keep func([]byte) bool, budget int64) *harness {
	var snap bytes.Buffer
	require.NoError(t, h.m.SnapshotKeys(&snap, keep))
	part := newHarness(t, budget)
	for _, e := range saveSpill(t, h.spill) {
		if keep(e.key) {
			require.NoError(t, part.spill.Put(e.startTs, e.key, e.value))
		}
	}
	require.NoError(t, part.m.Restore(bytes.NewReader(snap.Bytes())))
	return part
}

// mergeHarnesses merges the states of parts (over disjoint keys) into a
// fresh harness.
func mergeHarnesses(t *testing.T, budget int64, parts ...*harness) *harness {
	var snaps [][]byte
	out := newHarness(t, budget)
	for _, p := range parts {
		var b bytes.Buffer
		require.NoError(t, p.m.Snapshot(&b))
		snaps = append(snaps, b.Bytes())
		for _, e := range saveSpill(t, p.spill) {
			require.NoError(t, out.spill.Put(e.startTs, e.key, e.value))
		}
	}
	var merged bytes.Buffer
	require.NoError(t, MergeSnapshots(&merged, func(startTs uint64, key, value []byte) error {
		return out.spill.Put(startTs, key, value)
	}, snaps...))
	require.NoError(t, out.m.Restore(bytes.NewReader(merged.Bytes())))
	return out
}

func sortedIDs(hs ...*harness) []string {
	var ids []string
	for _, h := range hs {
		ids = append(ids, h.out.ids()...)
	}
	slices.Sort(ids)
	return ids
}

// TestSplitAndMergeGiveSameOutput runs each scenario a third of the way in
// one matcher, splits its state by key into two matchers (fed the events of
// their keys), merges those back into one after two thirds, and finishes:
// the rows emitted over the whole run are the uninterrupted run's, and so
// is what is left waiting. Budgets differ between the halves so that one
// half spills transactions the other holds in memory, which the merge must
// reconcile.
func TestSplitAndMergeGiveSameOutput(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		sc := genScenario(seed, 80, seed%2 == 0)
		budgets := []int64{1 << 40, 2 << 10, 1}
		bud := budgets[seed%3]
		ref := newHarness(t, 1<<40)
		ref.applyAll(sc.events)

		third := len(sc.events) / 3
		whole := newHarness(t, bud)
		whole.applyAll(sc.events[:third])
		left := splitHarness(t, whole, leftKey, budgets[(seed+1)%3])
		right := splitHarness(t, whole, rightKey, budgets[(seed+2)%3])
		for _, e := range sc.events[third : 2*third] {
			if leftKey([]byte(e.key)) {
				left.apply(e)
			} else {
				right.apply(e)
			}
		}
		merged := mergeHarnesses(t, bud, left, right)
		merged.applyAll(sc.events[2*third:])

		require.Equal(t, sortedIDs(ref), sortedIDs(whole, left, right, merged), "seed %d", seed)
		require.Equal(t, ref.m.MinPendingCommit(), merged.m.MinPendingCommit(), "seed %d", seed)
		st, rst := merged.m.Stats(), ref.m.Stats()
		require.Equal(t, rst.PendingCommits, st.PendingCommits, "seed %d", seed)
		require.Equal(t, rst.PendingRollbacks, st.PendingRollbacks, "seed %d", seed)
		require.Equal(t, int64(rst.Prewrites)+rst.SpilledPrewrites, int64(st.Prewrites)+st.SpilledPrewrites, "seed %d", seed)
		merged.requireConsistent()
	}
}

// A transaction spilled on one side and in memory on the other comes out
// of the merge spilled whole, and its commits find every row.
func TestMergeRespillsMixedTransaction(t *testing.T) {
	a := newHarness(t, 1) // spills at once
	a.prewrite("a", "1", 10)
	b := newUnlimited(t)
	b.prewrite("z", "2", 10)
	b.prewrite("y", "3", 10)
	m := mergeHarnesses(t, 1<<40, a, b)
	require.Equal(t, Stats{SpilledTxns: 1, SpilledPrewrites: 3}, m.m.Stats())
	require.Equal(t, 3, m.spillCount())
	m.commit("a", 10, 20)
	m.commit("y", 10, 20)
	m.commit("z", 10, 20)
	require.Equal(t, []string{"20/10/a=1", "20/10/y=3", "20/10/z=2"}, m.out.ids())
	require.Zero(t, m.spillCount())
	m.requireConsistent()
}

func TestMergeRejectsOverlap(t *testing.T) {
	a, b := newUnlimited(t), newUnlimited(t)
	a.prewrite("k", "1", 10)
	b.prewrite("k", "1", 10)
	var sa, sb, out bytes.Buffer
	require.NoError(t, a.m.Snapshot(&sa))
	require.NoError(t, b.m.Snapshot(&sb))
	err := MergeSnapshots(&out, func(uint64, []byte, []byte) error { return nil }, sa.Bytes(), sb.Bytes())
	require.ErrorIs(t, err, ErrCorruptSnapshot)
	require.ErrorIs(t, MergeSnapshots(&out, nil, []byte("junk")), ErrCorruptSnapshot)
}

// The share of a key span leaves out transactions with no key in it, and
// the snapshot of everything equals Snapshot.
func TestSnapshotKeysFilters(t *testing.T) {
	h := newHarness(t, 2<<10)
	h.applyAll(genScenario(3, 60, false).events[:150])
	require.Positive(t, h.m.Stats().SpilledTxns)
	var all, full bytes.Buffer
	require.NoError(t, h.m.Snapshot(&all))
	require.NoError(t, h.m.SnapshotKeys(&full, func([]byte) bool { return true }))
	require.Equal(t, all.Bytes(), full.Bytes())
	none := splitHarness(t, h, func([]byte) bool { return false }, 1<<40)
	require.Equal(t, Stats{}, none.m.Stats())
}
