package txnmatch

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
)

// sink collects emitted rows (cloned: emit's row is only valid during the
// call).
type sink struct {
	rows []sortbuf.Row
	fail error
}

func (s *sink) emit(r sortbuf.Row) error {
	if s.fail != nil {
		return s.fail
	}
	s.rows = append(s.rows, r.Clone())
	return nil
}

// ids renders rows as "commit/start/key=value".
func (s *sink) ids() []string {
	out := make([]string, len(s.rows))
	for i, r := range s.rows {
		out[i] = rowID(r)
	}
	return out
}

func rowID(r sortbuf.Row) string {
	return fmt.Sprintf("%d/%d/%s=%s", r.CommitTs, r.StartTs, r.Key, r.Value)
}

// harness is a matcher over an in-memory spill store.
type harness struct {
	t      *testing.T
	m      *Matcher
	out    *sink
	spill  sortbuf.SpillStore
	budget *Budget
}

func newHarness(t *testing.T, budget int64) *harness {
	h := &harness{t: t, out: &sink{}, budget: NewBudget(budget)}
	h.spill = sortbuf.NewMemory().Buffer(1).Spill()
	h.m = New(h.spill, h.budget, h.out.emit)
	return h
}

func newUnlimited(t *testing.T) *harness { return newHarness(t, math.MaxInt64) }

func (h *harness) prewrite(key, value string, startTs uint64) {
	h.t.Helper()
	require.NoError(h.t, h.m.Prewrite([]byte(key), sortbuf.OpPut, []byte(value), nil, startTs, 0))
}

func (h *harness) commit(key string, startTs, commitTs uint64) {
	h.t.Helper()
	require.NoError(h.t, h.m.Commit([]byte(key), 0, startTs, commitTs))
}

func (h *harness) rollback(key string, startTs uint64) {
	h.t.Helper()
	require.NoError(h.t, h.m.Rollback([]byte(key), startTs))
}

// spillCount is the number of entries in the spill store.
func (h *harness) spillCount() int {
	n := 0
	require.NoError(h.t, h.spill.ForEach(func(uint64, []byte, []byte) error { n++; return nil }))
	return n
}

// used settles the matcher, as its caller does after each batch, and
// returns what the budget counts.
func (h *harness) used() int64 {
	h.m.Settle()
	return h.budget.Used()
}

// requireConsistent checks the matcher's accounting against its budget.
func (h *harness) requireConsistent() {
	h.t.Helper()
	st := h.m.Stats()
	require.Equal(h.t, h.used(), st.Bytes, "a single matcher holds the whole budget use")
	require.GreaterOrEqual(h.t, st.Bytes, int64(0))
	require.Equal(h.t, int64(h.spillCount()), st.SpilledPrewrites)
}
