package watermark

// entry is one sub-range of the span, [start, next entry's start) or up to
// the span's end for the last one. Ends are implicit so that a split or a
// coalesce touches one entry, and only one key string per boundary is held.
type entry struct {
	start string
	// owner is the incarnation the sub-range belongs to; nil for a hole.
	owner *inc
	// base is the ts the sub-range inherited when its owner claimed it: the
	// previous owner's guarantee there. The entry's ts is max(base,
	// owner.latest). A base at or below owner.latest is stored as 0 so that
	// neighbours that differ only in an outgrown base coalesce.
	base uint64
}

// ts is the entry's resolved ts: the guarantee for its keys.
func (e *entry) ts() uint64 {
	if e.owner == nil {
		return 0
	}
	return max(e.base, e.owner.cur())
}

func entryLess(a, b *entry) bool { return a.start < b.start }

// at returns the probe for key k (the tree compares starts only).
func (m *Map) at(k string) *entry {
	m.probe.start = k
	return &m.probe
}

// find returns the entry containing key k (k within the span).
func (m *Map) find(k string) *entry {
	var found *entry
	m.tree.DescendLessOrEqual(m.at(k), func(e *entry) bool {
		found = e
		return false
	})
	return found
}

// endOf returns the end of entry e.
func (m *Map) endOf(e *entry) string {
	end := m.end
	m.tree.AscendGreaterOrEqual(m.at(e.start), func(n *entry) bool {
		if n == e {
			return true
		}
		end = n.start
		return false
	})
	return end
}

// intern returns the string already held for key k if an entry starts
// there, so that the new incarnation shares it instead of keeping a copy.
func (m *Map) intern(k string) string {
	switch {
	case k == "":
		return ""
	case k == m.start:
		return m.start
	case k == m.end:
		return m.end
	}
	if e, ok := m.tree.Get(m.at(k)); ok {
		return e.start
	}
	return k
}

// splitAt makes k an entry boundary. Both halves keep the owner and base.
func (m *Map) splitAt(k string) {
	if k == "" || k <= m.start || !endAfter(m.end, k) {
		return
	}
	e := m.find(k)
	if e == nil || e.start == k {
		return
	}
	m.tree.ReplaceOrInsert(&entry{start: k, owner: e.owner, base: e.base})
	m.countEntry(e.owner, 1)
}

// countEntry adjusts entry counts for an entry that appears or disappears
// without changing the owner's smallest base.
func (m *Map) countEntry(owner *inc, d int) {
	if owner == nil {
		m.holes += d
		return
	}
	owner.addOwned(d)
}

// within collects, into m.scratch, the entries that start in r.
func (m *Map) within(r keyRange) []*entry {
	m.scratch = m.scratch[:0]
	m.tree.AscendGreaterOrEqual(m.at(r.start), func(e *entry) bool {
		if !endAfter(r.end, e.start) {
			return false
		}
		m.scratch = append(m.scratch, e)
		return true
	})
	return m.scratch
}

// overlapping collects the entries that overlap r, including one that starts
// before r.start.
func (m *Map) overlapping(r keyRange) []*entry {
	first := m.find(r.start)
	list := m.within(r)
	if first != nil && first.start < r.start {
		list = append([]*entry{first}, list...)
		m.scratch = list
	}
	return list
}

// coalesce merges adjacent entries with the same owner and base, from the
// entry before r through the entry that starts at r's end, which is all a
// change inside r can make mergeable.
func (m *Map) coalesce(r keyRange) {
	list := m.scratch[:0]
	m.tree.DescendLessOrEqual(m.at(r.start), func(e *entry) bool {
		if e.start < r.start {
			list = append(list, e)
			return false
		}
		return true
	})
	m.tree.AscendGreaterOrEqual(m.at(r.start), func(e *entry) bool {
		if r.end != "" && e.start > r.end {
			return false
		}
		list = append(list, e)
		return r.end == "" || e.start != r.end
	})
	m.scratch = list
	var keep *entry
	for _, e := range list {
		if keep != nil && keep.owner == e.owner && keep.base == e.base {
			m.tree.Delete(e)
			m.countEntry(e.owner, -1)
			continue
		}
		keep = e
	}
}
