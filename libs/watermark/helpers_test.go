package watermark

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func k(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

func mustNew(t testing.TB, start, end string) *Map {
	t.Helper()
	m, err := New(k(start), k(end))
	require.NoError(t, err)
	return m
}

// entriesString renders the entries as "[start,end)owner=ts" items; an
// unbounded end is "+".
func entriesString(m *Map) string {
	var b strings.Builder
	for e := range m.All() {
		end := "+"
		if e.End != nil {
			end = string(e.End)
		}
		owner := "hole"
		if !e.Owner.IsZero() {
			owner = e.Owner.String()
		}
		fmt.Fprintf(&b, "[%s,%s)%s=%d ", e.Start, end, owner, e.Ts)
	}
	return strings.TrimSpace(b.String())
}

// fingerprint is everything observable except the counters: entries,
// watermarks, and the incarnation table.
func fingerprint(m *Map) string {
	var b strings.Builder
	st := m.Stats()
	st.Counters = Counters{}
	fmt.Fprintf(&b, "%+v\n%s\n", st, entriesString(m))
	s := m.export()
	for _, x := range s.incs {
		fmt.Fprintf(&b, "%v [%q,%q) latest=%d store=%d ended=%v pending=%v unled=%v waiting=%v covered=%v\n",
			x.ref, x.start, x.end, x.latest, x.store, x.ended, x.pending, x.unled, x.waiting, x.covered)
	}
	fmt.Fprintf(&b, "reads=%v\n", s.reads)
	for _, r := range slices.SortedFunc(maps.Keys(s.held), Ref.Compare) {
		fmt.Fprintf(&b, "held %v %+v\n", r, s.held[r])
	}
	for _, r := range slices.SortedFunc(maps.Keys(s.early), Ref.Compare) {
		fmt.Fprintf(&b, "early %v %+v\n", r, s.early[r])
	}
	return b.String()
}

// checkInvariants verifies every internal invariant of m from scratch.
func checkInvariants(t testing.TB, m *Map) {
	t.Helper()
	if err := invariants(m); err != nil {
		t.Fatalf("%v\n%s", err, entriesString(m))
	}
}

// invariants returns the first broken invariant. It uses plain checks, not
// require, because it runs after every record of the randomized tests.
func invariants(m *Map) error {
	var list []*entry
	m.tree.Ascend(func(e *entry) bool { list = append(list, e); return true })
	if len(list) == 0 || list[0].start != m.start {
		return fmt.Errorf("entries do not start at the span start")
	}
	owned := map[*inc]int{}
	floor := map[*inc]uint64{}
	folded := map[*inc]bool{}
	holes := 0
	lo := ^uint64(0)
	for i, e := range list {
		end := m.end
		if i+1 < len(list) {
			n := list[i+1]
			end = n.start
			if e.start >= end {
				return fmt.Errorf("entries out of order at %q", e.start)
			}
			if n.owner == e.owner && n.base == e.base {
				return fmt.Errorf("neighbours %q %q not coalesced", e.start, n.start)
			}
		}
		if !endAfter(m.end, e.start) {
			return fmt.Errorf("entry %q beyond the span", e.start)
		}
		lo = min(lo, e.ts())
		if e.owner == nil {
			holes++
			if e.base != 0 {
				return fmt.Errorf("hole %q with a base", e.start)
			}
			continue
		}
		x := e.owner
		r := keyRange{e.start, end}
		if x.pend != nil && !covers(x.pend.covered, r) {
			return fmt.Errorf("%v owns %q outside its ready parts", x.ref, e.start)
		}
		switch {
		case !m.known(x):
			return fmt.Errorf("owner %v of %q not in the table", x.ref, e.start)
		case r.intersect(x.rng()) != r:
			return fmt.Errorf("entry %q outside its owner %v", e.start, x.ref)
		case e.base != 0 && e.base <= x.cur():
			return fmt.Errorf("entry %q base %d not above latest %d", e.start, e.base, x.cur())
		case e.base == 0:
			folded[x] = true
		case floor[x] == 0 || e.base < floor[x]:
			floor[x] = e.base
		}
		owned[x]++
	}
	if holes != m.holes {
		return fmt.Errorf("holes %d, counted %d", holes, m.holes)
	}
	if holes == 0 && lo != m.raw() {
		return fmt.Errorf("raw %d, minimum entry ts %d", m.raw(), lo)
	}
	if m.published < m.raw() {
		return fmt.Errorf("published %d below raw %d", m.published, m.raw())
	}
	n, ended := 0, 0
	var err error
	m.each(func(x *inc) {
		if err == nil {
			err = incInvariants(m, x, owned[x], floor[x], folded[x])
		}
		n++
		if x.ended() {
			ended++
		}
	})
	if err != nil {
		return err
	}
	wantSlots := 0
	for x := range owned {
		if !x.attached() {
			wantSlots++
		}
	}
	for id, s := range m.sources {
		if err := sourceInvariants(m, id, s); err != nil {
			return err
		}
		if s.attached > 0 {
			wantSlots++
		}
	}
	if slots := m.mins.used - len(m.mins.free); n != m.nIncs || ended != m.nEnded || slots != wantSlots {
		return fmt.Errorf("counts: %d/%d incarnations, %d/%d ended, slots %d/%d",
			n, m.nIncs, ended, m.nEnded, slots, wantSlots)
	}
	for i := 1; i < m.mins.cap; i++ {
		if m.mins.vals[i] != min(m.mins.vals[2*i], m.mins.vals[2*i+1]) {
			return fmt.Errorf("min-tree node %d broken", i)
		}
	}
	for w, xs := range m.waiters {
		if len(xs) == 0 {
			return fmt.Errorf("empty waiters of %v", w)
		}
		for _, x := range xs {
			if !m.known(x) || x.pend == nil || !x.pend.isWaiting(w) {
				return fmt.Errorf("stale waiter %v of %v", x.ref, w)
			}
		}
	}
	for x := range m.loose {
		if !m.known(x) || x.owned() > 0 || x.complete() {
			return fmt.Errorf("bad sweep candidate %v", x.ref)
		}
	}
	return nil
}

func incInvariants(m *Map, x *inc, owned int, floor uint64, folded bool) error {
	_, isPending := m.pending[x]
	switch {
	case m.byRegion[x.ref.RegionID] != x && m.extra[x.ref] != x:
		return fmt.Errorf("%v not in the table", x.ref)
	case owned != x.owned():
		return fmt.Errorf("%v owns %d entries, counted %d", x.ref, owned, x.owned())
	case (x.pend != nil) != isPending:
		return fmt.Errorf("%v pending set", x.ref)
	case x.complete() && owned == 0:
		return fmt.Errorf("complete %v owning nothing not forgotten", x.ref)
	case owned > 0 && (floor != x.floor || folded != x.folded()):
		return fmt.Errorf("%v floor %d folded %v, want %d %v", x.ref, x.floor, x.folded(), floor, folded)
	case x.attached() && (x.slot != -1 || owned == 0 || x.floor != 0 || x.latest > x.src.ts || !x.led()):
		return fmt.Errorf("%v attached to its group but slot %d, owned %d, floor %d, latest %d > %d or not led",
			x.ref, x.slot, owned, x.floor, x.latest, x.src.ts)
	case owned > 0 && !x.attached() && (x.slot < 0 || int(x.slot) >= m.mins.used || m.mins.vals[m.mins.cap+int(x.slot)] != x.minTs()):
		return fmt.Errorf("%v not in the min-tree", x.ref)
	case owned == 0 && x.slot != -1:
		return fmt.Errorf("%v in the min-tree owning nothing", x.ref)
	}
	if x.src != nil && m.sources[x.src.id] != x.src {
		return fmt.Errorf("%v: its store %d is not the map's", x.ref, x.src.id)
	}
	in := 0
	if x.src != nil {
		if _, ok := x.src.solo[x]; ok {
			in++
		}
		if _, ok := x.src.out[x]; ok {
			in++
		}
	}
	if x.attached() {
		in++
	}
	if want := map[bool]int{true: 1, false: 0}[x.led()]; in != want {
		return fmt.Errorf("%v (led %v) is in %d of attached, solo and out", x.ref, x.led(), in)
	}
	for _, r := range x.readyParts() {
		for _, e := range m.overlapping(r) {
			if e.owner == nil || e.owner.ref.Compare(x.ref) < 0 {
				return fmt.Errorf("%v ready at %q but an older owner holds %q", x.ref, r, e.start)
			}
		}
	}
	if x.pend != nil {
		for _, w := range x.pend.waiting {
			found := false
			for _, y := range m.waiters[w] {
				found = found || y == x
			}
			if !found {
				return fmt.Errorf("%v not registered as waiting on %v", x.ref, w)
			}
		}
	}
	return nil
}

// sourceInvariants checks one store's group: its slot holds its ts while
// members are attached, and its sets hold known, led incarnations of it.
func sourceInvariants(m *Map, id uint64, s *source) error {
	attached, led := 0, 0
	m.each(func(x *inc) {
		if x.src == s && x.attached() {
			attached++
		}
		if x.src == s && x.led() {
			led++
		}
	})
	switch {
	case led != s.nLed:
		return fmt.Errorf("store %d leads %d here, counted %d", id, led, s.nLed)
	case s.id != id:
		return fmt.Errorf("store %d's group says store %d", id, s.id)
	case attached != s.attached:
		return fmt.Errorf("store %d: %d attached, counted %d", id, attached, s.attached)
	case s.attached > 0 && (s.slot < 0 || m.mins.vals[m.mins.cap+int(s.slot)] != s.ts):
		return fmt.Errorf("store %d: group slot %d does not hold ts %d", id, s.slot, s.ts)
	case s.attached == 0 && s.slot != -1:
		return fmt.Errorf("store %d: group slot %d with nothing attached", id, s.slot)
	}
	for _, set := range []map[*inc]struct{}{s.solo, s.out} {
		for x := range set {
			if !m.known(x) || x.src != s || !x.led() {
				return fmt.Errorf("store %d: stale member %v", id, x.ref)
			}
		}
	}
	return nil
}
