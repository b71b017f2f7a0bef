package watermark

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGCKeepsTableAtLiveRegions: after 10,000 random splits, merges,
// transfers and resolved ts, all delivered in a random interleaving, the
// table holds exactly the live incarnations over the span and the entries
// are about one per live region.
func TestGCKeepsTableAtLiveRegions(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 1))
	h := genHistoryMix(rng, 4, 400, 20_000, mix{split: 25, merge: 12, transfer: 13, crash: 4})
	for _, span := range []keyRange{{}, {"k00100", "k00300x"}} {
		m := mustNew(t, span.start, span.end)
		delivered := make([]int, len(h.streams))
		peak := 0
		for _, s := range interleave(rng, h) {
			h.streams[s][delivered[s]].apply(m)
			delivered[s]++
			peak = max(peak, m.Stats().Incarnations)
		}
		checkInvariants(t, m)
		live := 0
		for _, x := range h.live {
			if !(keyRange{x.start, x.end}).intersect(span).empty() {
				live++
			}
		}
		st := m.Stats()
		t.Logf("span %q: %d incarnations in history, %d live, table %d (peak %d), entries %d",
			span, len(h.incs), live, st.Incarnations, peak, st.Entries)
		require.Greater(t, len(h.incs), 5000)
		require.Equal(t, live, st.Incarnations)
		require.Zero(t, st.Pending)
		require.GreaterOrEqual(t, st.Entries, live)
		require.LessOrEqual(t, st.Entries, 2*live)
		require.Equal(t, newOracle(h, span).final(), m.Watermark())
	}
}

// TestStaleStartAfterGC: once an incarnation is forgotten, a re-delivered
// START of it is recognised as stale and changes nothing.
func TestStaleStartAfterGC(t *testing.T) {
	p := Ref{RegionID: 1, Version: 1, Term: 1}
	a := Ref{RegionID: 2, Version: 2, Term: 1}
	b := Ref{RegionID: 1, Version: 2, Term: 1}
	m := mustNew(t, "", "")
	m.Start(p, nil, nil, nil)
	m.Resolved(p, 10)
	m.End(p, 10)
	m.Start(a, nil, k("m"), []Ref{p})
	m.Start(b, k("m"), nil, []Ref{p})
	require.Equal(t, 2, m.Stats().Incarnations)
	before := fingerprint(m)
	m.Start(p, nil, nil, nil)
	m.Resolved(p, 50)
	m.End(p, 50)
	require.Equal(t, before, fingerprint(m))
	st := m.Stats()
	require.Equal(t, uint64(1), st.Stale)
	require.Equal(t, uint64(2), st.UnknownIncarnation)
}

// TestSweepForgetsStalePending: pending incarnations whose whole range
// newer ones own (only bad input makes them) are swept, so they cannot pile
// up.
func TestSweepForgetsStalePending(t *testing.T) {
	newest := Ref{RegionID: 1, Version: 1000, Term: 1}
	never := []Ref{{RegionID: 999_999, Version: 1, Term: 1}}
	// Older incarnations started after a newer one owns their keys are
	// stale at once.
	m := mustNew(t, "", "")
	m.Start(newest, nil, nil, nil)
	for i := range 5000 {
		m.Start(Ref{RegionID: uint64(10 + i), Version: 5, Term: 1}, nil, nil, never)
	}
	require.Equal(t, 1, m.Stats().Incarnations)
	require.Equal(t, uint64(5000), m.Stats().Stale)

	// Started before, they wait for a predecessor that never comes.
	m2 := mustNew(t, "", "")
	for i := range 5000 {
		m2.Start(Ref{RegionID: uint64(10 + i), Version: 5, Term: 1}, nil, nil, never)
	}
	require.Equal(t, 5000, m2.Stats().Pending)
	// Newer bootstraps take every key, each from the previous one, which
	// ended: the pending ones are hopeless and the sweep, amortized over
	// claims, forgets them.
	m2.Start(newest, nil, nil, nil)
	prev := newest
	for i := range 5000 {
		m2.End(prev, 0)
		prev = Ref{RegionID: uint64(100_000 + i), Version: uint64(2000 + i), Term: 1}
		m2.Start(prev, nil, nil, nil)
	}
	st := m2.Stats()
	require.Zero(t, st.Pending)
	require.Less(t, st.Incarnations, 10)
	checkInvariants(t, m2)
}
