package sorter

import (
	"errors"
	"slices"

	rangesorter "github.com/tistream/tistream/libs/sorter"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// seal drives a SEALING range (docs/fleet.md, "Range split and merge"):
// with several successors it is split into them (Range.SplitInto); with one
// successor that has several parents it is merged with its siblings
// (MergeInto), driven by the holder of the lowest parent id that holds its
// range, once this sorter holds every parent. A merge or split that is not ready yet (a
// target below the seal point, a parent not here yet, a successor task not
// seen yet) is tried again at the next flush tick; a sealing range is not
// flushed on its own meanwhile.
func (h *holder) seal(t *metav1.RangeTask) {
	succ := make([]rangesorter.Successor, 0, len(t.SuccessorRangeIds))
	for _, id := range t.SuccessorRangeIds {
		c := h.s.task(rangeKey{h.key.tenant, id})
		if c == nil {
			return // the watch has not delivered it yet
		}
		succ = append(succ, rangesorter.Successor{ID: id, Start: c.StartKey, End: nilIfEmpty(c.EndKey), Parents: c.ParentRangeIds})
	}
	if len(succ) == 1 && len(succ[0].Parents) > 1 {
		h.merge(succ[0])
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.r == nil || h.r.Sealed() {
		return
	}
	h.sealed("split", h.r.SplitInto(h.ctx, succ))
}

// merge merges the parents of child held by this sorter into it.
func (h *holder) merge(child rangesorter.Successor) {
	ids := slices.Clone(child.Parents)
	slices.Sort(ids)
	holders := make([]*holder, 0, len(ids))
	for _, id := range ids {
		p := h.s.lookup(rangeKey{h.key.tenant, id})
		if p == nil {
			h.log.Debug("merge waits for its parents to be assigned here", "child", child.ID, "missing", id)
			return
		}
		holders = append(holders, p)
	}
	for _, p := range holders { // in range id order: no lock cycle
		p.mu.Lock()
		defer p.mu.Unlock()
	}
	// The lowest parent holding its range drives the merge (one that is
	// sealed already, or cannot be taken because it is, is passed over).
	var parents []*rangesorter.Range
	var driver *holder
	for _, p := range holders {
		if p.r == nil {
			continue
		}
		if driver == nil {
			driver = p
		}
		if !p.r.Sealed() {
			parents = append(parents, p.r)
		}
	}
	if driver != h {
		return
	}
	if len(parents) == 0 {
		return
	}
	h.sealed("merge", rangesorter.MergeInto(h.ctx, child, parents))
}

// sealed accounts for a split or merge attempt.
func (h *holder) sealed(op string, err error) {
	switch {
	case err == nil:
		h.s.m.seals.WithLabelValues(op, "done").Inc()
		h.log.Info("range sealed", "op", op)
	case errors.Is(err, rangesorter.ErrNotReady):
		h.s.m.seals.WithLabelValues(op, "not_ready").Inc()
		h.log.Debug("seal not ready", "op", op, "err", err)
	case h.ctx.Err() == nil:
		h.s.m.seals.WithLabelValues(op, "error").Inc()
		h.log.Warn("seal range", "op", op, "err", err)
	}
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
