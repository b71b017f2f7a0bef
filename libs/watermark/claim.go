package watermark

// claim gives x every sub-range of r (within x's range and the span) that an
// older incarnation or a hole holds. The new ts there is max(old ts,
// x.latest): the old owner's guarantee stays valid for those keys (it is
// complete, and its successors commit above its resolved ts), and so does
// x's own. Sub-ranges held by newer incarnations are left alone: newer
// versions win wherever they overlap, in any arrival order.
func (m *Map) claim(x *inc, r keyRange) { m.claimOver(x, r, nil) }

// claimOver is claim with, when the caller has it, over: the entries that
// overlap r as the tree holds them now (m.overlapping(r)). When r starts at
// an entry's boundary, those are the entries claim would look up again
// (splitting at r.end adds one that starts at r.end, outside r): a START
// over holes, the common case, then costs fewer tree searches.
func (m *Map) claimOver(x *inc, r keyRange, over []*entry) {
	if c := r.intersect(x.rng()); c != r {
		r, over = c, nil
	}
	if r.empty() {
		return
	}
	if len(over) == 0 || over[0].start != r.start {
		m.splitAt(r.start)
		over = nil
	}
	m.splitAt(r.end)
	if over == nil {
		over = m.within(r)
	}
	for _, e := range over {
		o := e.owner
		if o == x {
			continue
		}
		if o != nil {
			if o.ref.Version == x.ref.Version && o.ref.RegionID != x.ref.RegionID {
				// TiKV never has two regions of one version over one key.
				m.counters.VersionConflicts++
			}
			if o.ref.Compare(x.ref) > 0 {
				continue
			}
		}
		base := e.ts()
		m.lose(o, e.base)
		if base <= x.cur() {
			base = 0
		}
		e.owner, e.base = x, base
		m.gain(x, base)
	}
	m.coalesce(r)
	m.sinceSweep++
}

// gain records that x got an entry with the given base.
func (m *Map) gain(x *inc, base uint64) {
	if x.owned() == 0 {
		x.floor = 0
		x.setFolded(false)
	}
	switch {
	case base == 0:
		x.setFolded(true)
	case x.floor == 0 || base < x.floor:
		x.floor = base
	}
	x.addOwned(1)
	m.touch(x, false)
}

// lose records that o (nil: a hole) gave up an entry with the given base.
func (m *Map) lose(o *inc, base uint64) {
	if o == nil {
		m.holes--
		return
	}
	o.addOwned(-1)
	// The entry may have been the last with base 0, or the one at floor.
	m.touch(o, base == 0 || base == o.floor)
}

// touch notes that x's entries changed; flush brings the min-tree, the sweep
// candidates and the GC up to date once per operation. recompute asks for
// x's floor and folded flag to be recomputed.
func (m *Map) touch(x *inc, recompute bool) {
	m.touched[x] = m.touched[x] || recompute
}

// flush settles every incarnation touched by the operation.
func (m *Map) flush() {
	for x, recompute := range m.touched {
		delete(m.touched, x)
		if !m.known(x) {
			continue
		}
		if x.owned() == 0 {
			m.unslot(x)
			if x.complete() {
				// Every key of x is owned by newer incarnations, whose
				// predecessors up to x were all seen: no legitimate START
				// can name x any more, only a duplicate.
				m.forget(x)
			} else {
				m.loose[x] = struct{}{}
			}
			continue
		}
		delete(m.loose, x)
		if recompute {
			m.recomputeBases(x)
		}
		m.reslot(x)
	}
}

// reslot stores x's smallest ts in the min-tree.
func (m *Map) reslot(x *inc) {
	m.detach(x)
	if x.slot < 0 {
		x.slot = m.mins.alloc()
	}
	m.mins.set(x.slot, x.minTs())
}

func (m *Map) unslot(x *inc) {
	m.detach(x)
	if x.slot >= 0 {
		m.mins.release(x.slot)
		x.slot = -1
	}
}

// recomputeBases recomputes x's floor and folded flag from the entries in
// x's range. Only x's own entries and newer owners' entries lie there; the
// newer ones are few because x only loses keys to its successors.
func (m *Map) recomputeBases(x *inc) {
	x.floor = 0
	x.setFolded(false)
	for _, e := range m.within(x.rng()) {
		switch {
		case e.owner != x:
		case e.base == 0:
			x.setFolded(true)
		case x.floor == 0 || e.base < x.floor:
			x.floor = e.base
		}
	}
}

// fold rewrites the bases of x's entries that x.latest has caught up with to
// 0, and coalesces them: an incarnation whose own ts has passed what it
// inherited goes back to one entry per contiguous piece.
func (m *Map) fold(x *inc) {
	for _, e := range m.within(x.rng()) {
		if e.owner == x && e.base != 0 && e.base <= x.latest {
			e.base = 0
		}
	}
	m.coalesce(x.rng())
	m.recomputeBases(x)
}
