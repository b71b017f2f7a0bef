package watermark

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewRejectsEmptySpan(t *testing.T) {
	for _, tc := range []struct{ start, end string }{{"b", "a"}, {"b", "b"}} {
		_, err := New(k(tc.start), k(tc.end))
		require.ErrorIs(t, err, ErrBadSpan, "[%q,%q)", tc.start, tc.end)
	}
	m := mustNew(t, "", "")
	s, e := m.Span()
	require.Empty(t, s)
	require.Nil(t, e)
}

// TestBadInput: every kind of bad record is ignored and counted, and leaves
// the watermark where it was.
func TestBadInput(t *testing.T) {
	x := Ref{RegionID: 1, Version: 3, Term: 5}
	y := Ref{RegionID: 2, Version: 4, Term: 5}
	preds := make([]Ref, maxPreds+1)
	for i := range preds {
		preds[i] = Ref{RegionID: uint64(10 + i), Version: 1, Term: 1}
	}
	for _, tc := range []struct {
		name  string
		apply func(m *Map)
		want  func(c Counters) uint64
	}{
		{"resolved ts going backwards", func(m *Map) { m.Resolved(x, 50) },
			func(c Counters) uint64 { return c.Regressed }},
		{"resolved ts of an unknown incarnation", func(m *Map) { m.Resolved(y, 500) },
			func(c Counters) uint64 { return c.UnknownIncarnation }},
		{"END of an unknown incarnation", func(m *Map) { m.End(y, 500) },
			func(c Counters) uint64 { return c.UnknownIncarnation }},
		{"START with start > end", func(m *Map) { m.Start(y, k("c"), k("b"), nil) },
			func(c Counters) uint64 { return c.BadRange }},
		{"START with start == end", func(m *Map) { m.Start(y, k("b"), k("b"), nil) },
			func(c Counters) uint64 { return c.BadRange }},
		{"START outside the span", func(m *Map) { m.Start(y, k("x"), k("z"), nil) },
			func(c Counters) uint64 { return c.OutsideSpan }},
		{"START of region id 0", func(m *Map) { m.Start(Ref{Version: 9, Term: 9}, k("a"), k("b"), nil) },
			func(c Counters) uint64 { return c.InvalidRef }},
		{"START naming itself", func(m *Map) { m.Start(y, k("a"), k("b"), []Ref{y}) },
			func(c Counters) uint64 { return c.BadPredecessor }},
		{"START naming a newer predecessor (a cycle)",
			func(m *Map) { m.Start(Ref{RegionID: 3, Version: 2, Term: 1}, k("a"), k("b"), []Ref{y}) },
			func(c Counters) uint64 { return c.BadPredecessor }},
		{"START naming the zero Ref", func(m *Map) { m.Start(y, k("a"), k("b"), []Ref{{}}) },
			func(c Counters) uint64 { return c.BadPredecessor }},
		{"START with too many predecessors", func(m *Map) { m.Start(y, k("a"), k("b"), preds) },
			func(c Counters) uint64 { return c.BadPredecessor }},
		{"duplicate START", func(m *Map) { m.Start(x, k("a"), k("b"), nil) },
			func(c Counters) uint64 { return c.DuplicateStart }},
		{"garbage keys", func(m *Map) { m.Start(y, []byte{0xff, 0, 0xfe}, []byte{0xff, 0xff}, []Ref{{RegionID: 7}}) },
			func(c Counters) uint64 { return c.OutsideSpan }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustNew(t, "a", "c")
			m.Start(x, k("a"), k("c"), nil)
			m.Resolved(x, 100)
			before := fingerprint(m)
			require.NotPanics(t, func() { tc.apply(m) })
			require.Equal(t, before, fingerprint(m))
			require.Equal(t, uint64(1), tc.want(m.Stats().Counters))
			checkInvariants(t, m)
		})
	}
}

func TestAfterEndAndDuplicateEnd(t *testing.T) {
	x := Ref{RegionID: 1, Version: 1, Term: 1}
	m := mustNew(t, "", "")
	m.Start(x, nil, nil, nil)
	m.End(x, 100)
	m.Resolved(x, 200) // after the END: ignored
	m.Resolved(x, 90)  // a re-delivered older record
	m.End(x, 300)
	st := m.Stats()
	require.Equal(t, uint64(100), st.Published)
	require.Equal(t, uint64(1), st.AfterEnd)
	require.Equal(t, uint64(1), st.Regressed)
	require.Equal(t, uint64(1), st.DuplicateEnd)
}

// TestVersionConflict: two regions of one version overlapping (TiKV never
// does that) resolve deterministically, by term then region id, and count.
func TestVersionConflict(t *testing.T) {
	a := Ref{RegionID: 8, Version: 4, Term: 2}
	b := Ref{RegionID: 5, Version: 4, Term: 2}
	for _, order := range [][]Ref{{a, b}, {b, a}} {
		m := mustNew(t, "", "")
		for i, r := range order {
			m.Start(r, k("a"), k("c"), nil)
			m.Resolved(r, uint64(100*(i+1)))
		}
		require.Contains(t, entriesString(m), "[a,c)r8/v4/t2")
		require.Equal(t, uint64(1), m.Stats().VersionConflicts)
	}
}

// TestOlderBootstrapArrivingLate: a newer incarnation owns the keys; an
// older one started afterwards (a late bootstrap) must not take them back.
func TestOlderBootstrapArrivingLate(t *testing.T) {
	old := Ref{RegionID: 1, Version: 1, Term: 5}
	next := Ref{RegionID: 1, Version: 1, Term: 6}
	m := mustNew(t, "", "")
	m.Start(next, k("a"), k("c"), nil)
	m.Resolved(next, 100)
	m.Start(old, k("a"), k("d"), nil)
	m.Resolved(old, 300)
	require.Equal(t, "[,a)hole=0 [a,c)r1/v1/t6=100 [c,d)r1/v1/t5=300 [d,+)hole=0", entriesString(m))
}

// TestLongPredecessorChain: 100,000 leader transfers delivered newest first
// wait on each other; the root's END completes them all by iteration, not
// recursion, and only the newest survives.
func TestLongPredecessorChain(t *testing.T) {
	const n = 100_000
	m := mustNew(t, "", "")
	ref := func(i int) Ref { return Ref{RegionID: 1, Version: 1, Term: uint64(i + 1)} }
	for i := n - 1; i >= 1; i-- {
		m.Start(ref(i), nil, nil, []Ref{ref(i - 1)})
		m.Resolved(ref(i), uint64(i))
		if i < n-1 {
			m.End(ref(i), uint64(i))
		}
	}
	require.Equal(t, n-1, m.Stats().Pending)
	m.Start(ref(0), nil, nil, nil)
	m.End(ref(0), 0)
	st := m.Stats()
	require.Equal(t, 1, st.Incarnations)
	require.Equal(t, uint64(n-1), st.Published)
	checkInvariants(t, m)
}

// TestGarbageInput throws random records with random refs, keys, ts and
// predecessor lists at a map: no panic, invariants hold throughout, the
// watermark never goes backwards.
func TestGarbageInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		m := mustNew(t, "b", "y")
		for range 300 {
			prev := m.Watermark()
			randomOp(rng, m)
			require.GreaterOrEqual(t, m.Watermark(), prev)
		}
		checkInvariants(t, m)
	}
}

func randomOp(rng *rand.Rand, m *Map) {
	ref := func() Ref {
		return Ref{RegionID: uint64(rng.IntN(6)), Version: uint64(rng.IntN(5)), Term: uint64(rng.IntN(3))}
	}
	key := func() []byte {
		if rng.IntN(8) == 0 {
			return nil
		}
		return []byte{byte('a' + rng.IntN(26))}
	}
	refs := func() []Ref {
		var out []Ref
		for range rng.IntN(4) {
			out = append(out, ref())
		}
		return out
	}
	store := uint64(rng.IntN(3)) // 0: unknown
	switch rng.IntN(8) {
	case 0:
		m.Start(ref(), key(), key(), refs())
	case 1:
		m.StartFrom(store, ref(), key(), key(), refs())
	case 2:
		m.End(ref(), uint64(rng.IntN(1000)))
	case 3:
		// Store groups (format version 2): a round and a full leader list.
		m.LeaderResolvedFrom(store, uint64(rng.IntN(1000)), refs())
	case 4:
		m.LeadersFrom(store, refs())
	default:
		m.Resolved(ref(), uint64(rng.IntN(1000)))
	}
}

// TestOverlappingPredecessors: predecessors of one START never overlap in
// TiKV. If they do, a key both cover waits for both.
func TestOverlappingPredecessors(t *testing.T) {
	p := Ref{RegionID: 1, Version: 1, Term: 1}
	q := Ref{RegionID: 2, Version: 1, Term: 1}
	x := Ref{RegionID: 3, Version: 2, Term: 1}
	m := mustNew(t, "a", "d")
	m.Start(p, k("a"), k("c"), nil)
	m.Resolved(p, 10)
	m.End(p, 10)
	m.Start(q, k("b"), k("d"), nil)
	m.Resolved(q, 20)
	m.Start(x, k("a"), k("d"), []Ref{p, q})
	m.Resolved(x, 50)
	require.Equal(t, "[a,b)r3/v2/t1=50 [b,d)r2/v1/t1=20", entriesString(m))
	m.End(q, 20)
	require.Equal(t, "[a,d)r3/v2/t1=50", entriesString(m))
	checkInvariants(t, m)
}

// TestBootstrapOverLiveIncarnation: store A's first file bootstraps region 1
// term 5; the leadership moves to store B before B's first file is cut, so
// B's first file bootstraps term 6 without a predecessor. If A's START is
// read first, term 6 waits for A's END as if it named term 5.
func TestBootstrapOverLiveIncarnation(t *testing.T) {
	a := Ref{RegionID: 1, Version: 1, Term: 5}
	b := Ref{RegionID: 1, Version: 1, Term: 6}
	m := mustNew(t, "a", "d")
	runSteps(t, m, []step{
		start("A: START term 5", a, "b", "c", 0),
		resolved("A: resolved 10", a, 10, 0),
		start("B: START term 6 (bootstrap)", b, "a", "d", 0),
		resolved("B: resolved 90", b, 90, 10),
		resolved("A: resolved 20", a, 20, 20),
		end("A: END", a, 20, 90),
	})
	require.Equal(t, uint64(1), m.Stats().BootstrapWaits)
	require.Equal(t, "[a,d)r1/v1/t6=90", entriesString(m))
}
