package watermark

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// A history is what a small TiKV cluster writes: per-store streams of
// START/resolved/END records for random splits, merges and leader transfers
// of regions whose boundaries are grid keys. Time is global: every record
// happens at its own instant t, and the model of TSO causality is that a
// commit happening after instant t has commit_ts > 10t, while a resolved ts
// published at instant t is below 10t. That makes both TiKV rules hold: no
// commit at or below a published resolved ts follows it, for the incarnation
// or any later one over the same keys.

type event struct {
	kind       byte // 's', 'r', 'e'
	ref        Ref
	start, end string
	preds      []Ref
	ts         uint64
	time       int
}

func (e event) apply(m *Map) {
	switch e.kind {
	case 's':
		m.Start(e.ref, k(e.start), k(e.end), e.preds)
	case 'r':
		m.Resolved(e.ref, e.ts)
	case 'e':
		m.End(e.ref, e.ts)
	}
}

func (e event) String() string {
	return fmt.Sprintf("%c %v [%q,%q) %v ts=%d @%d", e.kind, e.ref, e.start, e.end, e.preds, e.ts, e.time)
}

// hinc is one incarnation of the history.
type hinc struct {
	ref        Ref
	start, end string
	store      int
	startTime  int
	startPos   int // index of its START in its store's stream
	endPos     int // index of its END, -1 while live
	last       uint64
}

type history struct {
	streams [][]event
	incs    []*hinc
	live    []*hinc // regions in key order at the end
	bounds  []string
	t       int
	rng     *rand.Rand
	nextID  uint64
}

func (h *history) emit(store int, e event) int {
	h.t++
	e.time = h.t
	h.streams[store] = append(h.streams[store], e)
	return len(h.streams[store]) - 1
}

func (h *history) startInc(ref Ref, s, e string, store int, preds []Ref) *hinc {
	x := &hinc{ref: ref, start: s, end: e, store: store, endPos: -1}
	x.startPos = h.emit(store, event{kind: 's', ref: ref, start: s, end: e, preds: preds})
	x.startTime = h.t
	h.incs = append(h.incs, x)
	return x
}

func (h *history) endInc(x *hinc) {
	x.endPos = h.emit(x.store, event{kind: 'e', ref: x.ref, ts: x.last})
}

func (h *history) resolve(x *hinc) {
	// Published at instant h.t+1, so below 10*(h.t+1).
	ts := max(x.last, uint64(max(0, 10*(h.t+1)-1-h.rng.IntN(40))))
	x.last = ts
	h.emit(x.store, event{kind: 'r', ref: x.ref, ts: ts})
}

// mix is the percentage of each kind of step; the rest are resolved ts.
type mix struct{ split, merge, transfer int }

var defaultMix = mix{split: 18, merge: 14, transfer: 18}

// genHistory makes a history over nStores stores with region boundaries
// taken from nKeys grid keys, and ops random steps.
func genHistory(rng *rand.Rand, nStores, nKeys, ops int) *history {
	return genHistoryMix(rng, nStores, nKeys, ops, defaultMix)
}

func genHistoryMix(rng *rand.Rand, nStores, nKeys, ops int, mx mix) *history {
	h := &history{streams: make([][]event, nStores), rng: rng, nextID: 1}
	for i := 0; i < nKeys; i++ {
		h.bounds = append(h.bounds, fmt.Sprintf("k%05d", i))
	}
	// Bootstrap: a few regions tiling the key space, each led by a store.
	cuts := []string{""}
	for _, b := range h.bounds {
		if rng.IntN(4) == 0 {
			cuts = append(cuts, b)
		}
	}
	cuts = append(cuts, "")
	for i := 0; i+1 < len(cuts); i++ {
		h.live = append(h.live, h.startInc(Ref{h.nextID, 1, 5}, cuts[i], cuts[i+1], rng.IntN(nStores), nil))
		h.nextID++
	}
	for range ops {
		switch p := rng.IntN(100); {
		case p < mx.split:
			h.split()
		case p < mx.split+mx.merge:
			h.merge()
		case p < mx.split+mx.merge+mx.transfer:
			h.transfer(nStores)
		default:
			h.resolve(h.live[rng.IntN(len(h.live))])
		}
	}
	return h
}

// inner returns the grid keys strictly inside [s, e).
func (h *history) inner(s, e string) []string {
	var out []string
	for _, b := range h.bounds {
		if b > s && endAfter(e, b) {
			out = append(out, b)
		}
	}
	return out
}

func (h *history) split() {
	// As in the simulator: split at a random key, so wide regions split
	// more often and the region count finds a steady state.
	key := h.bounds[h.rng.IntN(len(h.bounds))]
	i := 0
	for i+1 < len(h.live) && h.live[i+1].start <= key {
		i++
	}
	p := h.live[i]
	if p.start == key {
		return
	}
	h.endInc(p)
	preds := []Ref{p.ref}
	// As in the seed and the simulator: the left part gets a new id, the
	// right part keeps the id; both get the next version; the leader stays.
	left := h.startInc(Ref{h.nextID, p.ref.Version + 1, 5}, p.start, key, p.store, preds)
	h.nextID++
	right := h.startInc(Ref{p.ref.RegionID, p.ref.Version + 1, p.ref.Term}, key, p.end, p.store, preds)
	h.live = append(h.live[:i], append([]*hinc{left, right}, h.live[i+1:]...)...)
}

func (h *history) merge() {
	if len(h.live) < 2 {
		return
	}
	i := h.rng.IntN(len(h.live) - 1)
	l, r := h.live[i], h.live[i+1]
	src, dst := l, r
	if h.rng.IntN(2) == 0 {
		src, dst = r, l
	}
	h.endInc(src)
	h.endInc(dst)
	ref := Ref{dst.ref.RegionID, max(src.ref.Version, dst.ref.Version) + 1, dst.ref.Term}
	m := h.startInc(ref, l.start, r.end, dst.store, []Ref{src.ref, dst.ref})
	h.live = append(h.live[:i], append([]*hinc{m}, h.live[i+2:]...)...)
}

func (h *history) transfer(nStores int) {
	if nStores < 2 {
		return
	}
	i := h.rng.IntN(len(h.live))
	p := h.live[i]
	to := (p.store + 1 + h.rng.IntN(nStores-1)) % nStores
	h.endInc(p)
	n := h.startInc(Ref{p.ref.RegionID, p.ref.Version, p.ref.Term + 1}, p.start, p.end, to, []Ref{p.ref})
	h.live[i] = n
}

// segments returns the grid segments inside span: the unit ranges between
// consecutive boundaries, which no region boundary cuts.
func (h *history) segments(span keyRange) []keyRange {
	cuts := append([]string{""}, h.bounds...)
	var out []keyRange
	for i, c := range cuts {
		e := ""
		if i+1 < len(cuts) {
			e = cuts[i+1]
		}
		if r := (keyRange{c, e}).intersect(span); !r.empty() {
			out = append(out, r)
		}
	}
	return out
}

// oracle answers, for a delivery state, the greatest ts that is truly safe
// for the span: for every key, every commit at or below it has been
// delivered.
type oracle struct {
	h      *history
	covers [][]*hinc // per segment, the incarnations over it
}

func newOracle(h *history, span keyRange) *oracle {
	o := &oracle{h: h}
	for _, seg := range h.segments(span) {
		var cs []*hinc
		for _, x := range h.incs {
			if !(keyRange{x.start, x.end}).intersect(seg).empty() {
				cs = append(cs, x)
			}
		}
		o.covers = append(o.covers, cs)
	}
	return o
}

// safe returns the true safe watermark when delivered[s] records of store s
// have been delivered. An incarnation's undelivered commits happen after the
// later of its START and the last delivered record of its store, so they are
// above 10 times that instant; an incarnation whose END was delivered has
// none left.
func (o *oracle) safe(delivered []int) uint64 {
	out := uint64(math.MaxUint64)
	for _, cs := range o.covers {
		for _, x := range cs {
			d := delivered[x.store]
			if x.endPos >= 0 && x.endPos < d {
				continue
			}
			at := x.startTime
			if d > 0 {
				at = max(at, o.h.streams[x.store][d-1].time)
			}
			out = min(out, uint64(10*at))
		}
	}
	return out
}

// final is the watermark once everything is delivered: per key the greatest
// resolved ts any incarnation over it published (each owner keeps what its
// predecessors guaranteed), and the minimum of that over the span.
func (o *oracle) final() uint64 {
	out := uint64(math.MaxUint64)
	for _, cs := range o.covers {
		var best uint64
		for _, x := range cs {
			best = max(best, x.last)
		}
		out = min(out, best)
	}
	return out
}

// interleave returns a random delivery order of the streams (store indexes)
// that keeps each store's own order. Per-interleaving weights make some
// stores run far ahead of others, the case the protocol is about.
func interleave(rng *rand.Rand, h *history) []int {
	left := make([]int, len(h.streams))
	weights := make([]int, len(h.streams))
	total := 0
	for s, st := range h.streams {
		left[s] = len(st)
		total += len(st)
		weights[s] = 1 + rng.IntN(20)
	}
	order := make([]int, 0, total)
	for len(order) < total {
		sum := 0
		for s := range left {
			if left[s] > 0 {
				sum += weights[s]
			}
		}
		pick := rng.IntN(sum)
		for s := range left {
			if left[s] == 0 {
				continue
			}
			if pick < weights[s] {
				order = append(order, s)
				left[s]--
				break
			}
			pick -= weights[s]
		}
	}
	return order
}
