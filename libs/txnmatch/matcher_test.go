package txnmatch

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
)

// TestSeedSplitCase is the design's split example at the matcher: the new
// leader's stream (region 3) is read before the old leader's (region 2).
//
//	region 2 idx 1: prewrite b=xxxxxx start 90      (arrives last)
//	region 3 idx 1: commit b start 90 commit 100
//	region 3 idx 2: prewrite b=zzzzzz start 101
//	region 3 idx 3: commit b start 101 commit 105
func TestSeedSplitCase(t *testing.T) {
	h := newUnlimited(t)
	h.commit("b", 90, 100)
	require.Equal(t, uint64(100), h.m.MinPendingCommit(), "the range must not flush past 100")
	h.prewrite("b", "zzzzzz", 101)
	h.commit("b", 101, 105)
	require.Equal(t, []string{"105/101/b=zzzzzz"}, h.out.ids())
	require.Equal(t, uint64(100), h.m.MinPendingCommit())
	h.prewrite("b", "xxxxxx", 90)
	require.Equal(t, []string{"105/101/b=zzzzzz", "100/90/b=xxxxxx"}, h.out.ids())
	require.Zero(t, h.m.MinPendingCommit())
	require.Equal(t, Stats{Emitted: 2}, h.m.Stats())
	h.requireConsistent()
}

func TestEventOrders(t *testing.T) {
	cases := []struct {
		name   string
		events func(h *harness)
		want   []string
		stats  Stats
	}{
		{"prewrite then commit", func(h *harness) {
			h.prewrite("k", "v", 10)
			h.commit("k", 10, 20)
		}, []string{"20/10/k=v"}, Stats{Emitted: 1}},
		{"commit then prewrite", func(h *harness) {
			h.commit("k", 10, 20)
			h.prewrite("k", "v", 10)
		}, []string{"20/10/k=v"}, Stats{Emitted: 1}},
		{"prewrite then rollback", func(h *harness) {
			h.prewrite("k", "v", 10)
			h.rollback("k", 10)
		}, nil, Stats{}},
		{"rollback then prewrite", func(h *harness) {
			h.rollback("k", 10)
			h.prewrite("k", "v", 10)
		}, nil, Stats{}},
		{"prewrite waits", func(h *harness) {
			h.prewrite("k", "v", 10)
		}, nil, Stats{Txns: 1, Prewrites: 1}},
		{"rollback waits", func(h *harness) {
			h.rollback("k", 10)
		}, nil, Stats{PendingRollbacks: 1}},
		{"same key, two transactions", func(h *harness) {
			h.prewrite("k", "a", 10)
			h.prewrite("k", "b", 11)
			h.commit("k", 11, 13)
			h.commit("k", 10, 12)
		}, []string{"13/11/k=b", "12/10/k=a"}, Stats{Emitted: 2}},
		{"commit and rollback both wait: commit wins", func(h *harness) {
			h.commit("k", 10, 20)
			h.rollback("k", 10)
			h.prewrite("k", "v", 10)
		}, []string{"20/10/k=v"}, Stats{Emitted: 1}},
		{"rollback then commit wait: commit wins", func(h *harness) {
			h.rollback("k", 10)
			h.commit("k", 10, 20)
			h.prewrite("k", "v", 10)
		}, []string{"20/10/k=v"}, Stats{Emitted: 1}},
		{"repeated prewrite", func(h *harness) {
			h.prewrite("k", "v", 10)
			h.prewrite("k", "v", 10)
			h.commit("k", 10, 20)
		}, []string{"20/10/k=v"}, Stats{Emitted: 1, Superseded: 1}},
		{"repeated commit while pending", func(h *harness) {
			h.commit("k", 10, 20)
			h.commit("k", 10, 20)
			h.prewrite("k", "v", 10)
		}, []string{"20/10/k=v"}, Stats{Emitted: 1}},
		{"repeated rollback while pending", func(h *harness) {
			h.rollback("k", 10)
			h.rollback("k", 10)
			h.prewrite("k", "v", 10)
		}, nil, Stats{}},
		{"commit repeated after match waits", func(h *harness) {
			h.prewrite("k", "v", 10)
			h.commit("k", 10, 20)
			h.commit("k", 10, 20)
		}, []string{"20/10/k=v"}, Stats{Emitted: 1, PendingCommits: 1}},
		{"rollback repeated after match waits", func(h *harness) {
			h.prewrite("k", "v", 10)
			h.rollback("k", 10)
			h.rollback("k", 10)
		}, nil, Stats{PendingRollbacks: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newUnlimited(t)
			c.events(h)
			require.Equal(t, c.want, nilIfNone(h.out.ids()))
			st := h.m.Stats()
			st.Bytes = 0
			require.Equal(t, c.stats, st)
			h.requireConsistent()
		})
	}
}

func nilIfNone(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestRowFields(t *testing.T) {
	h := newUnlimited(t)
	require.NoError(t, h.m.Prewrite([]byte("a"), sortbuf.OpPut, []byte("new"), []byte("old"), 10, 0))
	require.NoError(t, h.m.Prewrite([]byte("b"), sortbuf.OpDelete, nil, []byte("gone"), 10, 0))
	require.NoError(t, h.m.Prewrite([]byte("c"), sortbuf.OpPut, []byte("v"), nil, 10, 0))
	require.NoError(t, h.m.Commit([]byte("a"), 0, 10, 20))
	require.NoError(t, h.m.Commit([]byte("b"), 0, 10, 20))
	require.NoError(t, h.m.Commit([]byte("c"), sortbuf.OpDelete, 10, 20), "the commit's op wins when given")
	require.NoError(t, h.m.Commit([]byte("d"), sortbuf.OpDelete, 10, 20))
	require.NoError(t, h.m.Prewrite([]byte("d"), sortbuf.OpPut, nil, []byte("o"), 10, 0)) // a lock refresh: ignored
	require.NoError(t, h.m.Prewrite([]byte("d"), sortbuf.OpPut, []byte("dv"), []byte("o"), 10, 0))
	require.NoError(t, h.m.Committed(sortbuf.Row{CommitTs: 7, StartTs: 7, Op: sortbuf.OpPut, Key: []byte("1pc"), Value: []byte("x")}))
	want := []sortbuf.Row{
		{CommitTs: 20, StartTs: 10, Op: sortbuf.OpPut, Key: []byte("a"), Value: []byte("new"), OldValue: []byte("old")},
		{CommitTs: 20, StartTs: 10, Op: sortbuf.OpDelete, Key: []byte("b"), OldValue: []byte("gone")},
		{CommitTs: 20, StartTs: 10, Op: sortbuf.OpDelete, Key: []byte("c"), Value: []byte("v")},
		{CommitTs: 20, StartTs: 10, Op: sortbuf.OpDelete, Key: []byte("d"), Value: []byte("dv"), OldValue: []byte("o")},
		{CommitTs: 7, StartTs: 7, Op: sortbuf.OpPut, Key: []byte("1pc"), Value: []byte("x")},
	}
	require.Equal(t, want, h.out.rows)
}

func TestInvalidEvents(t *testing.T) {
	h := newUnlimited(t)
	cases := []error{
		h.m.Prewrite([]byte("k"), 0, nil, nil, 1, 0),
		h.m.Prewrite([]byte("k"), 9, nil, nil, 1, 0),
		h.m.Commit([]byte("k"), 0, 1, 0),
		h.m.Commit([]byte("k"), 5, 1, 2),
		h.m.Committed(sortbuf.Row{CommitTs: 0, Op: sortbuf.OpPut}),
		h.m.Committed(sortbuf.Row{CommitTs: 3, Op: 0}),
	}
	for i, err := range cases {
		require.ErrorIs(t, err, ErrInvalidEvent, "case %d", i)
	}
	require.Equal(t, Stats{}, h.m.Stats())
}

func TestEmitErrorKeepsPrewrite(t *testing.T) {
	h := newUnlimited(t)
	h.prewrite("k", "v", 10)
	boom := errors.New("boom")
	h.out.fail = boom
	require.ErrorIs(t, h.m.Commit([]byte("k"), 0, 10, 20), boom)
	require.Equal(t, 1, h.m.Stats().Prewrites, "a failed emit loses nothing")
	h.out.fail = nil
	h.commit("k", 10, 20)
	require.Equal(t, []string{"20/10/k=v"}, h.out.ids())

	h.commit("j", 11, 21)
	h.out.fail = boom
	require.ErrorIs(t, h.m.Prewrite([]byte("j"), sortbuf.OpPut, []byte("w"), nil, 11, 0), boom)
	require.Equal(t, uint64(21), h.m.MinPendingCommit(), "the commit still waits")
	h.out.fail = nil
	h.prewrite("j", "w", 11)
	require.Zero(t, h.m.MinPendingCommit())
}

func TestPendingCommitsInspection(t *testing.T) {
	h := newUnlimited(t)
	h.commit("a", 10, 30)
	h.commit("b", 11, 20)
	h.commit("c", 12, 25)
	require.Equal(t, uint64(20), h.m.MinPendingCommit())
	seen := map[string]uint64{}
	h.m.PendingCommits(func(key []byte, startTs, commitTs uint64) bool {
		seen[string(key)] = commitTs
		return true
	})
	require.Equal(t, map[string]uint64{"a": 30, "b": 20, "c": 25}, seen)
	n := 0
	h.m.PendingCommits(func([]byte, uint64, uint64) bool { n++; return false })
	require.Equal(t, 1, n, "returning false stops")

	h.m.DropPendingCommit([]byte("b"), 11)
	require.Equal(t, uint64(25), h.m.MinPendingCommit())
	h.m.DropPendingCommit([]byte("b"), 11) // twice is harmless
	h.m.DropPendingCommit([]byte("a"), 99) // wrong start_ts: nothing
	require.Equal(t, 2, h.m.Stats().PendingCommits)
	h.prewrite("c", "v", 12)
	require.Equal(t, uint64(30), h.m.MinPendingCommit())
	h.m.DropPendingCommit([]byte("a"), 10)
	require.Zero(t, h.m.MinPendingCommit())
	h.requireConsistent()
	require.Zero(t, h.used())
}

func TestPendingRollbacksInspection(t *testing.T) {
	h := newUnlimited(t)
	h.rollback("a", 10)
	h.rollback("b", 11)
	var seen []string
	h.m.PendingRollbacks(func(key []byte, startTs uint64) bool {
		seen = append(seen, string(key))
		return true
	})
	require.ElementsMatch(t, []string{"a", "b"}, seen)
	h.m.DropPendingRollback([]byte("a"), 10)
	h.m.DropPendingRollback([]byte("a"), 10)
	require.Equal(t, 1, h.m.Stats().PendingRollbacks)
	h.prewrite("a", "v", 10)
	require.Equal(t, 1, h.m.Stats().Prewrites, "a dropped rollback no longer drops its prewrite")
	h.requireConsistent()
}

func TestBudgetSharedAndReleased(t *testing.T) {
	budget := NewBudget(1 << 30)
	out := &sink{}
	a := New(sortbuf.NewMemory().Buffer(1).Spill(), budget, out.emit)
	b := New(sortbuf.NewMemory().Buffer(2).Spill(), budget, out.emit)
	require.NoError(t, a.Prewrite([]byte("k"), sortbuf.OpPut, make([]byte, 1000), nil, 1, 0))
	require.NoError(t, b.Prewrite([]byte("k"), sortbuf.OpPut, make([]byte, 500), nil, 1, 0))
	require.NoError(t, b.Commit([]byte("x"), 0, 5, 6))
	a.Settle()
	b.Settle()
	require.Equal(t, a.Stats().Bytes+b.Stats().Bytes, budget.Used())
	require.Greater(t, a.Stats().Bytes, int64(1000))
	a.Close()
	require.Equal(t, b.Stats().Bytes, budget.Used())
	require.Equal(t, Stats{}, a.Stats())
	require.NoError(t, a.Prewrite([]byte("k"), sortbuf.OpPut, nil, nil, 2, 0), "a closed matcher is empty, not broken")
}
