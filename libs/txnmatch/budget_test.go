package txnmatch

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
)

func TestBudgetStep(t *testing.T) {
	for _, c := range []struct{ limit, step int64 }{
		{1 << 30, maxStep}, {64 * maxStep, maxStep}, {1 << 20, 16 << 10}, {100, 1}, {10, 0}, {0, 0}, {-5, 0},
	} {
		require.Equal(t, c.step, NewBudget(c.limit).step, "limit %d", c.limit)
	}
}

// A matcher's small charges stay its own until they reach the step or it
// is settled; a charge past the step is passed on at once.
func TestChargesSettleInSteps(t *testing.T) {
	budget := NewBudget(1 << 30)
	out := &sink{}
	a := New(sortbuf.NewMemory().Buffer(1).Spill(), budget, out.emit)
	b := New(sortbuf.NewMemory().Buffer(2).Spill(), budget, out.emit)

	require.NoError(t, a.Prewrite([]byte("k"), sortbuf.OpPut, make([]byte, 100), nil, 1, 0))
	require.NoError(t, b.Commit([]byte("x"), 0, 5, 6))
	require.Positive(t, a.Stats().Bytes)
	require.Positive(t, b.Stats().Bytes)
	require.Zero(t, budget.Used(), "small charges wait for the step or a settle")
	a.Settle()
	require.Equal(t, a.Stats().Bytes, budget.Used())
	b.Settle()
	require.Equal(t, a.Stats().Bytes+b.Stats().Bytes, budget.Used())

	require.NoError(t, a.Prewrite([]byte("big"), sortbuf.OpPut, make([]byte, maxStep), nil, 2, 0))
	require.Equal(t, a.Stats().Bytes+b.Stats().Bytes, budget.Used(), "a charge past the step is passed on")

	// Many small charges: never more than a step unsettled.
	for i := range 2000 {
		require.NoError(t, b.Prewrite(fmt.Appendf(nil, "r%d", i), sortbuf.OpPut, make([]byte, 200), nil, 10, 0))
		unsettled := a.Stats().Bytes + b.Stats().Bytes - budget.Used()
		require.GreaterOrEqual(t, unsettled, int64(0))
		require.LessOrEqual(t, unsettled, budget.step, "prewrite %d", i)
	}
	for i := range 2000 {
		require.NoError(t, b.Commit(fmt.Appendf(nil, "r%d", i), 0, 10, 11))
		unsettled := a.Stats().Bytes + b.Stats().Bytes - budget.Used()
		require.LessOrEqual(t, max(unsettled, -unsettled), budget.step, "commit %d", i)
	}
	b.Settle()
	require.Equal(t, a.Stats().Bytes+b.Stats().Bytes, budget.Used())

	// Methods other than the per-event ones leave the matcher settled.
	require.NoError(t, a.Commit([]byte("w"), 0, 20, 21))
	a.DropPendingCommit([]byte("w"), 20)
	require.Equal(t, a.Stats().Bytes+b.Stats().Bytes, budget.Used())
	require.NoError(t, a.Commit([]byte("w"), 0, 30, 31))
	a.Close()
	b.Close()
	require.Zero(t, budget.Used())
}

// A matcher decides to spill on its own unsettled charges too: alone on a
// budget, it never holds more than the limit after a prewrite, though the
// shared counter lags it by up to a step.
func TestSpillCountsUnsettledCharges(t *testing.T) {
	const limit = 1 << 20
	h := newHarness(t, limit)
	require.Equal(t, int64(16<<10), h.budget.step)
	for i := range 2000 {
		require.NoError(t, h.m.Prewrite(fmt.Appendf(nil, "k%d", i), sortbuf.OpPut, make([]byte, 3000), nil, uint64(10+i), 0))
		require.LessOrEqual(t, h.m.Stats().Bytes, int64(limit), "prewrite %d", i)
	}
	require.Positive(t, h.m.Stats().SpilledTxns)
	h.requireConsistent()
}
