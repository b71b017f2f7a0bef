package watermark

// inc is the table's state of one incarnation. It is the per-region unit of
// memory, so its fields are packed to stay in the 96-byte size class.
type inc struct {
	ref Ref
	// start, end: the incarnation's range clipped to the span (end "" =
	// +infinity). start is shared with the entry that starts there.
	start, end string
	// latest is the greatest resolved ts reported for the incarnation, also
	// while it is pending: that is what it may claim with once it is safe.
	latest uint64
	// floor is the smallest non-zero base of the entries it owns (see
	// entry), 0 if none.
	floor uint64
	// pend is nil once every key of the range is safe to claim ("ready").
	pend *pending
	// meta packs the number of entries owned (low 28 bits), whether its
	// store lost it in a restart (bit 28), whether it is attached to its
	// store's group (bit 29, see group.go), whether one of its entries has
	// base 0 (bit 30) and the ended flag (bit 31).
	meta uint32
	slot int32 // slot in the min-tree while it owns entries and is not attached, else -1
	// src is the leader's store: the stream that wrote the START, and its
	// group (nil = unknown). It keeps the struct at 96 bytes.
	src *source
}

const (
	endedBit    = 1 << 31
	foldedBit   = 1 << 30
	attachedBit = 1 << 29
	unledBit    = 1 << 28
	ownedMask   = unledBit - 1
)

func (x *inc) attached() bool { return x.meta&attachedBit != 0 }
func (x *inc) unled() bool    { return x.meta&unledBit != 0 }
func (x *inc) setUnled()      { x.meta |= unledBit }

func (x *inc) setAttached(a bool) {
	x.meta &^= attachedBit
	if a {
		x.meta |= attachedBit
	}
}

func (x *inc) owned() int     { return int(x.meta & ownedMask) }
func (x *inc) ended() bool    { return x.meta&endedBit != 0 }
func (x *inc) setEnded()      { x.meta |= endedBit }
func (x *inc) folded() bool   { return x.meta&foldedBit != 0 }
func (x *inc) rng() keyRange  { return keyRange{x.start, x.end} }
func (x *inc) complete() bool { return x.ended() && x.pend == nil }

func (x *inc) addOwned(d int) {
	x.meta = x.meta&^ownedMask | uint32(x.owned()+d)&ownedMask
}

func (x *inc) setFolded(f bool) {
	x.meta &^= foldedBit
	if f {
		x.meta |= foldedBit
	}
}

// minTs is the smallest ts among x's entries: an entry with base 0 is at
// x.latest, every other one at its base, which is above x.latest.
func (x *inc) minTs() uint64 {
	if x.folded() || x.floor == 0 {
		return x.latest
	}
	return x.floor
}

// pending is what an incarnation that is not ready still waits for.
type pending struct {
	// waiting: predecessors not complete here yet, known or not.
	waiting []Ref
	// covered: normalized parts of the range whose predecessors are complete
	// here; the incarnation has claimed them.
	covered []keyRange
}

func (p *pending) isWaiting(r Ref) bool {
	for _, w := range p.waiting {
		if w == r {
			return true
		}
	}
	return false
}

func (p *pending) stopWaiting(r Ref) {
	for i, w := range p.waiting {
		if w == r {
			p.waiting = append(p.waiting[:i], p.waiting[i+1:]...)
			return
		}
	}
}

// The table is two maps: byRegion holds one incarnation per region id,
// keyed by a uint64 (half the slot size of a Ref key, which matters at
// 270,000 regions); extra holds further incarnations of a region id (a
// successor started while its predecessor is still kept), which are few and
// move to byRegion once the slot is free.

// lookup finds an incarnation in the table.
func (m *Map) lookup(r Ref) *inc {
	x := m.byRegion[r.RegionID]
	if x != nil && x.ref == r {
		return x
	}
	if len(m.extra) == 0 {
		return nil
	}
	y := m.extra[r]
	if y != nil && x == nil {
		delete(m.extra, r)
		m.byRegion[r.RegionID] = y
	}
	return y
}

// known reports whether x is still the table's incarnation for its Ref (it
// may have been forgotten while a caller held the pointer).
func (m *Map) known(x *inc) bool { return m.lookup(x.ref) == x }

// each calls fn for every incarnation in the table.
func (m *Map) each(fn func(x *inc)) {
	for _, x := range m.byRegion {
		fn(x)
	}
	for _, x := range m.extra {
		fn(x)
	}
}

func (m *Map) insert(x *inc) {
	if m.byRegion[x.ref.RegionID] == nil {
		m.byRegion[x.ref.RegionID] = x
	} else {
		m.extra[x.ref] = x
	}
	m.nIncs++
	if x.ended() {
		m.nEnded++
	}
	if x.pend != nil {
		m.pending[x] = struct{}{}
	}
	m.join(x)
	// Until it owns an entry it is a candidate for the stale sweep.
	m.touch(x, false)
}

func (m *Map) unlink(x *inc) {
	if m.byRegion[x.ref.RegionID] == x {
		delete(m.byRegion, x.ref.RegionID)
		return
	}
	delete(m.extra, x.ref)
}

// forget drops x from the table: it is complete and owns nothing, or it
// can never own anything because newer incarnations own its whole range.
func (m *Map) forget(x *inc) {
	if !m.known(x) {
		return
	}
	m.unlead(x)
	m.unlink(x)
	m.nIncs--
	if x.ended() {
		m.nEnded--
	}
	if x.pend != nil {
		for _, w := range x.pend.waiting {
			m.unwait(w, x)
		}
		delete(m.pending, x)
	}
	delete(m.loose, x)
	delete(m.touched, x)
	delete(m.held, x.ref)
	delete(m.foreignEnd, x.ref)
	m.unslot(x)
	m.counters.Forgotten++
}

// unwait removes x from the successors waiting on predecessor p.
func (m *Map) unwait(p Ref, x *inc) {
	ws := m.waiters[p]
	for i, w := range ws {
		if w == x {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(m.waiters, p)
	} else {
		m.waiters[p] = ws
	}
}
