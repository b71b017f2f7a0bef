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
	from, pos  uint64    // the store (1-based) and the record's place in its stream (1-based: its "file")
	takeover   *Takeover // a takeover END
}

// apply delivers the record as a sorter does: from its store's stream, then
// the position reached in that stream.
func (e event) apply(m *Map) {
	switch e.kind {
	case 's':
		m.StartFrom(e.from, e.ref, k(e.start), k(e.end), e.preds)
	case 'r':
		m.ResolvedFrom(e.from, e.ref, e.ts)
	case 'e':
		m.EndFrom(e.from, e.ref, k(e.start), k(e.end), e.ts, e.takeover)
	}
	m.Progress(e.from, e.pos)
}

func (e event) String() string {
	tk := ""
	if e.takeover != nil {
		tk = fmt.Sprintf(" takeover of store %d through %d", e.takeover.Store, e.takeover.ThroughSeq)
	}
	return fmt.Sprintf("%c %v [%q,%q) %v ts=%d @%d store %d pos %d%s", e.kind, e.ref, e.start, e.end, e.preds, e.ts, e.time, e.from, e.pos, tk)
}

// hinc is one incarnation of the history.
type hinc struct {
	ref        Ref
	start, end string
	store      int
	startTime  int
	startPos   int // index of its START in its store's stream
	endPos     int // index of its END, -1 while live (in endStore's stream)
	endStore   int
	last       uint64
	// A takeover: its leader crashed after crashPos records of its stream
	// were uploaded; the END in endStore's stream proves them through
	// proofPos.
	takenOver          bool
	crashPos, proofPos int
}

type history struct {
	streams [][]event
	incs    []*hinc
	live    []*hinc // regions in key order at the end
	bounds  []string
	t       int
	rng     *rand.Rand
	nextID  uint64
	kept    []int // per store: records known uploaded at its last crash
	// restarts are, per store, the positions in its stream where it
	// restarted after a crash: the records from there on are its restarted
	// stream's, which leads none of what it led before.
	restarts [][]int
}

func (h *history) emit(store int, e event) int {
	h.t++
	e.time = h.t
	e.from, e.pos = uint64(store+1), uint64(len(h.streams[store])+1)
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
	x.endStore = x.store
	x.endPos = h.emit(x.store, event{kind: 'e', ref: x.ref, start: x.start, end: x.end, ts: x.last})
}

func (h *history) resolve(x *hinc) {
	// Published at instant h.t+1, so below 10*(h.t+1).
	ts := max(x.last, uint64(max(0, 10*(h.t+1)-1-h.rng.IntN(40))))
	x.last = ts
	h.emit(x.store, event{kind: 'r', ref: x.ref, ts: ts})
}

// mix is the percentage of each kind of step; the rest are resolved ts.
type mix struct{ split, merge, transfer, crash int }

var defaultMix = mix{split: 18, merge: 14, transfer: 18, crash: 6}

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
		case p < mx.split+mx.merge+mx.transfer+mx.crash:
			h.crash(nStores)
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

// crash loses the tail of a store's stream back to (at most a few) resolved
// ts records — the file it had not uploaded — and every region it leads is
// taken over by another store (store-change-file spec, "Takeover"): the new
// leader starts its own incarnation naming the old one, then ends the old one
// on its behalf with a proof: the old leader's stream through the last
// uploaded record of it. The re-written rows of the takeover are implicit
// (the model's commits are ts bounds, see oracle). The crashed store then
// goes on (restarted) with new leaderships only.
func (h *history) crash(nStores int) {
	if nStores < 2 {
		return
	}
	a := h.rng.IntN(nStores)
	st := h.streams[a]
	n := len(st)
	if h.kept == nil {
		h.kept = make([]int, nStores)
	}
	for lost := h.rng.IntN(4); lost > 0 && n > h.kept[a] && st[n-1].kind == 'r'; lost-- {
		n--
	}
	h.streams[a] = st[:n]
	h.kept[a] = n // what a crash already found uploaded stays uploaded
	if h.restarts == nil {
		h.restarts = make([][]int, nStores)
	}
	h.restarts[a] = append(h.restarts[a], n)
	for i, x := range h.live {
		if x.store != a {
			continue
		}
		// What a reader can have of x: its uploaded records.
		x.last, x.proofPos = 0, 0
		for j, e := range h.streams[a] {
			if e.ref == x.ref {
				x.proofPos = j + 1
				if e.kind == 'r' {
					x.last = max(x.last, e.ts)
				}
			}
		}
		x.takenOver, x.crashPos = true, n
		to := (a + 1 + h.rng.IntN(nStores-1)) % nStores
		nx := h.startInc(Ref{x.ref.RegionID, x.ref.Version, x.ref.Term + 1}, x.start, x.end, to, []Ref{x.ref})
		x.endStore = to
		x.endPos = h.emit(to, event{kind: 'e', ref: x.ref, start: x.start, end: x.end, ts: x.last,
			takeover: &Takeover{Store: uint64(a + 1), ThroughSeq: uint64(x.proofPos)}})
		h.live[i] = nx
	}
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
		out = min(out, o.safeOver(cs, delivered))
	}
	return out
}

// safeOver is safe for one grid segment, given the incarnations over it.
func (o *oracle) safeOver(cs []*hinc, delivered []int) uint64 {
	out := uint64(math.MaxUint64)
	{
		for _, x := range cs {
			d := delivered[x.store]
			if x.endPos >= 0 && x.endPos < delivered[x.endStore] && (!x.takenOver || d >= x.proofPos) {
				continue
			}
			if x.takenOver {
				// Its commits after the last uploaded record were lost and
				// are re-written with the takeover END.
				d = min(d, x.crashPos)
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

// checkEntries checks the claim the map rests on key by key (docs/watermarks.md
// section 3): no entry's ts passes the true safe ts of any grid segment it
// covers. Stronger than comparing the span's minimum.
func (o *oracle) checkEntries(m *Map, delivered []int) error {
	segs := o.h.segments(keyRange{m.start, m.end})
	for e := range m.All() {
		r := keyRange{string(e.Start), string(e.End)}
		for i, seg := range segs {
			if seg.intersect(r).empty() {
				continue
			}
			if safe := o.safeOver(o.covers[i], delivered); e.Ts > safe {
				return fmt.Errorf("entry [%q,%q) of %v at %d passes segment [%q,%q)'s safe ts %d", e.Start, e.End, e.Owner, e.Ts, seg.start, seg.end, safe)
			}
		}
	}
	return nil
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
