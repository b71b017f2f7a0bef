package watermark

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// randomSpan picks the sorter's span: everything, or a range whose ends may
// fall on region boundaries or inside regions.
func randomSpan(rng *rand.Rand, h *history) keyRange {
	pick := func() string {
		b := h.bounds[rng.IntN(len(h.bounds))]
		if rng.IntN(2) == 0 {
			b += "x" // inside a grid segment
		}
		return b
	}
	switch rng.IntN(4) {
	case 0:
		return keyRange{}
	case 1:
		return keyRange{pick(), ""}
	case 2:
		return keyRange{"", pick()}
	}
	for {
		if r := (keyRange{pick(), pick()}); !r.empty() {
			return r
		}
	}
}

// TestRandomInterleavings delivers random histories in thousands of random
// interleavings that keep each store's own order. After every record the
// published watermark must not pass the true safe watermark of the
// delivered prefix, must not go backwards, and at the end it must equal the
// expected final value. Re-delivering a prefix of a store's stream at any
// point must change nothing.
func TestRandomInterleavings(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	const histories, orders = 250, 12
	for hi := range histories {
		h := genHistory(rng, 2+rng.IntN(3), 8+rng.IntN(24), 10+rng.IntN(90))
		span := randomSpan(rng, h)
		o := newOracle(h, span)
		final := o.final()
		outside := outsideRecords(h, span)
		for oi := range orders {
			m := mustNew(t, span.start, span.end)
			delivered := make([]int, len(h.streams))
			for n, s := range interleave(rng, h) {
				e := h.streams[s][delivered[s]]
				delivered[s]++
				prev := m.Watermark()
				e.apply(m)
				w := m.Watermark()
				if w < prev {
					t.Fatalf("history %d order %d: watermark went backwards at %v", hi, oi, e)
				}
				if safe := o.safe(delivered); w > safe {
					t.Fatalf("history %d order %d: watermark %d passes the safe %d after %v: %s",
						hi, oi, w, safe, e, entriesString(m))
				}
				if oi < 3 || n%8 == 0 {
					checkInvariants(t, m)
				}
				if rng.IntN(24) == 0 {
					redeliverPrefix(t, rng, m, h, delivered)
				}
			}
			checkInvariants(t, m)
			require.Equal(t, final, m.Watermark(), "history %d order %d: final watermark: %s", hi, oi, entriesString(m))
			st := m.Stats()
			require.Zero(t, st.Pending, "history %d order %d", hi, oi)
			require.Zero(t, st.Holes)
			require.Zero(t, st.Regressed+st.Stale+st.DuplicateStart+st.DuplicateEnd+st.AfterEnd,
				"no record of a clean history is ignored: %+v", st.Counters)
			// Only records of incarnations outside the span (a dispatcher
			// would not even route them here) are unknown.
			require.Equal(t, outside, st.UnknownIncarnation)
			m.counters = Counters{} // the clean-history check above is done
		}
	}
}

// outsideRecords counts the resolved ts and END records of incarnations
// whose range misses span.
func outsideRecords(h *history, span keyRange) uint64 {
	var n uint64
	for _, x := range h.incs {
		if !(keyRange{x.start, x.end}).intersect(span).empty() {
			continue
		}
		for _, st := range h.streams {
			for _, e := range st {
				if e.ref == x.ref && e.kind != 's' {
					n++
				}
			}
		}
	}
	return n
}

// redeliverPrefix re-applies a random prefix of one store's delivered
// records and checks that nothing observable changed.
func redeliverPrefix(t *testing.T, rng *rand.Rand, m *Map, h *history, delivered []int) {
	s := rng.IntN(len(delivered))
	if delivered[s] == 0 {
		return
	}
	before := fingerprint(m)
	c := m.counters
	for _, e := range h.streams[s][:1+rng.IntN(delivered[s])] {
		e.apply(m)
	}
	require.Equal(t, before, fingerprint(m), "re-delivery changed the map")
	m.counters = c
}

// TestDuplicateStreams delivers every store's stream twice in a row, record
// by record interleaved with the first copy's progress.
func TestDuplicateStreams(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for range 50 {
		h := genHistory(rng, 3, 20, 60)
		span := randomSpan(rng, h)
		o := newOracle(h, span)
		m := mustNew(t, span.start, span.end)
		delivered := make([]int, len(h.streams))
		for _, s := range interleave(rng, h) {
			h.streams[s][delivered[s]].apply(m)
			delivered[s]++
			before := fingerprint(m)
			// A reader that restarts from an older checkpoint of store s
			// replays its whole delivered stream.
			for _, e := range h.streams[s][:delivered[s]] {
				e.apply(m)
			}
			require.Equal(t, before, fingerprint(m))
			require.LessOrEqual(t, m.Watermark(), o.safe(delivered))
		}
		require.Equal(t, o.final(), m.Watermark())
	}
}

// TestRandomTakeovers is TestRandomInterleavings with store crashes: a
// crashed leader's last records are lost and each of its regions is taken
// over by another store, whose takeover END may be read before the old
// leader's START or its remaining records (store-change-file spec,
// "Takeover"). The watermark must never pass what the old leader's unread
// records can still hold, and everything must complete at the end.
func TestRandomTakeovers(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 23))
	var held, early uint64
	for hi := range 250 {
		h := genHistoryMix(rng, 2+rng.IntN(3), 8+rng.IntN(24), 10+rng.IntN(90), mix{split: 14, merge: 10, transfer: 14, crash: 10})
		span := randomSpan(rng, h)
		o := newOracle(h, span)
		final := o.final()
		outside := outsideRecords(h, span)
		for oi := range 12 {
			m := mustNew(t, span.start, span.end)
			delivered := make([]int, len(h.streams))
			for _, s := range interleave(rng, h) {
				e := h.streams[s][delivered[s]]
				delivered[s]++
				prev := m.Watermark()
				e.apply(m)
				w := m.Watermark()
				require.GreaterOrEqual(t, w, prev, "history %d order %d: backwards at %v", hi, oi, e)
				if safe := o.safe(delivered); w > safe {
					t.Fatalf("history %d order %d: watermark %d passes the safe %d after %v: %s", hi, oi, w, safe, e, entriesString(m))
				}
				if err := o.checkEntries(m, delivered); err != nil {
					t.Fatalf("history %d order %d: after %v: %v: %s", hi, oi, e, err, entriesString(m))
				}
				if rng.IntN(24) == 0 {
					redeliverPrefix(t, rng, m, h, delivered)
				}
			}
			checkInvariants(t, m)
			st := m.Stats()
			require.Equal(t, final, m.Watermark(), "history %d order %d: final watermark: %s\n%v\n%+v", hi, oi, entriesString(m), m.Diagnose(), st)
			require.Zero(t, st.Pending+st.Held+st.Early, "history %d order %d: %+v", hi, oi, st)
			require.Zero(t, st.ForeignEnd+st.ForeignResolved+st.Regressed+st.Stale+st.DuplicateStart+st.DuplicateEnd+st.AfterEnd,
				"no record of a clean history is ignored: %+v", st.Counters)
			require.Equal(t, outside, st.UnknownIncarnation)
			held += st.TakeoverWaits
			early += st.EarlyEnds
		}
	}
	// The cases the rule exists for did happen.
	require.NotZero(t, held, "no takeover END had to wait for the old leader's stream")
	require.NotZero(t, early, "no takeover END was read before its incarnation's START")
}
