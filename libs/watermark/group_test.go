package watermark

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLeaderResolvedEquivalent: a store's LeaderResolvedTs records
// (LeaderResolvedFrom) do exactly what resolving each incarnation the store
// leads one by one does. Random histories (splits, merges, transfers,
// crashes with takeovers and restarts) are delivered in random
// interleavings to two maps: the explicit one gets ResolvedFrom for each
// incarnation, the group one the same as LeaderResolvedFrom records —
// each resolved ts record of the history as a record that excepts every
// other incarnation the store leads, plus extra rounds that resolve all of
// a store's incarnations but a random few at one ts (sometimes below
// earlier ones), restarts as LeadersFrom without the lost incarnations, and
// snapshot round trips. After every step the two maps must be the same:
// entries, watermarks, incarnations (with their ts as of now), counters.
func TestLeaderResolvedEquivalent(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 17))
	for hi := range 100 {
		h := genHistory(rng, 2+rng.IntN(3), 8+rng.IntN(24), 10+rng.IntN(90))
		span := randomSpan(rng, h)
		for oi := range 3 {
			a, b := mustNew(t, span.start, span.end), mustNew(t, span.start, span.end)
			led := make([]map[Ref]bool, len(h.streams))
			for s := range led {
				led[s] = map[Ref]bool{}
			}
			last := make([]uint64, len(h.streams))
			delivered := make([]int, len(h.streams))
			step := func(what string) {
				t.Helper()
				checkInvariants(t, b)
				ca, cb := a.counters, b.counters
				ca.UnknownIncarnation, cb.UnknownIncarnation = 0, 0 // a group record names no unknown incarnation
				require.Equal(t, ca, cb, "history %d order %d: counters after %s", hi, oi, what)
				require.Equal(t, fingerprint(a), fingerprint(b), "history %d order %d: after %s", hi, oi, what)
			}
			restart := func(s int) {
				for _, at := range h.restarts[s] {
					if at == delivered[s] {
						a.LeadersFrom(uint64(s+1), nil)
						b.LeadersFrom(uint64(s+1), nil)
						clear(led[s])
						step("a restart")
					}
				}
			}
			for _, s := range interleave(rng, h) {
				if h.restarts != nil {
					restart(s)
				}
				e := h.streams[s][delivered[s]]
				delivered[s]++
				store := uint64(s + 1)
				switch {
				case e.kind == 's':
					led[s][e.ref] = true
					e.apply(a)
					e.apply(b)
				case e.kind == 'e' && e.takeover == nil:
					delete(led[s], e.ref)
					e.apply(a)
					e.apply(b)
				case e.kind == 'e':
					e.apply(a)
					e.apply(b)
				default: // 'r': one incarnation, the others excepted
					e.apply(a)
					others := slices.DeleteFunc(slices.Collect(maps.Keys(led[s])), func(r Ref) bool { return r == e.ref })
					b.LeaderResolvedFrom(store, e.ts, others)
					b.Progress(e.from, e.pos)
					last[s] = max(last[s], e.ts)
				}
				step(e.String())
				if rng.IntN(3) == 0 && len(led[s]) > 0 {
					// A round: every incarnation but a few at one ts.
					ts := last[s] + uint64(rng.IntN(30))
					if rng.IntN(8) == 0 {
						ts = uint64(rng.IntN(int(last[s]) + 1)) // a regression
					}
					last[s] = max(last[s], ts)
					var except []Ref
					for _, r := range slices.SortedFunc(maps.Keys(led[s]), Ref.Compare) {
						if x := a.lookup(r); x != nil && x.ended() {
							// Ended by a proven takeover: the crashed store's
							// files after the proof do not cover it.
							continue
						}
						if rng.IntN(4) == 0 {
							except = append(except, r)
							continue
						}
						a.ResolvedFrom(store, r, ts)
					}
					b.LeaderResolvedFrom(store, ts, except)
					step("a round")
				}
				if rng.IntN(40) == 0 {
					for _, m := range []**Map{&a, &b} {
						enc, err := (*m).MarshalBinary()
						require.NoError(t, err)
						*m, err = Decode(enc)
						require.NoError(t, err)
					}
					step("a snapshot round trip")
				}
			}
			for s := range h.streams {
				if h.restarts != nil {
					restart(s)
				}
			}
		}
	}
}

// TestLeaderResolvedCostsWhatChanged: once every incarnation of a store is
// attached to its group, a record moves the watermark of 10,000
// incarnations with one min-tree update, and an excepted incarnation keeps
// its own ts until a later record covers it again.
func TestLeaderResolvedCostsWhatChanged(t *testing.T) {
	m := mustNew(t, "", "")
	const n = 10000
	var refs []Ref
	for i := range n {
		start, end := key(i), key(i+1)
		if i == 0 {
			start = ""
		}
		if i == n-1 {
			end = ""
		}
		r := Ref{RegionID: uint64(i + 1), Version: 1, Term: 5}
		refs = append(refs, r)
		m.StartFrom(1, r, k(start), k(end), nil)
	}
	m.LeaderResolvedFrom(1, 100, nil)
	require.Equal(t, uint64(100), m.Watermark())
	s := m.sources[1]
	require.Equal(t, n, s.attached)
	require.Empty(t, s.solo)
	require.Empty(t, s.out)
	m.LeaderResolvedFrom(1, 200, []Ref{refs[7]})
	require.Equal(t, uint64(100), m.Watermark(), "the excepted incarnation holds the watermark")
	require.Equal(t, n-1, s.attached)
	m.ResolvedFrom(1, refs[7], 150)
	require.Equal(t, uint64(150), m.Watermark())
	m.LeaderResolvedFrom(1, 300, nil)
	require.Equal(t, uint64(300), m.Watermark())
	require.Equal(t, n, s.attached)
	checkInvariants(t, m)
	// A restart's full list without some of them: the store's records no
	// longer apply to those, which keep their ts.
	m.LeadersFrom(1, refs[:n-2])
	m.LeaderResolvedFrom(1, 400, nil)
	require.Equal(t, uint64(300), m.Watermark())
	require.Equal(t, uint64(2), m.Stats().Unled)
	checkInvariants(t, m)
}

func key(i int) string {
	return "k" + string(rune('a'+i/1000%26)) + string(rune('a'+i/100%10)) + string(rune('a'+i/10%10)) + string(rune('a'+i%10))
}
