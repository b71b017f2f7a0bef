package watermark

import (
	"fmt"
	"slices"
	"strings"
)

// Cause names why the keys at the watermark's minimum are not higher. The
// values are stable: they label metrics.
type Cause string

const (
	// CauseHole: no incarnation holds the keys (no START read for them yet,
	// or the one that would take them waits for its predecessors).
	CauseHole Cause = "hole"
	// CauseUpstream: a live incarnation holds them and nothing waits on it:
	// its leader's resolved ts is the bound (upstream lag, a long
	// transaction).
	CauseUpstream Cause = "upstream"
	// CauseEndNotRead: a successor waits for the holder's END, which its
	// leader's stream has not delivered.
	CauseEndNotRead Cause = "end-not-read"
	// CauseTakeoverWait: the holder's takeover END waits for the crashed
	// leader's stream to be read through the proven file.
	CauseTakeoverWait Cause = "takeover-wait"
	// CauseForeignEnd: the holder was ended by another store without a
	// takeover proof, which is not trusted.
	CauseForeignEnd Cause = "foreign-end"
	// CauseUnknownPredecessor: a successor waits for a predecessor whose
	// START was never read.
	CauseUnknownPredecessor Cause = "unknown-predecessor"
	// CauseStartNotRead: the holder ended and no successor's START has been
	// read for the keys.
	CauseStartNotRead Cause = "start-not-read"
)

// Blocker describes the keys at the watermark's minimum and why they are
// there: what an operator needs when a range's watermark stops moving.
type Blocker struct {
	Start, End []byte // End nil = unbounded
	Ts         uint64 // 0 for a hole
	Holder     Ref    // zero for a hole
	Store      uint64 // the holder's leader store, 0 if unknown
	Cause      Cause
	Detail     string
}

func (b Blocker) String() string {
	end := "+inf"
	if b.End != nil {
		end = fmt.Sprintf("%x", b.End)
	}
	return fmt.Sprintf("keys [%x, %s) at ts %d held by %v (store %d): %s: %s", b.Start, end, b.Ts, b.Holder, b.Store, b.Cause, b.Detail)
}

// Diagnose returns what holds the watermark down. It is O(entries): for
// alerts and debugging, not for every record.
func (m *Map) Diagnose() Blocker {
	var low *entry
	var lowEnd string
	var prev *entry
	visit := func(end string) {
		if low == nil || prev.ts() < low.ts() {
			low, lowEnd = prev, end
		}
	}
	m.tree.Ascend(func(e *entry) bool {
		if prev != nil {
			visit(e.start)
		}
		prev = e
		return true
	})
	visit(m.end)
	b := Blocker{Start: []byte(low.start), Ts: low.ts()}
	if lowEnd != "" {
		b.End = []byte(lowEnd)
	}
	r := keyRange{low.start, lowEnd}
	waiters := m.pendingOver(r)
	if x := low.owner; x != nil {
		b.Holder, b.Store = x.ref, x.storeID()
	}
	b.Cause, b.Detail = m.cause(low.owner, waiters)
	return b
}

// pendingOver lists the pending incarnations whose range meets r.
func (m *Map) pendingOver(r keyRange) []*inc {
	var out []*inc
	for x := range m.pending {
		if !x.rng().intersect(r).empty() {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b *inc) int { return a.ref.Compare(b.ref) })
	return out
}

func (m *Map) cause(x *inc, waiters []*inc) (Cause, string) {
	var unknown []string
	for _, w := range waiters {
		for _, p := range w.pend.waiting {
			if m.lookup(p) == nil {
				unknown = append(unknown, fmt.Sprintf("%v waits for %v, never started%s", w.ref, p, m.earlyNote(p)))
			}
		}
	}
	switch {
	case x == nil && len(unknown) > 0:
		return CauseUnknownPredecessor, strings.Join(unknown, "; ")
	case x == nil:
		return CauseHole, fmt.Sprintf("%d incarnations wait for predecessors here", len(waiters))
	case m.held[x.ref] != nil:
		var ps []string
		for _, p := range m.held[x.ref].proofs {
			ps = append(ps, fmt.Sprintf("store %d through file %d (read through %d)", p.Store, p.ThroughSeq, m.reads[p.Store]))
		}
		return CauseTakeoverWait, "takeover END waits for " + strings.Join(ps, " or ")
	case m.foreignEnd[x.ref] != 0:
		return CauseForeignEnd, fmt.Sprintf("ended by store %d without a takeover proof; waiting for store %d's END", m.foreignEnd[x.ref], x.storeID())
	case len(unknown) > 0:
		return CauseUnknownPredecessor, strings.Join(unknown, "; ")
	case !x.ended() && len(waiters) > 0:
		return CauseEndNotRead, fmt.Sprintf("%s wait for its END from store %d (latest resolved ts %d)", refList(waiters), x.storeID(), x.cur())
	case !x.ended():
		return CauseUpstream, fmt.Sprintf("latest resolved ts %d from store %d", x.cur(), x.storeID())
	case len(waiters) > 0:
		return CauseEndNotRead, fmt.Sprintf("ended; %s still wait for other predecessors", refList(waiters))
	default:
		return CauseStartNotRead, "ended; no successor started over these keys yet"
	}
}

func (m *Map) earlyNote(r Ref) string {
	if _, ok := m.early[r]; ok {
		return " (its END was read)"
	}
	return ""
}

func refList(xs []*inc) string {
	var s []string
	for _, x := range xs {
		s = append(s, x.ref.String())
	}
	return strings.Join(s, ", ")
}
