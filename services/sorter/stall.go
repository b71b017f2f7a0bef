package sorter

import (
	"strconv"
	"time"
)

// stallWatch notices a range whose published watermark stops moving while
// its stores' files keep arriving: whatever the reason (a commit waiting
// for a prewrite that never comes, a takeover waiting for a crashed store's
// stream, a forged or sloppy input), it is logged with its cause and
// exported, never silent.
type stallWatch struct {
	movedAt    time.Time // the published watermark last moved (or the range was taken)
	batchesAt  int64     // batches applied then
	cause      string    // the cause of the series set, "" when not stalled
	reportedAt time.Time // last log line
}

// watchStallLocked runs after each flush; moved says whether it published.
// h.mu held.
func (h *holder) watchStallLocked(moved bool) {
	now := time.Now()
	w := &h.stall
	batches := h.r.Stats().Batches
	if moved || w.movedAt.IsZero() {
		if w.cause != "" {
			h.log.Info("watermark moving again", "after", now.Sub(w.movedAt).Round(time.Second), "published", h.r.Published())
		}
		h.clearStallLocked()
		w.movedAt, w.batchesAt = now, batches
		return
	}
	stalled := now.Sub(w.movedAt)
	if stalled < h.s.cfg.StallAfter || batches == w.batchesAt {
		// Not long enough, or no input since: an idle range is not stalled.
		return
	}
	b := h.r.Blocker()
	if b.Cause != w.cause {
		h.clearStallLocked()
		w.cause = b.Cause
		h.s.m.stalls.WithLabelValues(b.Cause).Inc()
	}
	h.s.m.stalled.WithLabelValues(h.stallLabels(b.Cause)...).Set(stalled.Seconds())
	if now.Sub(w.reportedAt) >= h.s.cfg.StallAfter {
		w.reportedAt = now
		h.log.Warn("range watermark stalled while input arrives", "cause", b.Cause, "for", stalled.Round(time.Second),
			"published", h.r.Published(), "target", b.Ts, "batches_since", batches-w.batchesAt, "detail", b.Detail,
			"ignored_since_taken", ignoredSummary(h.r.WatermarkCounters()))
	}
}

// clearStallLocked removes the range's stalled series. h.mu held.
func (h *holder) clearStallLocked() {
	w := &h.stall
	if w.cause != "" {
		h.s.m.stalled.DeleteLabelValues(h.stallLabels(w.cause)...)
	}
	w.cause, w.reportedAt = "", time.Time{}
}

func (h *holder) stallLabels(cause string) []string {
	return []string{strconv.FormatUint(h.key.tenant, 10), strconv.FormatUint(h.key.id, 10), cause}
}
