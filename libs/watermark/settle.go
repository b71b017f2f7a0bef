package watermark

// Readiness is per key: a key of incarnation x is safe for x to own once
// every predecessor over that key is complete there, that is, has ended and
// is itself ready at that key. So a key's state depends only on the
// incarnations over that key, never on where the span's ends are: a map of
// a smaller span behaves exactly like the restriction of a bigger one (what
// Split and Merge rely on), and a predecessor whose other keys wait for
// their own predecessors does not hold x back where it is done.

// readyParts returns the parts of x's range that are ready.
func (x *inc) readyParts() []keyRange {
	if x.pend == nil {
		return []keyRange{x.rng()}
	}
	return x.pend.covered
}

// completeParts returns the parts of x's range where x is complete.
func (x *inc) completeParts() []keyRange {
	if !x.ended() {
		return nil
	}
	return x.readyParts()
}

// progress is a queue item: parts of p's range that just became complete.
type progress struct {
	p     *inc
	parts []keyRange
}

// offer gives pending incarnation x the parts of predecessor p that are
// complete: x claims the keys of them inside its range, except keys that
// another predecessor x still waits for covers and is not complete at (only
// bad input makes predecessors overlap).
func (m *Map) offer(x, p *inc, parts []keyRange) {
	if x.pend == nil {
		return
	}
	if p.complete() {
		x.pend.stopWaiting(p.ref)
		m.unwait(p.ref, x)
	}
	var cut []keyRange
	for _, w := range x.pend.waiting {
		if q := m.lookup(w); q != nil && q != p {
			cut = append(cut, subtract(q.rng(), q.completeParts())...)
		}
	}
	cut = append(cut, x.pend.covered...)
	var newly []keyRange
	for _, g := range parts {
		g = g.intersect(x.rng()).intersect(p.rng())
		if !g.empty() {
			newly = append(newly, subtract(g, cut)...)
		}
	}
	if len(newly) > 0 {
		x.pend.covered = normalize(append(x.pend.covered, newly...))
		for _, r := range newly {
			m.claim(x, r)
		}
	}
	m.checkReady(x, newly)
}

// checkReady makes x ready once its ready parts cover its whole range, and
// passes newly ready parts on to x's successors if x has ended. When x is
// ready, the predecessors it still waits for either lie outside the span
// (their START is never routed here) or overlap the others, which TiKV
// never does: the predecessors of one START are disjoint.
func (m *Map) checkReady(x *inc, newly []keyRange) {
	if x.pend != nil && covers(x.pend.covered, x.rng()) {
		for _, w := range x.pend.waiting {
			m.unwait(w, x)
		}
		x.pend = nil
		delete(m.pending, x)
	}
	if x.ended() && len(newly) > 0 {
		m.queue = append(m.queue, progress{p: x, parts: newly})
	}
}

// settle propagates completions: for each queue item, the successors
// waiting on its incarnation take the newly complete parts, and their own
// newly complete parts are queued in turn. It is a loop over a queue, not a
// recursion, so a long chain of incarnations cannot grow the stack; every
// key of every incarnation is queued at most once, when it becomes complete.
func (m *Map) settle() {
	for len(m.queue) > 0 {
		it := m.queue[len(m.queue)-1]
		m.queue = m.queue[:len(m.queue)-1]
		p := it.p
		ws := append([]*inc(nil), m.waiters[p.ref]...)
		if p.complete() {
			delete(m.waiters, p.ref)
		}
		for _, w := range ws {
			if w.pend != nil && m.known(w) && w.pend.isWaiting(p.ref) {
				m.offer(w, p, it.parts)
			}
		}
		// p may own nothing any more: let flush collect it.
		m.touch(p, false)
	}
}

// finish ends every mutating operation: propagate completions, bring the
// min-tree and GC up to date, sweep stale incarnations when due, and publish.
func (m *Map) finish() {
	m.settle()
	m.flush()
	if n := len(m.loose) + len(m.early); n > 0 && 2*m.sinceSweep >= n {
		m.sinceSweep = 0
		m.sweep()
	}
	if raw := m.raw(); raw > m.published {
		m.published = raw
	}
}

// sweep forgets incarnations that own nothing, are not complete, and never
// can own anything: newer incarnations own their whole range. Only
// duplicates and bad input produce them (a legitimate pending incarnation
// always has keys still held by its predecessors), but without the sweep
// they would pile up. It runs once at least len(loose)/2 claims happened
// since the last sweep, so its cost is amortized over the claims, which are
// what can make incarnations stale (each claim adds at most one candidate).
func (m *Map) sweep() {
	m.sweepEarly()
	for x := range m.loose {
		if x.owned() > 0 || x.complete() || !m.known(x) {
			delete(m.loose, x)
			continue
		}
		if m.allNewer(x.rng(), x.ref) {
			m.forget(x)
		}
	}
}
