package watermark

// Resolved applies resolved ts ts of incarnation x: no commit with
// commit_ts <= ts will follow for x's keys. A pending incarnation keeps it
// to claim with later; a ready one raises the ts of every entry it owns.
//
// Ignored and counted: an unknown incarnation (a re-delivery after x was
// forgotten, or garbage), a ts below x's latest (a regression, or a
// re-delivery of an older record), any ts after x's END (its final ts is
// final).
func (m *Map) Resolved(x Ref, ts uint64) {
	i := m.lookup(x)
	if i == nil {
		m.counters.UnknownIncarnation++
		return
	}
	if i.ended() {
		switch {
		case ts > i.latest:
			m.counters.AfterEnd++
		case ts < i.latest:
			m.counters.Regressed++
		}
		return
	}
	m.raise(i, ts)
	m.finish()
}

// End applies x's END with its last resolved ts (0 if it never published
// one). Once x is also ready it is complete, and successors waiting on it
// claim its keys. An END of an unknown incarnation is counted and dropped;
// EndFrom keeps it for the START to come.
func (m *Map) End(x Ref, finalTs uint64) {
	i := m.lookup(x)
	if i == nil {
		m.counters.UnknownIncarnation++
		return
	}
	m.end1(i, 0, finalTs, nil)
	m.finish()
}

// endNow ends i: its final ts applies and the parts where it is ready
// become complete.
func (m *Map) endNow(i *inc, finalTs uint64) {
	m.unlead(i)
	if finalTs > 0 {
		m.raise(i, finalTs)
	}
	i.setEnded()
	m.nEnded++
	if parts := i.completeParts(); len(parts) > 0 {
		m.queue = append(m.queue, progress{p: i, parts: append([]keyRange(nil), parts...)})
	}
}

// raise records ts as x's latest and lifts x's entries.
func (m *Map) raise(x *inc, ts uint64) {
	m.detach(x)
	switch {
	case ts < x.latest:
		m.counters.Regressed++
		return
	case ts == x.latest:
		return
	}
	x.latest = ts
	if x.owned() == 0 {
		return
	}
	if x.floor != 0 && x.floor <= ts {
		m.fold(x)
	}
	m.reslot(x)
}
