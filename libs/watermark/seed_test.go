package watermark

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// step is one record delivered to the map and the watermark expected after
// it. max, when set, is the highest watermark that is still safe at that
// point (what the test is about); want is what the map must publish.
type step struct {
	name       string
	kind       byte // 's' START, 'r' resolved ts, 'e' END
	ref        Ref
	start, end string
	preds      []Ref
	ts         uint64
	want       uint64
}

func start(name string, r Ref, s, e string, want uint64, preds ...Ref) step {
	return step{name: name, kind: 's', ref: r, start: s, end: e, preds: preds, want: want}
}

func resolved(name string, r Ref, ts, want uint64) step {
	return step{name: name, kind: 'r', ref: r, ts: ts, want: want}
}

func end(name string, r Ref, ts, want uint64) step {
	return step{name: name, kind: 'e', ref: r, ts: ts, want: want}
}

func (s step) apply(m *Map) {
	switch s.kind {
	case 's':
		m.Start(s.ref, k(s.start), k(s.end), s.preds)
	case 'r':
		m.Resolved(s.ref, s.ts)
	case 'e':
		m.End(s.ref, s.ts)
	}
}

func runSteps(t *testing.T, m *Map, steps []step) {
	t.Helper()
	for _, s := range steps {
		s.apply(m)
		checkInvariants(t, m)
		require.Equal(t, s.want, m.Watermark(), "after %s: %s", s.name, entriesString(m))
	}
}

// TestSeedSplit is the TiStream design's split case. Region 2 [a,c) version
// 1 is led by store A (term 5). It splits: as in the seed, region 2 keeps
// [a,b) and the new region 3 gets [b,c), both version 2, both led by store A
// at first (a split is applied by the parent's leader). Then region 3's
// leadership moves to store B. The upstream protocol writes:
//
//	store A: START(2/v1/t5) … resolved 100 … END(2/v1/t5, 100)
//	         START(2/v2/t5, preds 2/v1/t5)  START(3/v2/t5, preds 2/v1/t5)
//	         END(3/v2/t5)                   (leader transfer) … resolved 110 for 2/v2/t5
//	store B: START(3/v2/t6, preds 3/v2/t5) … resolved 105 for 3/v2/t6
//
// So R3 on store B depends on store A through the chain 3/v2/t6 → 3/v2/t5 →
// 2/v1/t5. The sorter reads B's stream first (R3's START, the commit of b at
// 100 and watermark 105), then A's old-version events with watermark 100 and
// its END, then A's version-2 events with watermark 110 last.
func TestSeedSplit(t *testing.T) {
	r2v1 := Ref{RegionID: 2, Version: 1, Term: 5}
	r2v2 := Ref{RegionID: 2, Version: 2, Term: 5}
	r3a := Ref{RegionID: 3, Version: 2, Term: 5}
	r3b := Ref{RegionID: 3, Version: 2, Term: 6}
	m := mustNew(t, "a", "c")
	runSteps(t, m, []step{
		// Nothing of store A read: [a,b) is a hole and R3 is pending, so
		// its 105 must not count (A's prewrite of b at 90 is unread).
		start("B: START R3 term 6", r3b, "b", "c", 0, r3a),
		resolved("B: resolved 105", r3b, 105, 0),
		start("A: START R2 v1 (bootstrap)", r2v1, "a", "c", 0),
		// The old leader's 100 is the first guarantee for all of [a,c).
		resolved("A: resolved 100", r2v1, 100, 100),
		end("A: END R2 v1", r2v1, 100, 100),
		// The children inherit 100; R3 on B still waits for R3 on A.
		start("A: START R2 v2", r2v2, "a", "b", 100, r2v1),
		start("A: START R3 term 5", r3a, "b", "c", 100, r2v1),
		// Now A's stream for [b,c) is fully read: B's 105 applies there.
		end("A: END R3 term 5 (transfer)", r3a, 0, 100),
		resolved("A: resolved 110 for R2 v2", r2v2, 110, 105),
	})
	require.Equal(t, "[a,b)r2/v2/t5=110 [b,c)r3/v2/t6=105", entriesString(m))
	st := m.Stats()
	require.Equal(t, 2, st.Incarnations, "the ended incarnations are forgotten")
	require.Zero(t, st.Pending)
}

// TestSeedMerge mirrors the split case: source region 2 [a,b) version 5 on
// store A merges into target region 3 [b,c) version 3 on store B. The merged
// region keeps the target's id and term with version max(5,3)+1 = 6, started
// on store B with predecessors source and target. B's stream (its END of the
// target, the new START and watermark 120) is read before A's last events
// and END: [a,b) must stay at A's guarantee until A's END.
func TestSeedMerge(t *testing.T) {
	src := Ref{RegionID: 2, Version: 5, Term: 7}
	dst := Ref{RegionID: 3, Version: 3, Term: 9}
	merged := Ref{RegionID: 3, Version: 6, Term: 9}
	m := mustNew(t, "a", "c")
	runSteps(t, m, []step{
		start("A: START source", src, "a", "b", 0),
		resolved("A: resolved 90", src, 90, 0),
		start("B: START target", dst, "b", "c", 0),
		resolved("B: resolved 95", dst, 95, 90),
		end("B: END target", dst, 95, 90),
		start("B: START merged", merged, "a", "c", 90, src, dst),
		resolved("B: resolved 120", merged, 120, 90),
		// A's last events: the source's own guarantee rises, the merged
		// region's 120 still does not apply to [a,b).
		resolved("A: resolved 100", src, 100, 100),
		end("A: END source", src, 100, 120),
	})
	require.Equal(t, "[a,c)r3/v6/t9=120", entriesString(m))
	require.Equal(t, 1, m.Stats().Incarnations)
}

// TestLeaderTransferNewLeaderFirst: region 1 moves from store A (term 5) to
// store B (term 6) and B's stream is read first.
func TestLeaderTransferNewLeaderFirst(t *testing.T) {
	old := Ref{RegionID: 1, Version: 1, Term: 5}
	next := Ref{RegionID: 1, Version: 1, Term: 6}
	m := mustNew(t, "", "")
	runSteps(t, m, []step{
		start("A: START", old, "", "", 0),
		resolved("A: resolved 50", old, 50, 50),
		start("B: START term 6", next, "", "", 50, old),
		resolved("B: resolved 70", next, 70, 50),
		resolved("B: resolved 80", next, 80, 50),
		resolved("A: resolved 60", old, 60, 60),
		end("A: END", old, 60, 80),
		resolved("B: resolved 90", next, 90, 90),
	})
}

// TestMergeAcrossSpanBoundary: the sorter's span starts inside a merged
// region, so the merge source lies outside the span and its records are
// never routed here. The merged region must still take the keys of the span
// once the target (the only predecessor inside the span) is complete.
func TestMergeAcrossSpanBoundary(t *testing.T) {
	src := Ref{RegionID: 2, Version: 5, Term: 7}
	dst := Ref{RegionID: 3, Version: 3, Term: 9}
	merged := Ref{RegionID: 3, Version: 6, Term: 9}
	m := mustNew(t, "b", "c")
	runSteps(t, m, []step{
		start("START target", dst, "b", "c", 0),
		resolved("resolved 95", dst, 95, 95),
		start("START merged", merged, "a", "c", 95, src, dst),
		resolved("resolved 120", merged, 120, 95),
		end("END target", dst, 95, 120),
	})
	require.Zero(t, m.Stats().Pending)
}
