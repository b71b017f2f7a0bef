package txnmatch

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
)

type eventKind int

const (
	evPrewrite eventKind = iota
	evCommit
	evRollback
	evCommitted
)

type event struct {
	kind              eventKind
	key               string
	startTs, commitTs uint64
	value             string
}

// scenario is a random set of transactions as one arrival order of their
// events, with the rows that must come out.
type scenario struct {
	events    []event
	committed map[string]bool // rowID of every committed row
}

// genScenario makes txns transactions over a small key space (so they
// share keys): 70% two-phase committed, 20% rolled back, 10% 1PC, with
// values of 1-300 bytes. All events are shuffled: any order is possible
// upstream once splits and leader moves interleave stores. With dups, a
// fifth of the events are delivered twice, at random places.
func genScenario(seed uint64, txns int, dups bool) scenario {
	rng := rand.New(rand.NewPCG(seed, 99))
	sc := scenario{committed: map[string]bool{}}
	for i := 0; i < txns; i++ {
		startTs := uint64(1000 + 10*i + rng.IntN(5))
		commitTs := startTs + 1 + uint64(rng.IntN(50))
		fate := rng.IntN(10)
		used := map[string]bool{}
		for k := 0; k < 1+rng.IntN(8); k++ {
			key := fmt.Sprintf("k%02d", rng.IntN(40))
			if used[key] {
				continue
			}
			used[key] = true
			// Never empty: a PUT with an empty value is a lock refresh.
			value := strings.Repeat(string(rune('a'+i%26)), 1+rng.IntN(300))
			switch {
			case fate < 7:
				sc.events = append(sc.events,
					event{kind: evPrewrite, key: key, startTs: startTs, value: value},
					event{kind: evCommit, key: key, startTs: startTs, commitTs: commitTs})
				sc.committed[fmt.Sprintf("%d/%d/%s=%s", commitTs, startTs, key, value)] = true
			case fate < 9:
				sc.events = append(sc.events,
					event{kind: evPrewrite, key: key, startTs: startTs, value: value},
					event{kind: evRollback, key: key, startTs: startTs})
			default:
				sc.events = append(sc.events,
					event{kind: evCommitted, key: key, startTs: startTs, commitTs: commitTs, value: value})
				sc.committed[fmt.Sprintf("%d/%d/%s=%s", commitTs, startTs, key, value)] = true
			}
		}
	}
	rng.Shuffle(len(sc.events), func(i, j int) { sc.events[i], sc.events[j] = sc.events[j], sc.events[i] })
	if dups {
		n := len(sc.events)
		for i := 0; i < n/5; i++ {
			e := sc.events[rng.IntN(n)]
			at := rng.IntN(len(sc.events) + 1)
			sc.events = append(sc.events[:at], append([]event{e}, sc.events[at:]...)...)
		}
	}
	return sc
}

func (h *harness) apply(e event) {
	h.t.Helper()
	switch e.kind {
	case evPrewrite:
		h.prewrite(e.key, e.value, e.startTs)
	case evCommit:
		h.commit(e.key, e.startTs, e.commitTs)
	case evRollback:
		h.rollback(e.key, e.startTs)
	case evCommitted:
		require.NoError(h.t, h.m.Committed(sortbuf.Row{
			CommitTs: e.commitTs, StartTs: e.startTs, Op: sortbuf.OpPut,
			Key: []byte(e.key), Value: []byte(e.value),
		}))
	}
}

func (h *harness) applyAll(events []event) {
	h.t.Helper()
	for _, e := range events {
		h.apply(e)
	}
}

func TestRandomInterleavings(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		sc := genScenario(seed, 60, false)
		h := newUnlimited(t)
		h.applyAll(sc.events)
		got := map[string]int{}
		for _, id := range h.out.ids() {
			got[id]++
		}
		for id, n := range got {
			require.True(t, sc.committed[id], "seed %d: phantom row %s", seed, id)
			require.Equal(t, 1, n, "seed %d: row %s emitted %d times", seed, id, n)
		}
		require.Len(t, got, len(sc.committed), "seed %d: every committed row comes out", seed)
		require.Zero(t, h.m.MinPendingCommit())
		require.Equal(t, Stats{Emitted: uint64(len(sc.committed))}, h.m.Stats(), "seed %d", seed)
		require.Zero(t, h.used())
	}
}

// TestRandomWithDuplicates delivers a fifth of the events twice. The caller
// side is played as the sorter would: rows go to an idempotent sorter
// buffer, and waiting commits whose row the buffer has are dropped.
func TestRandomWithDuplicates(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		sc := genScenario(seed, 60, true)
		h := newUnlimited(t)
		h.applyAll(sc.events)
		for _, id := range h.out.ids() {
			require.True(t, sc.committed[id], "seed %d: phantom row %s", seed, id)
		}
		buf := sortbuf.NewMemory().Buffer(1)
		for _, r := range h.out.rows {
			require.NoError(t, buf.Add(r))
		}
		type pc struct {
			key     string
			startTs uint64
		}
		var dupCommits []pc
		h.m.PendingCommits(func(key []byte, startTs, commitTs uint64) bool {
			ok, err := buf.Has(commitTs, startTs, key)
			require.NoError(t, err)
			require.True(t, ok, "seed %d: a commit still waiting at the end is a repeat of an emitted row", seed)
			dupCommits = append(dupCommits, pc{string(key), startTs})
			return true
		})
		for _, c := range dupCommits {
			h.m.DropPendingCommit([]byte(c.key), c.startTs)
		}
		require.Zero(t, h.m.MinPendingCommit())
		var stored []string
		require.NoError(t, buf.Scan(^uint64(0), func(r sortbuf.Row) error {
			stored = append(stored, rowID(r))
			return nil
		}))
		require.Len(t, stored, len(sc.committed), "seed %d", seed)
		for _, id := range stored {
			require.True(t, sc.committed[id])
		}
	}
}

// TestSpillGivesSameOutput runs each scenario with no memory limit, with a
// small one and with none at all: the rows and their order must not change.
func TestSpillGivesSameOutput(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		sc := genScenario(seed, 80, seed%2 == 0)
		ref := newUnlimited(t)
		ref.applyAll(sc.events)
		for _, budget := range []int64{4 << 10, 1} {
			h := newHarness(t, budget)
			h.applyAll(sc.events)
			require.Equal(t, ref.out.ids(), h.out.ids(), "seed %d budget %d", seed, budget)
			require.Positive(t, h.m.Stats().Spills, "seed %d budget %d: something spilled", seed, budget)
			require.Equal(t, ref.m.MinPendingCommit(), h.m.MinPendingCommit())
			h.requireConsistent()
			if seed%2 == 1 { // without duplicates nothing is left behind
				require.Zero(t, h.spillCount(), "seed %d: matched spilled rows are deleted", seed)
				require.Zero(t, h.m.Stats().SpilledTxns)
				require.Zero(t, h.used())
			}
		}
	}
}

func TestSpilledTransactionRoutesLaterEvents(t *testing.T) {
	h := newHarness(t, 1) // every prewrite spills its transaction at once
	h.prewrite("a", "1", 10)
	require.Equal(t, Stats{SpilledTxns: 1, SpilledPrewrites: 1, Spills: 1}, h.m.Stats())
	h.prewrite("b", "2", 10)
	h.prewrite("b", "2", 10) // repeated: counted once
	h.prewrite("c", "3", 10)
	require.Equal(t, int64(3), h.m.Stats().SpilledPrewrites)
	h.commit("a", 10, 20)
	h.rollback("b", 10)
	h.rollback("b", 10) // repeated after match: waits
	require.Equal(t, []string{"20/10/a=1"}, h.out.ids())
	require.Equal(t, 1, h.spillCount())
	h.commit("c", 10, 20)
	require.Zero(t, h.spillCount())
	require.Equal(t, Stats{PendingRollbacks: 1, Emitted: 2, Spills: 1, Superseded: 1, Bytes: h.m.Stats().Bytes}, h.m.Stats())
	h.requireConsistent()
}
