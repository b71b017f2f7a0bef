package sorter

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/route/routepb"
	rangesorter "github.com/tistream/tistream/libs/sorter"
	"github.com/tistream/tistream/libs/watermark"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// holder is one range assigned to this sorter at one epoch: it takes the
// range (restore or create), then flushes, snapshots and acknowledges it
// until the range is reassigned, retired or the lease is lost. Batches are
// applied by the Ingest streams under mu, so a range is driven by one
// goroutine at a time.
type holder struct {
	s      *Service
	key    rangeKey
	epoch  uint64
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	retake chan struct{} // the local state is broken: drop it and take again

	// task is the latest watched task (same epoch); set without mu so the
	// watcher never waits for a range busy with the pool.
	task atomic.Pointer[metav1.RangeTask]

	mu sync.Mutex
	r  *rangesorter.Range // nil until taken, and after a drop
	// gone: stopped; taken: counted in the ranges gauge.
	gone, taken bool
	// snapBatches is r's batch count at its last snapshot (or take);
	// tickBatches at the last snapshot tick.
	snapBatches, tickBatches int64
	// snapDeleted and snapDeleteErrs are r's counts of older snapshots
	// deleted and failed deletions, as last added to the metric.
	snapDeleted, snapDeleteErrs int64
	// durable are the store positions of the last snapshot (or of the
	// one restored); received the highest file seq per store seen since;
	// ackDue the stores whose feeders wait for a Durable.
	durable  map[uint64]uint64
	received map[uint64]uint64
	ackDue   map[uint64]bool
	// blocked are the stores whose last batch was refused for a late
	// commit (the tistream_sorter_stream_blocked series set).
	blocked map[uint64]bool
	// stall watches the published watermark (stall.go).
	stall stallWatch
	// load measures the range's rows and samples its keys (load.go).
	load loadTracker
}

func newHolder(s *Service, t *metav1.RangeTask) *holder {
	k := rangeKey{t.TenantId, t.RangeId}
	ctx, cancel := context.WithCancel(s.rootCtx)
	h := &holder{s: s, key: k, epoch: t.Epoch, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		retake:  make(chan struct{}, 1),
		log:     s.log.With("tenant", k.tenant, "range", k.id, "epoch", t.Epoch),
		durable: map[uint64]uint64{}, received: map[uint64]uint64{}, ackDue: map[uint64]bool{}, blocked: map[uint64]bool{}}
	h.load.since = time.Now()
	h.task.Store(t)
	return h
}

func (h *holder) setTask(t *metav1.RangeTask) { h.task.Store(t) }

func (h *holder) start(context.Context) { go h.run() }

// stop ends the holder and drops the range's local state; graceful first
// snapshots what changed since the last snapshot, so the next owner resumes
// from there.
func (h *holder) stop(graceful bool) {
	h.cancel()
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.r != nil && graceful && !h.r.Sealed() && h.r.Stats().Batches != h.snapBatches {
		ctx, cancel := context.WithTimeout(context.Background(), h.s.cfg.StopTimeout)
		if _, err := h.r.Snapshot(ctx); err != nil {
			h.log.Warn("final snapshot", "err", err)
		} else {
			h.s.m.snapshots.Inc()
		}
		cancel()
	}
	h.dropLocked()
	h.gone = true
}

// dropLocked drops the range's local state.
func (h *holder) dropLocked() {
	for store := range h.blocked {
		h.unblockLocked(store)
	}
	h.clearStallLocked()
	h.stall = stallWatch{}
	if h.r == nil {
		return
	}
	if err := h.r.Drop(); err != nil {
		h.log.Warn("drop range buffer", "err", err)
	}
	h.r = nil
	if h.taken {
		h.taken = false
		h.s.m.ranges.Dec()
	}
}

func (h *holder) run() {
	defer close(h.done)
	for h.take() {
		if !h.loop() {
			return
		}
	}
}

// take takes the range at the holder's epoch, retrying until it works; it
// returns false when the holder ends first. A range this epoch can never
// take (fenced by a newer owner, sealed) waits for its task to change.
func (h *holder) take() bool {
	wait := h.s.cfg.RetryMin
	for {
		t := h.task.Load()
		spec := pool.RangeSpec{Tenant: t.TenantId, RangeID: t.RangeId, Start: t.StartKey, End: t.EndKey,
			OpenedAt: t.OpenedAtTs, Parents: t.ParentRangeIds}
		if len(spec.End) == 0 {
			spec.End = nil
		}
		r, err := rangesorter.Take(h.ctx, h.s.deps, spec, h.epoch)
		if err == nil {
			h.mu.Lock()
			h.r, h.taken = r, true
			h.durable = maps.Clone(r.Applied())
			h.snapBatches = r.Stats().Batches
			h.tickBatches = h.snapBatches
			h.mu.Unlock()
			h.load.restart(time.Now())
			h.s.m.ranges.Inc()
			h.s.m.takes.WithLabelValues("taken").Inc()
			h.log.Info("range taken", "log_seq", r.LogSeq(), "published", r.Published(), "positions", r.Applied())
			return true
		}
		if h.ctx.Err() != nil {
			return false
		}
		switch {
		case errors.Is(err, pool.ErrFenced), errors.Is(err, rangesorter.ErrSealed):
			result := "fenced"
			if errors.Is(err, rangesorter.ErrSealed) {
				result = "sealed"
			}
			h.s.m.takes.WithLabelValues(result).Inc()
			h.log.Info("range cannot be taken at this epoch; waiting for its task to change", "err", err)
			<-h.ctx.Done()
			return false
		case errors.Is(err, rangesorter.ErrNoLog):
			h.log.Debug("range has no log yet (its parents are not sealed)", "retry_in", wait)
		default:
			h.s.m.takes.WithLabelValues("error").Inc()
			h.log.Warn("take range", "err", err, "retry_in", wait)
		}
		select {
		case <-time.After(wait):
		case <-h.ctx.Done():
			return false
		}
		wait = min(wait*2, h.s.cfg.RetryMax)
	}
}

// loop flushes and snapshots the taken range; it returns true when the
// range must be taken again (its local state was dropped), false when the
// holder ends.
func (h *holder) loop() bool {
	flushT := time.NewTicker(h.s.cfg.FlushInterval)
	defer flushT.Stop()
	snapT := time.NewTicker(h.s.cfg.SnapshotInterval)
	defer snapT.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return false
		case <-h.retake:
			h.mu.Lock()
			h.dropLocked()
			h.mu.Unlock()
			return true
		case <-flushT.C:
			h.flush()
		case <-snapT.C:
			h.snapshot()
		}
	}
}

// flush drives a sealing range (also once sealed: as the lowest parent of
// a merge, it drives the sealing of the others, an earlier attempt may have
// stopped half way). The others are flushed by their tenant's publisher
// (publish.go), all in one publication.
func (h *holder) flush() {
	h.mu.Lock()
	r, t := h.r, h.task.Load()
	sealing := t.State == metav1.RangeTask_STATE_SEALING && len(t.SuccessorRangeIds) > 0
	h.mu.Unlock()
	if r != nil && sealing {
		h.seal(t)
	}
}

// snapshot writes a snapshot when the range applied something since the
// last one and its content changed or the skip bound is reached
// (snapshotDueLocked), then acknowledges the last snapshot's positions to
// the feeders of the stores that wait for it.
func (h *holder) snapshot() {
	h.mu.Lock()
	r := h.r
	if r == nil || r.Sealed() {
		h.mu.Unlock()
		return
	}
	if b := r.Stats().Batches; b != h.snapBatches {
		var wrote bool
		var err error
		if h.snapshotDueLocked(b) {
			_, err = r.Snapshot(h.ctx)
			wrote = true
		} else {
			_, wrote, err = r.SnapshotIfChanged(h.ctx)
		}
		if err != nil {
			h.mu.Unlock()
			if h.ctx.Err() == nil {
				h.log.Warn("snapshot range", "err", err)
			}
			return
		}
		if wrote {
			h.s.m.snapshots.Inc()
			// Acknowledge it only if no newer owner took the range
			// before it was written: that one restored an older
			// snapshot, and the dispatchers would move their checkpoints
			// past files it never got (CheckTaken). Not confirmed: the
			// next tick writes and checks again.
			if err := r.CheckTaken(h.ctx); err != nil {
				h.mu.Unlock()
				switch {
				case errors.Is(err, pool.ErrFenced):
					h.s.m.snapUnacked.WithLabelValues("taken").Inc()
					h.log.Info("snapshot not acknowledged: a newer owner has taken the range", "err", err)
				case h.ctx.Err() == nil:
					h.s.m.snapUnacked.WithLabelValues("error").Inc()
					h.log.Warn("snapshot not acknowledged: could not check that the range is still ours; trying again at the next snapshot", "err", err)
				}
				return
			}
			h.snapBatches = b
			h.durable = maps.Clone(r.Applied())
			st := r.Stats()
			h.s.m.snapDeleted.WithLabelValues("deleted").Add(counterDelta(st.SnapshotsDeleted, h.snapDeleted))
			h.s.m.snapDeleted.WithLabelValues("error").Add(counterDelta(st.SnapshotDeleteErrors, h.snapDeleteErrs))
			h.snapDeleted, h.snapDeleteErrs = st.SnapshotsDeleted, st.SnapshotDeleteErrors
		} else {
			h.s.m.snapSkipped.Inc()
		}
		h.tickBatches = b
	}
	var acks []*sorterv1.Durable
	for store := range h.ackDue {
		d := h.durable[store]
		if d == 0 {
			continue
		}
		acks = append(acks, &sorterv1.Durable{TenantId: h.key.tenant, RangeId: h.key.id, StoreId: store, Seq: d})
		if d >= h.received[store] {
			delete(h.ackDue, store)
		}
	}
	h.mu.Unlock()
	h.s.sendDurable(acks)
}

// snapshotDueLocked reports whether the range writes a snapshot even if
// its content did not change. A skipped snapshot is not acknowledged: the
// dispatchers keep the files after the last one's positions and hold their
// checkpoints, and a window of unacknowledged files fills. So an unchanged
// range writes once a store has fed it --snapshot-max-skip-files files since
// its last snapshot, and when nothing arrived since the previous tick (its
// feeders may be waiting for this very ack, with a window smaller than the
// bound, or its stores went quiet: either way, acknowledge what it has).
// h.mu held.
func (h *holder) snapshotDueLocked(batches int64) bool {
	bound := h.s.cfg.SnapshotMaxSkipFiles
	if bound <= 0 || batches == h.tickBatches {
		return true
	}
	for store, seq := range h.received {
		if seq >= h.durable[store]+uint64(bound) {
			return true
		}
	}
	return false
}

// apply applies one range batch; it reports false when the batch is
// refused (not taken, sealed, or the range failed and is taken again).
func (h *holder) apply(store, seq, maxTs uint64, b *routepb.ReceivedBatch) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.r
	if r == nil || r.Sealed() || h.gone || !h.s.admit(rangeStore{h.key, store}, seq, r.Applied()[store]) {
		return false
	}
	if applied := r.Applied()[store]; b.PrevSeq > applied && seq > applied {
		// The range missed a batch of this store (its state went back to
		// a snapshot when it was taken again, or an older stream's request
		// overtook a resend): applying this one would lose the missed
		// file's events. Refused (sticky); the dispatcher resends from its
		// checkpoint.
		h.log.Warn("batch refused: the range has not applied the store's previous file for it; waiting for the resend",
			"store", store, "seq", seq, "prev_seq", b.PrevSeq, "applied", applied)
		h.s.m.batches.WithLabelValues("gap").Inc()
		return false
	}
	if hook := h.s.applying; hook != nil {
		hook(h.key, store, seq)
	}
	evs, err := b.Events, b.Err
	if err != nil {
		h.log.Error("undecodable range batch refused", "store", store, "seq", seq, "err", err)
		h.s.m.batches.WithLabelValues("error").Inc()
		return false
	}
	dups, proven := r.Stats().Duplicates, r.Stats().ProvenDuplicates
	wmBefore := r.WatermarkCounters()
	start := time.Now()
	err = r.Apply(&route.Batch{RangeID: h.key.id, Pos: route.Position{Store: store, Seq: seq}, MaxTs: maxTs, Events: evs})
	h.load.spent(start, 0)
	if err != nil {
		if errors.Is(err, rangesorter.ErrSealed) {
			return false
		}
		if errors.Is(err, rangesorter.ErrLateCommit) {
			// The range is unchanged: refuse the batch (and, sticky, the
			// store's later files) on every resend until the file is fixed.
			h.log.Error("batch refused: a commit at or below the published watermark would be lost to readers past it; the store's stream stops here",
				"store", store, "seq", seq, "err", err)
			h.s.m.batches.WithLabelValues("late_commit").Inc()
			h.s.m.blocked.WithLabelValues(h.labels(store, "late_commit")...).Set(1)
			h.blocked[store] = true
			return false
		}
		// A half-applied batch leaves the state unknown: take the range
		// again from its snapshot; the dispatcher resends.
		h.log.Error("apply failed; taking the range again", "store", store, "seq", seq, "err", err)
		h.s.m.batches.WithLabelValues("error").Inc()
		h.dropLocked()
		select {
		case h.retake <- struct{}{}:
		default:
		}
		return false
	}
	h.unblockLocked(store)
	h.countIgnored(wmBefore, r.WatermarkCounters())
	for _, n := range r.TakeNotes() {
		h.log.Info("watermark map set a record aside", "note", n)
	}
	if n := r.Stats().ProvenDuplicates - proven; n > 0 {
		h.log.Warn("dropped commits below the published watermark: already published (a re-upload)", "store", store, "seq", seq, "commits", n)
		h.s.m.provenDups.Add(float64(n))
	}
	w := h.s.wake(h.key.tenant)
	if r.Stats().Duplicates != dups {
		h.s.m.batches.WithLabelValues("duplicate").Inc()
	} else {
		h.s.m.batches.WithLabelValues("applied").Inc()
		h.s.m.rows.Add(float64(len(evs)))
		h.s.events.Add(int64(len(evs)))
		w.fed.Add(h.load.observe(maxTs, evs))
	}
	h.received[store] = max(h.received[store], seq)
	h.ackDue[store] = true
	poke(w.kick) // the flush target may have moved: publish (wake.go)
	return true
}

func (h *holder) labels(store uint64, reason string) []string {
	return []string{strconv.FormatUint(h.key.tenant, 10), strconv.FormatUint(h.key.id, 10), strconv.FormatUint(store, 10), reason}
}

// unblockLocked clears a store's blocked series. h.mu held.
func (h *holder) unblockLocked(store uint64) {
	if !h.blocked[store] {
		return
	}
	delete(h.blocked, store)
	h.s.m.blocked.DeleteLabelValues(h.labels(store, "late_commit")...)
	h.log.Info("store unblocked", "store", store)
}

// countIgnored adds what the watermark map ignored during one batch to the
// metrics.
func (h *holder) countIgnored(before, after watermark.Counters) {
	b, a := ignoredKinds(before), ignoredKinds(after)
	for i := range a {
		if a[i].n > b[i].n {
			h.s.m.wmIgnored.WithLabelValues(a[i].kind).Add(float64(a[i].n - b[i].n))
		}
	}
}

type kindCount struct {
	kind string
	n    uint64
}

// ignoredKinds are the watermark map's counts of the region records it
// ignored or held, by the kind tistream_sorter_watermark_ignored_total
// labels them with.
func ignoredKinds(c watermark.Counters) []kindCount {
	return []kindCount{
		{"regressed", c.Regressed},
		{"stale_start", c.Stale},
		{"duplicate_start", c.DuplicateStart},
		{"duplicate_end", c.DuplicateEnd},
		{"unknown_incarnation", c.UnknownIncarnation},
		{"after_end", c.AfterEnd},
		{"bad_start", c.OutsideSpan + c.BadRange + c.InvalidRef + c.BadPredecessor},
		{"foreign_end", c.ForeignEnd},
		{"foreign_resolved", c.ForeignResolved},
		{"takeover_wait", c.TakeoverWaits},
		{"early_end", c.EarlyEnds + c.EarlyDropped},
		{"unled", c.Unled},
	}
}

// ignoredSummary lists the non-zero counts of ignoredKinds ("none" if
// all are zero): a stalled range's log line says what its map set aside.
func ignoredSummary(c watermark.Counters) string {
	var parts []string
	for _, k := range ignoredKinds(c) {
		if k.n > 0 {
			parts = append(parts, k.kind+"="+strconv.FormatUint(k.n, 10))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// counterDelta is what a counter gains from a range's count now against
// the count last added (the whole count if the range was replaced and its
// stats started again).
func counterDelta(now, last int64) float64 {
	if now < last {
		return float64(now)
	}
	return float64(now - last)
}
