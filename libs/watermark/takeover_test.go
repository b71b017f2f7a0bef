package watermark

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The takeover cases of issue 15, in the order the consumer can read them.
// Store 1 (A) leads X = region 1 over everything; it publishes 100 in its
// file 1 and 150 in file 2, then crashes. Store 2 (C) becomes the leader at
// term 6 and takes X over: its START of (1, v1, t6) names X, then the rows
// of X A had not uploaded, then a takeover END of X proving A's stream
// through file 2, with final ts 150 (store-change-file spec, "Takeover").
var (
	tkX  = Ref{RegionID: 1, Version: 1, Term: 5}
	tkX2 = Ref{RegionID: 1, Version: 1, Term: 6}
)

type rec struct {
	store, seq uint64
	apply      func(m *Map)
}

func aStart(m *Map) { m.StartFrom(1, tkX, nil, nil, nil) }
func aRes(ts uint64) func(*Map) {
	return func(m *Map) { m.ResolvedFrom(1, tkX, ts) }
}
func cStart(m *Map) { m.StartFrom(2, tkX2, nil, nil, []Ref{tkX}) }
func cEnd(through uint64) func(*Map) {
	return func(m *Map) { m.EndFrom(2, tkX, nil, nil, 150, &Takeover{Store: 1, ThroughSeq: through}) }
}
func cRes(ts uint64) func(*Map) {
	return func(m *Map) { m.ResolvedFrom(2, tkX2, ts) }
}

func deliver(m *Map, r rec) {
	r.apply(m)
	m.Progress(r.store, r.seq)
}

// TestTakeoverEndBeforeOldLeadersFiles (issue 15, case 4): the new leader's
// takeover END is read before the crashed leader's remaining uploaded file.
// That file can hold commits up to its resolved ts 150: the watermark must
// not pass 100 until it is read. Before the fix the END applied at once and
// the watermark jumped to 150 (the sorter then refused or lost A's commits).
func TestTakeoverEndBeforeOldLeadersFiles(t *testing.T) {
	m := mustNew(t, "", "")
	deliver(m, rec{1, 1, func(m *Map) { aStart(m); aRes(100)(m) }})
	require.EqualValues(t, 100, m.Watermark())
	deliver(m, rec{2, 1, func(m *Map) { cStart(m); cEnd(2)(m); cRes(300)(m) }})
	require.EqualValues(t, 100, m.Watermark(), "A's file 2 is unread: %s", entriesString(m))
	b := m.Diagnose()
	require.Equal(t, CauseTakeoverWait, b.Cause, "%v", b)
	require.Contains(t, b.Detail, "store 1 through file 2 (read through 1)")
	require.EqualValues(t, 1, m.Stats().Held)

	deliver(m, rec{1, 2, aRes(150)})
	require.EqualValues(t, 300, m.Watermark(), "A read through file 2: X is complete, C's own ts counts")
	require.Zero(t, m.Stats().Held)
	require.EqualValues(t, 1, m.Stats().TakeoverWaits)
}

// TestTakeoverEndBeforeStart (issue 15, case 6): the takeover END is read
// before the crashed leader's START of X (C's stream first). It used to be
// dropped as an END of an unknown incarnation, and C's incarnation waited for
// X forever. It is kept and applies once X starts and A is read through.
func TestTakeoverEndBeforeStart(t *testing.T) {
	for _, order := range [][]rec{
		{{2, 1, func(m *Map) { cStart(m); cEnd(2)(m); cRes(300)(m) }}, {1, 1, func(m *Map) { aStart(m); aRes(100)(m) }}, {1, 2, aRes(150)}},
		{{2, 1, cStart}, {2, 2, cEnd(2)}, {1, 1, aStart}, {2, 3, cRes(300)}, {1, 2, aRes(150)}},
		{{2, 1, func(m *Map) { cStart(m); cEnd(2)(m) }}, {1, 1, aStart}, {1, 2, aRes(150)}, {2, 2, cRes(300)}},
	} {
		m := mustNew(t, "", "")
		for i, r := range order {
			deliver(m, r)
			if i < len(order)-1 {
				require.LessOrEqual(t, m.Watermark(), uint64(150), "A's commits up to 150 may be unread: %s", entriesString(m))
			}
		}
		require.EqualValues(t, 300, m.Watermark(), entriesString(m))
		st := m.Stats()
		require.Zero(t, st.Pending+st.Held+st.Early, "%+v", st)
		require.EqualValues(t, 1, st.EarlyEnds)
	}
}

// TestCascadedTakeover (issue 15, case 5): C's takeover was lost (C crashed
// before uploading it); D, elected next, finds that neither X's END nor C's
// START was uploaded, so it takes over X itself and names X as the
// predecessor of its own START. Every arrival order completes.
func TestCascadedTakeover(t *testing.T) {
	xD := Ref{RegionID: 1, Version: 1, Term: 7}
	a1 := rec{1, 1, func(m *Map) { aStart(m); aRes(100)(m) }}
	a2 := rec{1, 2, aRes(150)}
	d1 := rec{3, 1, func(m *Map) {
		m.StartFrom(3, xD, nil, nil, []Ref{tkX})
		m.EndFrom(3, tkX, nil, nil, 150, &Takeover{Store: 1, ThroughSeq: 2})
		m.ResolvedFrom(3, xD, 400)
	}}
	for _, order := range [][]rec{{a1, a2, d1}, {a1, d1, a2}, {d1, a1, a2}} {
		m := mustNew(t, "", "")
		for _, r := range order {
			deliver(m, r)
		}
		require.EqualValues(t, 400, m.Watermark(), entriesString(m))
	}
}

// TestSloppyCascadeStallsLoudly: a new leader that names an incarnation
// whose START was never uploaded (against the spec) cannot be trusted to
// have covered the first crashed leader's events. The range waits, and
// Diagnose says why instead of stalling silently.
func TestSloppyCascadeStallsLoudly(t *testing.T) {
	xD := Ref{RegionID: 1, Version: 1, Term: 7}
	m := mustNew(t, "", "")
	deliver(m, rec{1, 1, func(m *Map) { aStart(m); aRes(100)(m) }})
	deliver(m, rec{3, 1, func(m *Map) {
		m.StartFrom(3, xD, nil, nil, []Ref{tkX2})
		m.EndFrom(3, tkX2, nil, nil, 0, &Takeover{Store: 2, ThroughSeq: 0})
		m.ResolvedFrom(3, xD, 400)
	}})
	require.EqualValues(t, 100, m.Watermark())
	b := m.Diagnose()
	require.Equal(t, CauseUnknownPredecessor, b.Cause, "%v", b)
	require.Contains(t, b.Detail, "r1/v1/t7 waits for r1/v1/t6, never started (its END was read)")
	require.Equal(t, tkX, b.Holder)
	require.EqualValues(t, 1, b.Store)
}

// TestForeignEndIsNotTrusted: an END without the takeover form from a store
// that did not start the incarnation (say one that listed it in its header
// to end it) proves nothing about the leader's unread files; so is a
// resolved ts from such a store.
func TestForeignEndIsNotTrusted(t *testing.T) {
	m := mustNew(t, "", "")
	deliver(m, rec{1, 1, func(m *Map) { aStart(m); aRes(100)(m) }})
	deliver(m, rec{2, 1, func(m *Map) {
		m.StartFrom(2, tkX2, nil, nil, []Ref{tkX})
		m.ResolvedFrom(2, tkX, 500)
		m.EndFrom(2, tkX, nil, nil, 500, nil)
		m.ResolvedFrom(2, tkX2, 600)
	}})
	require.EqualValues(t, 100, m.Watermark())
	st := m.Stats()
	require.EqualValues(t, 1, st.ForeignEnd)
	require.EqualValues(t, 1, st.ForeignResolved)
	b := m.Diagnose()
	require.Equal(t, CauseForeignEnd, b.Cause, "%v", b)
	require.Contains(t, b.Detail, "ended by store 2 without a takeover proof")

	// A's own END is trusted.
	deliver(m, rec{1, 2, func(m *Map) { m.EndFrom(1, tkX, nil, nil, 150, nil) }})
	require.EqualValues(t, 600, m.Watermark())
}

// TestTakeoverProofOfAnotherStore: a takeover END whose proof names another
// store than the one that started the incarnation proves nothing.
func TestTakeoverProofOfAnotherStore(t *testing.T) {
	m := mustNew(t, "", "")
	deliver(m, rec{1, 1, func(m *Map) { aStart(m); aRes(100)(m) }})
	deliver(m, rec{2, 1, func(m *Map) {
		cStart(m)
		m.EndFrom(2, tkX, nil, nil, 150, &Takeover{Store: 3, ThroughSeq: 0})
		cRes(300)(m)
	}})
	require.EqualValues(t, 100, m.Watermark())
	require.EqualValues(t, 1, m.Stats().ForeignEnd)
}

// TestRestartedLeaderTakesOverItself: store A restarts and is elected again;
// it takes over its own old incarnation in its own stream.
func TestRestartedLeaderTakesOverItself(t *testing.T) {
	m := mustNew(t, "", "")
	deliver(m, rec{1, 1, func(m *Map) { aStart(m); aRes(100)(m) }})
	deliver(m, rec{1, 2, func(m *Map) {
		m.StartFrom(1, tkX2, nil, nil, []Ref{tkX})
		m.EndFrom(1, tkX, nil, nil, 100, &Takeover{Store: 1, ThroughSeq: 1})
		m.ResolvedFrom(1, tkX2, 300)
	}})
	require.EqualValues(t, 300, m.Watermark())
}

// TestHeldEndSurvivesSnapshotSplitMerge: a takeover END still waiting, an
// END kept for an incarnation not started yet and the store positions are
// part of the encoding, and of both halves of a split.
func TestHeldEndSurvivesSnapshotSplitMerge(t *testing.T) {
	m := mustNew(t, "", "")
	deliver(m, rec{1, 1, func(m *Map) { aStart(m); aRes(100)(m) }})
	deliver(m, rec{2, 1, func(m *Map) {
		cStart(m)
		cEnd(2)(m)
		cRes(300)(m)
		m.EndFrom(2, Ref{RegionID: 9, Version: 3, Term: 2}, k("m"), nil, 7, &Takeover{Store: 1, ThroughSeq: 5})
	}})
	b, err := m.MarshalBinary()
	require.NoError(t, err)
	d, err := Decode(b)
	require.NoError(t, err)
	l, r, err := d.Split(k("k"))
	require.NoError(t, err)
	for _, x := range []*Map{d, l, r} {
		st := x.Stats()
		require.EqualValues(t, 1, st.Held)
		require.EqualValues(t, 100, x.Watermark())
		deliver(x, rec{1, 2, aRes(150)})
		require.EqualValues(t, 300, x.Watermark())
	}
	require.EqualValues(t, 1, d.Stats().Early)
	require.Zero(t, l.Stats().Early, "the kept END lies in the right half")
	require.EqualValues(t, 1, r.Stats().Early)
	j, err := Merge(l, r)
	require.NoError(t, err)
	require.Equal(t, fingerprint(d), fingerprint(j))
}

// TestDecodeVersion1: snapshots written before the takeover rules (encoding
// version 1) still decode; every store is unknown, so input is trusted as
// it was then.
func TestDecodeVersion1(t *testing.T) {
	m := mustNew(t, "", "")
	m.Start(tkX, nil, nil, nil)
	m.Resolved(tkX, 100)
	m.Start(Ref{RegionID: 2, Version: 2, Term: 1}, k("m"), nil, []Ref{tkX})
	d, err := Decode(m.export().encodeAs(1))
	require.NoError(t, err)
	require.Equal(t, entriesString(m), entriesString(d))
	d.EndFrom(4, tkX, nil, nil, 120, nil) // a store: the leader is unknown, so trusted
	require.EqualValues(t, 120, d.Watermark())
}
