package watermark

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSplitMatchesHalves: at a random point of a random delivery, a map
// split at a key equals the maps of the two halves fed the same records
// from the start, and keeps equalling them while the rest is delivered.
// Merging the halves back gives the unsplit map, and keeps giving it.
func TestSplitMatchesHalves(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	for hi := range 150 {
		h := genHistory(rng, 2+rng.IntN(3), 10+rng.IntN(20), 20+rng.IntN(80))
		span := randomSpan(rng, h)
		key := span.start + "\x00" // inside any span, if nothing better
		for range 20 {
			c := h.bounds[rng.IntN(len(h.bounds))]
			if rng.IntN(2) == 0 {
				c += "m"
			}
			if c > span.start && endAfter(span.end, c) {
				key = c
				break
			}
		}
		order := interleave(rng, h)
		cut := rng.IntN(len(order) + 1)
		full := mustNew(t, span.start, span.end)
		l0, r0 := mustNew(t, span.start, key), mustNew(t, key, span.end)
		delivered := make([]int, len(h.streams))
		deliver := func(ms ...*Map) {
			s := order[0]
			order = order[1:]
			e := h.streams[s][delivered[s]]
			delivered[s]++
			for _, m := range ms {
				e.apply(m)
			}
		}
		for range cut {
			deliver(full, l0, r0)
		}
		l, r, err := full.Split(k(key))
		require.NoError(t, err)
		merged, err := Merge(l, r)
		require.NoError(t, err)
		same := func(when string) {
			require.Equal(t, entriesString(l0), entriesString(l), "history %d left half %s", hi, when)
			require.Equal(t, entriesString(r0), entriesString(r), "history %d right half %s", hi, when)
			require.Equal(t, l0.Watermark(), l.Watermark(), "history %d %s", hi, when)
			require.Equal(t, r0.Watermark(), r.Watermark(), "history %d %s", hi, when)
			require.Equal(t, entriesString(full), entriesString(merged), "history %d merged %s", hi, when)
			require.Equal(t, full.Watermark(), merged.Watermark(), "history %d %s", hi, when)
		}
		for _, m := range []*Map{l, r, merged} {
			checkInvariants(t, m)
		}
		same("at the split")
		for len(order) > 0 {
			deliver(full, l0, r0, l, r, merged)
			same("after the split")
		}
		for _, m := range []*Map{l, r, merged} {
			checkInvariants(t, m)
			require.Zero(t, m.Stats().Pending)
		}
	}
}

func TestSplitMergeErrors(t *testing.T) {
	m := mustNew(t, "b", "d")
	for _, key := range []string{"", "a", "b", "d", "e"} {
		_, _, err := m.Split(k(key))
		require.ErrorIs(t, err, ErrBadSplitKey, "key %q", key)
	}
	l, r, err := m.Split(k("c"))
	require.NoError(t, err)
	for _, pair := range [][2]*Map{{r, l}, {l, l}, {mustNew(t, "a", "b"), r}, {mustNew(t, "", ""), l}} {
		_, err := Merge(pair[0], pair[1])
		require.ErrorIs(t, err, ErrNotAdjacent)
	}
	_, err = Merge(l, r)
	require.NoError(t, err)
}

// TestSplitReleasesWaitOnOtherHalf: a merged region waits for a source in
// one half and a target in the other; after the sorter range is split, the
// half that holds only the target's keys no longer waits for the source.
func TestSplitReleasesWaitOnOtherHalf(t *testing.T) {
	src := Ref{RegionID: 2, Version: 5, Term: 7}
	dst := Ref{RegionID: 3, Version: 3, Term: 9}
	merged := Ref{RegionID: 3, Version: 6, Term: 9}
	m := mustNew(t, "a", "c")
	m.Start(src, k("a"), k("b"), nil)
	m.Resolved(src, 50)
	m.Start(dst, k("b"), k("c"), nil)
	m.Resolved(dst, 60)
	m.End(dst, 60)
	m.Start(merged, k("a"), k("c"), []Ref{src, dst})
	m.Resolved(merged, 90)
	require.Equal(t, uint64(50), m.Watermark())
	require.Equal(t, 1, m.Stats().Pending)

	l, r, err := m.Split(k("b"))
	require.NoError(t, err)
	require.Equal(t, "[a,b)r2/v5/t7=50", entriesString(l))
	require.Equal(t, 1, l.Stats().Pending, "the left half still waits for the source's END")
	require.Equal(t, "[b,c)r3/v6/t9=90", entriesString(r))
	require.Zero(t, r.Stats().Pending)
	require.Equal(t, 1, r.Stats().Incarnations, "the target is complete and owns nothing")

	l.End(src, 70)
	require.Equal(t, "[a,b)r3/v6/t9=90", entriesString(l))
	back, err := Merge(l, r)
	require.NoError(t, err)
	require.Equal(t, "[a,c)r3/v6/t9=90", entriesString(back))
	require.Equal(t, 1, back.Stats().Incarnations)
}

// TestMergeMisalignedIsConservative: if one half has read an incarnation's
// END and resolved ts that the other has not, the merged map keeps the
// state of the half that is behind.
func TestMergeMisalignedIsConservative(t *testing.T) {
	x := Ref{RegionID: 1, Version: 1, Term: 1}
	y := Ref{RegionID: 1, Version: 1, Term: 2}
	m := mustNew(t, "a", "c")
	m.Start(x, k("a"), k("c"), nil)
	m.Resolved(x, 10)
	m.Start(y, k("a"), k("c"), []Ref{x})
	l, r, err := m.Split(k("b"))
	require.NoError(t, err)
	l.Resolved(x, 20) // only the left half got this far
	l.End(x, 20)
	l.Resolved(y, 30)
	require.Equal(t, uint64(30), l.Watermark())
	j, err := Merge(l, r)
	require.NoError(t, err)
	// The left half had folded what y inherited into its own 30, which the
	// merge cannot keep: y is at the lower latest ts, 0.
	require.Equal(t, "[a,b)r1/v1/t2=0 [b,c)r1/v1/t1=10", entriesString(j))
	require.Equal(t, uint64(10), j.Watermark())
	checkInvariants(t, j)
	// The lagging half's records then arrive in the merged map.
	j.Resolved(x, 20)
	j.End(x, 20)
	j.Resolved(y, 30)
	require.Equal(t, "[a,c)r1/v1/t2=30", entriesString(j))
}
