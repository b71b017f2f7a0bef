package watermark

import "slices"

// A store stream in format version 2 resolves every region it leads in one
// record (LeaderResolvedTs: ts for every incarnation it leads, except the
// listed ones). Applying it incarnation by incarnation would cost what the
// store leads, every file; instead the map keeps, per store, a group:
//
//   - members are the incarnations the record applies to: the store is
//     their leader (it wrote their START), they have not ended, the store
//     has not lost them in a restart (LeadersFrom), and they were not
//     started after the store's last record or excepted in it;
//   - "out" are the other incarnations the store leads (started since its
//     last record, or excepted in it): the next record makes them members
//     unless it excepts them again;
//   - a member that owns entries, all at base 0, with its own ts at most
//     the group's, is attached: it has no min-tree slot of its own, its ts
//     is the group's (inc.cur), and the group's one slot holds the group's
//     ts while any member is attached. Raising the group's ts raises them
//     all in O(1). Every other member ("solo") is raised one by one.
//
// Whatever touches an attached member one by one (its own resolved ts, its
// END, a claim over its keys, the min-tree) first detaches it: its ts is
// written into its fields and it becomes solo. The next record attaches it
// again if it qualifies. So a record costs O(exceptions + out + solo), and
// its effect is exactly that of Resolved(x, ts) for every member x.

// source is one store stream's group in the map.
type source struct {
	id       uint64
	ts       uint64 // ts of the store's last record applied here
	slot     int32  // min-tree slot holding ts while attached > 0, else -1
	attached int
	solo     map[*inc]struct{}
	out      map[*inc]struct{}
	nLed     int // incarnations the store leads here (inc.led)
}

// source returns store's group (nil for store 0, unknown).
func (m *Map) source(store uint64) *source {
	if store == 0 {
		return nil
	}
	s := m.sources[store]
	if s == nil {
		s = &source{id: store, slot: -1, solo: map[*inc]struct{}{}, out: map[*inc]struct{}{}}
		m.sources[store] = s
	}
	return s
}

// storeID is x's leader store, 0 if unknown.
func (x *inc) storeID() uint64 {
	if x.src == nil {
		return 0
	}
	return x.src.id
}

// cur is x's resolved ts now: its own, or its group's while attached.
func (x *inc) cur() uint64 {
	if x.attached() {
		return max(x.latest, x.src.ts)
	}
	return x.latest
}

// led reports whether x's store still leads it: the store's records apply.
func (x *inc) led() bool { return x.src != nil && !x.ended() && !x.unled() }

// join registers a led incarnation with its store's group (not a member
// until the store's next record).
func (m *Map) join(x *inc) {
	if x.led() {
		x.src.out[x] = struct{}{}
		x.src.nLed++
	}
}

// unlead records that x's store no longer leads it (x ends, is forgotten
// or was lost in a restart); call it before the change.
func (m *Map) unlead(x *inc) {
	if x.led() {
		m.leave(x)
		x.src.nLed--
	}
}

// detach writes an attached member's ts into its fields and moves it from
// the group's slot to a slot of its own; it stays a member, raised one by
// one.
func (m *Map) detach(x *inc) {
	if !x.attached() {
		return
	}
	s := x.src
	x.latest = max(x.latest, s.ts)
	x.setAttached(false)
	if s.attached--; s.attached == 0 {
		m.mins.release(s.slot)
		s.slot = -1
	}
	s.solo[x] = struct{}{}
	x.slot = m.mins.alloc()
	m.mins.set(x.slot, x.minTs())
}

// leave takes x out of its store's group: it ended, was forgotten, is no
// longer led, or is excepted.
func (m *Map) leave(x *inc) {
	if x.src == nil {
		return
	}
	m.detach(x)
	delete(x.src.solo, x)
	delete(x.src.out, x)
}

// place makes member x attached if that changes nothing observable, else
// keeps it solo.
func (m *Map) place(x *inc) {
	s := x.src
	if x.owned() == 0 || x.floor != 0 || x.latest != s.ts {
		s.solo[x] = struct{}{}
		return
	}
	delete(s.solo, x)
	if x.slot >= 0 {
		m.mins.release(x.slot)
		x.slot = -1
	}
	x.setAttached(true)
	if s.attached++; s.attached == 1 {
		s.slot = m.mins.alloc()
		m.mins.set(s.slot, s.ts)
	}
}

// LeaderResolvedFrom applies a LeaderResolvedTs record read from store's
// stream: every incarnation that store leads at this point of its stream
// (see the group above), except those in except, has resolved ts ts. It
// costs O(len(except)) plus the incarnations that changed state since the
// store's previous record, not what the store leads. Refs in except that
// the map does not hold, or that another store leads, are ignored.
func (m *Map) LeaderResolvedFrom(store, ts uint64, except []Ref) {
	s := m.source(store)
	if s == nil {
		return
	}
	var skip []*inc
	for _, r := range except {
		x := m.lookup(r)
		if x == nil || x.src != s || !x.led() {
			continue
		}
		if _, out := s.out[x]; !out {
			m.leave(x) // with the ts it had: the group's so far
			s.out[x] = struct{}{}
		}
		skip = append(skip, x)
	}
	switch {
	case ts < s.ts:
		// What Resolved would count for each attached member.
		m.counters.Regressed += uint64(s.attached)
	case ts > s.ts:
		s.ts = ts
		if s.slot >= 0 {
			m.mins.set(s.slot, ts)
		}
	}
	for x := range s.solo {
		m.raise(x, ts)
		m.place(x)
	}
	joined := 0
	for x := range s.out {
		if slices.Contains(skip, x) {
			continue
		}
		delete(s.out, x)
		m.raise(x, ts)
		m.place(x)
		joined++
	}
	if len(s.out) == 0 && joined > 1024 {
		s.out = map[*inc]struct{}{} // a map never shrinks: let a large one go (after a bootstrap)
	}
	m.finish()
}

// LeadersFrom applies a store's full leader list at a point of its stream
// (the header of a format version 2 file that carries one): refs are the
// incarnations it leads there (those outside the span are ignored). An
// incarnation that store led, did not end and that refs leaves out is no
// longer led by it: the store restarted and lost it without an END (its
// next leader takes it over); the store's records no longer apply to it.
// An incarnation in refs whose leader is unknown (store 0, as in maps
// decoded from an older encoding) takes store as its leader. O(incarnations
// in the map + len(refs) log len(refs)) when the list drops some, else
// O(len(refs)); full lists are periodic. It returns the incarnations it
// found no longer led (for the caller's diagnostics; normally none).
func (m *Map) LeadersFrom(store uint64, refs []Ref) (unled []Ref) {
	s := m.source(store)
	if s == nil {
		return nil
	}
	found := 0
	for _, r := range refs {
		switch x := m.lookup(r); {
		case x == nil:
		case x.src == nil && !x.ended():
			x.src = s
			m.join(x)
			found++
		case x.src == s && x.led():
			found++
		}
	}
	if found == s.nLed {
		m.finish() // every incarnation the store leads here is listed
		return nil
	}
	listed := slices.Clone(refs)
	slices.SortFunc(listed, Ref.Compare)
	m.each(func(x *inc) {
		_, in := slices.BinarySearchFunc(listed, x.ref, Ref.Compare)
		if x.src == s && !in && x.led() {
			m.unlead(x)
			x.setUnled()
			m.counters.Unled++
			unled = append(unled, x.ref)
		}
	})
	m.finish()
	slices.SortFunc(unled, Ref.Compare)
	return unled
}
