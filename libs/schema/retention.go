package schema

import (
	"slices"
	"sort"
)

// Truncate drops what only questions about ts older than before need:
// versions replaced at or before it (each object keeps the version valid at
// before) and changes committed before it. The floor moves to before; it
// never moves back, nor past the resolved ts (the history must still know
// the schema at its floor). It reports whether the floor moved.
func (h *History) Truncate(before uint64) bool {
	h.closeTail()
	before = min(before, h.resolved)
	if before <= h.floor {
		return false
	}
	for id, vs := range h.dbs {
		if vs = trimVersions(vs, before, dbTs, func(d DB) bool { return d.Info == nil }); len(vs) == 0 {
			delete(h.dbs, id)
		} else {
			h.dbs[id] = vs
		}
	}
	for id, vs := range h.tables {
		if vs = trimVersions(vs, before, tableTs, func(t Table) bool { return t.Info == nil }); len(vs) == 0 {
			delete(h.tables, id)
		} else {
			h.tables[id] = vs
		}
	}
	// The table index is left as it is: truncation only removes versions,
	// so it still lists every table with a version in each database (and
	// maybe some gone, which its readers skip). The registry truncates
	// every persist; rebuilding it then cost a listing ~0.3 s at 1,000,000
	// tables.
	h.versions = trimVersions(h.versions, before, pointTs, func(versionPoint) bool { return false })
	i := sort.Search(len(h.changes), func(i int) bool { return h.changes[i].CommitTs >= before })
	if i > 0 {
		h.changes = slices.Clone(h.changes[i:])
		h.scan = 0
	}
	h.floor = before
	return true
}

// trimVersions keeps the version valid at before and those after it. A
// drop valid at before goes too: no version at all says the same.
func trimVersions[T any](vs []T, before uint64, tsOf func(T) uint64, dropped func(T) bool) []T {
	i := sort.Search(len(vs), func(i int) bool { return tsOf(vs[i]) > before })
	k := max(i-1, 0)
	if k < len(vs) && tsOf(vs[k]) <= before && dropped(vs[k]) {
		k++
	}
	if k == 0 {
		return vs
	}
	return slices.Clone(vs[k:])
}
