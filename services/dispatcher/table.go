package dispatcher

import (
	"bytes"
	"maps"

	"github.com/tistream/tistream/libs/route"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// rangeOwner is where a range's batches go: its sorter, that sorter's
// address (empty while the range is unassigned or its sorter is not
// registered) and the range epoch the batches carry.
type rangeOwner struct {
	sorter string
	addr   string
	epoch  uint64
}

// routeSnap is one immutable state of a tenant's routing. A newer state
// closes changed.
type routeSnap struct {
	table   *route.Table // nil until the tenant's ranges tile the key space
	owners  map[uint64]rangeOwner
	sealing map[uint64]bool // ranges of the table whose task is SEALING (a split's or merge's parents)
	changed chan struct{}
}

func (s *routeSnap) owner(rangeID uint64) (rangeOwner, bool) {
	o, ok := s.owners[rangeID]
	return o, ok && o.addr != ""
}

// selectRanges picks the ranges that receive data now: SEALING ranges (they
// take data until they are retired) and ACTIVE ranges none of whose parents
// is still ACTIVE or SEALING (a split's or merge's children start receiving
// only once their parents are retired). In a consistent state these tile the
// key space.
func selectRanges(tasks map[uint64]*metav1.RangeTask) []route.Range {
	live := func(id uint64) bool {
		t, ok := tasks[id]
		return ok && (t.State == metav1.RangeTask_STATE_ACTIVE || t.State == metav1.RangeTask_STATE_SEALING)
	}
	var out []route.Range
	for id, t := range tasks {
		switch t.State {
		case metav1.RangeTask_STATE_SEALING:
		case metav1.RangeTask_STATE_ACTIVE:
			parentLive := false
			for _, p := range t.ParentRangeIds {
				if p != id && live(p) {
					parentLive = true
				}
			}
			if parentLive {
				continue
			}
		default:
			continue
		}
		out = append(out, route.Range{ID: id, Start: t.StartKey, End: t.EndKey})
	}
	return out
}

// buildTable builds the table of the selected ranges. When they do not tile
// the key space (a split or merge half-written, or an inconsistent state) it
// keeps prev and returns the error for the log. An unchanged set of ranges
// returns prev itself, so streams can tell "same table" by identity.
func buildTable(tasks map[uint64]*metav1.RangeTask, prev *route.Table) (*route.Table, error) {
	t, err := route.NewTable(selectRanges(tasks))
	if err != nil {
		return prev, err
	}
	if prev != nil && sameRanges(prev.Ranges(), t.Ranges()) {
		return prev, nil
	}
	return t, nil
}

func sameRanges(a, b []route.Range) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || !bytes.Equal(a[i].Start, b[i].Start) || !bytes.Equal(a[i].End, b[i].End) {
			return false
		}
	}
	return true
}

// ownersOf resolves every range of table to its owner. A range of a kept
// (previous) table that no longer has a task gets no owner.
func ownersOf(table *route.Table, tasks map[uint64]*metav1.RangeTask, sorters map[string]string) map[uint64]rangeOwner {
	out := map[uint64]rangeOwner{}
	if table == nil {
		return out
	}
	for _, r := range table.Ranges() {
		t, ok := tasks[r.ID]
		if !ok || t.State == metav1.RangeTask_STATE_RETIRED {
			out[r.ID] = rangeOwner{}
			continue
		}
		o := rangeOwner{sorter: t.Owner, epoch: t.Epoch}
		if t.Owner != "" {
			o.addr = sorters[t.Owner]
		}
		out[r.ID] = o
	}
	return out
}

// sealingOf is the set of table's ranges whose task is SEALING.
func sealingOf(table *route.Table, tasks map[uint64]*metav1.RangeTask) map[uint64]bool {
	out := map[uint64]bool{}
	if table == nil {
		return out
	}
	for _, r := range table.Ranges() {
		if t, ok := tasks[r.ID]; ok && t.State == metav1.RangeTask_STATE_SEALING {
			out[r.ID] = true
		}
	}
	return out
}

// changedRanges lists the ranges whose owner differs between a and b.
func changedRanges(a, b map[uint64]rangeOwner) map[uint64]bool {
	out := map[uint64]bool{}
	for id, o := range a {
		if b[id] != o {
			out[id] = true
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			out[id] = true
		}
	}
	return out
}

func sameOwners(a, b map[uint64]rangeOwner) bool { return maps.Equal(a, b) }
