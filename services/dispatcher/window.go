package dispatcher

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Restart reasons (the reason label of the restarts metric).
const (
	reasonRouting  = "routing"   // the table or an owner of an in-flight range changed
	reasonNotOwner = "not_owner" // a sorter refused a batch
	reasonIngest   = "ingest"    // an Ingest stream broke
	reasonDecode   = "decode"    // a store file failed to decode or route
	reasonStorage  = "storage"   // object storage failed
	reasonEtcd     = "etcd"      // etcd failed
	reasonStopped  = "stopped"   // the stream is stopping (not counted)
	reasonDrained  = "drained"   // graceful stop finished draining (not counted)
)

// runState is one run of a stream: from its checkpoint, with one Router,
// until something makes it restart.
type runState struct {
	ctx    context.Context
	failed chan struct{}
	once   sync.Once
	mu     sync.Mutex
	why    string
	cause  error
	later  *time.Timer // failAfter's, stopped when the run ends

	// Under the stream's mu (delivered.go): the ranges this run skips
	// (already delivered on a live Ingest stream) and those refused during
	// it (never recorded as delivered by it).
	skips         map[uint64]skipMark
	refusedRanges map[uint64]bool

	// prev is, per range, the seq of the last file this run routed a
	// batch to it from (sent or skipped): the next batch's prev_seq, by
	// which a sorter that missed one refuses it. Only the run's goroutine
	// touches it.
	prev map[uint64]uint64
}

func newRunState(ctx context.Context) *runState {
	return &runState{ctx: ctx, failed: make(chan struct{}), skips: map[uint64]skipMark{}, refusedRanges: map[uint64]bool{},
		prev: map[uint64]uint64{}}
}

// fail ends the run (the first failure wins).
func (r *runState) fail(reason string, err error) {
	r.once.Do(func() {
		r.mu.Lock()
		r.why, r.cause = reason, err
		r.mu.Unlock()
		close(r.failed)
	})
}

// failAfter ends the run after d unless it ended before (the first call
// arms the timer; later ones change nothing).
func (r *runState) failAfter(d time.Duration, reason string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.later == nil {
		r.later = time.AfterFunc(d, func() { r.fail(reason, err) })
	}
}

// stop releases failAfter's timer once the run is over.
func (r *runState) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.later != nil {
		r.later.Stop()
	}
}

func (r *runState) reason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.why
}

func (r *runState) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cause
}

// ended reports whether the run is over: its queued requests are dropped.
func (r *runState) ended() bool {
	select {
	case <-r.failed:
		return true
	default:
		return r.ctx.Err() != nil
	}
}

// position is a store file seq and its max_ts.
type position struct {
	seq, maxTs uint64
}

// inflight is a file sent to the sorters and not yet durable everywhere:
// pending maps each range still owing a Durable ack to the sorter address
// its batch went to; sent maps every range the file fed to that address.
type inflight struct {
	seq, maxTs uint64
	base       uint64 // the stream's last full leader list at the end of the file (see stream.ckptBase)
	pending    map[uint64]string
	sent       map[uint64]string
}

// onDurable records that range rangeID has made this stream's store durable
// up to seq, as reported by the sorter at addr. An in-flight file's range is
// settled only by the sorter its batch went to; the stream-wide record (used
// to skip ranges of later files) only takes acks from the range's current
// owner: an ack from a previous owner says nothing about what the next one
// restored.
func (st *stream) onDurable(addr string, rangeID, seq uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if o, ok := st.snap.owner(rangeID); ok && o.addr == addr && seq > st.durable[rangeID] {
		st.durable[rangeID] = seq
	}
	for _, f := range st.window {
		if f.seq > seq {
			break
		}
		if a, ok := f.pending[rangeID]; ok && a == addr {
			delete(f.pending, rangeID)
		}
	}
	st.advanceLocked()
}

// onNotOwner fails the current run if the refused batch is one of its
// in-flight files, even one whose range was already durable there: the run
// restarts from the checkpoint, below the refused file, so the sorter gets
// it again before any later file of that range. A refusal of a file behind
// the checkpoint is stale (the range has it durably).
//
// A refusal by the owner of a SEALING range (a split's or merge's parent
// that sealed: it refuses every later batch) does not end the run at once:
// nothing but the routing change naming its successors ends the refusals,
// and that change ends the run anyway (a new table). Until then the run
// goes on feeding the other ranges (within the window: the refused file
// stays pending, so the checkpoint stays below it), instead of restarting,
// re-reading its window and being refused again. If the change does not
// come within sealedWait the run ends as for any refusal.
func (st *stream) onNotOwner(addr string, rangeID, seq uint64) {
	st.mu.Lock()
	r := st.run
	// Refusals cancel the skip (delivered.go): a run that skips the range
	// ends as if the refused file were one of its own.
	skipped := st.forgetDeliveredLocked(r, rangeID, addr)
	hit := false
	for _, f := range st.window {
		if f.seq == seq && f.sent[rangeID] == addr {
			hit = true
			break
		}
	}
	sealed := false
	if hit || skipped {
		// The lowest file refused in this run: later files of the store
		// are refused after it (sticky), whatever the order of the answers.
		if hit && (st.refusedRun != r || seq < st.refused) {
			st.refusedRun, st.refused = r, seq
		}
		o, ok := st.snap.owner(rangeID)
		sealed = ok && o.addr == addr && st.snap.sealing[rangeID]
	}
	if (!hit && !skipped) || r == nil {
		st.mu.Unlock()
		return
	}
	err := fmt.Errorf("sorter %s does not own range %d (file %d)", addr, rangeID, seq)
	if sealed {
		st.mu.Unlock()
		if r.ended() {
			return
		}
		st.sm.sealedWaits.Inc()
		r.failAfter(sealedWait, reasonNotOwner, fmt.Errorf("range %d sealing and its successors not routed after %s: %w", rangeID, sealedWait, err))
		return
	}
	// Under mu: no request of r is recorded as delivered after this.
	r.fail(reasonNotOwner, err)
	st.mu.Unlock()
}

// sealedWait bounds how long a run keeps going after a SEALING range's
// refusal, waiting for the routing to name the range's successors (a
// variable for the tests).
var sealedWait = 3 * time.Second

// appendFile adds a file about to be sent to the window, unless the
// routing snapshot its requests were built from (snap) is no longer the
// stream's: then it reports false and the caller rebuilds them, so a file
// never waits on an ack from a sorter the stream no longer routes to.
func (st *stream) appendFile(f *inflight, snap *routeSnap) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.snap != snap {
		return false
	}
	for id := range f.pending {
		if st.durable[id] >= f.seq {
			delete(f.pending, id)
		}
	}
	st.window = append(st.window, f)
	st.advanceLocked()
	return true
}

// advanceLocked moves the checkpoint over the durable files at the front of
// the window. st.mu held.
func (st *stream) advanceLocked() {
	n := 0
	for n < len(st.window) && len(st.window[n].pending) == 0 {
		st.ckpt = position{st.window[n].seq, st.window[n].maxTs}
		st.ckptBase = st.window[n].base
		n++
	}
	if n > 0 {
		if b := st.blocked; b.reason == blockRefused && st.ckpt.seq >= b.seq {
			st.blocked = blocked{}
			st.sm.m.blocked.DeleteLabelValues(st.sm.labels[0], st.sm.labels[1], b.reason)
			st.log.Info("stream unblocked", "reason", b.reason, "seq", b.seq, "blocked_for", time.Since(b.since).Round(time.Millisecond))
		}
		st.window = append(st.window[:0], st.window[n:]...)
		select {
		case st.spaceCh <- struct{}{}:
		default:
		}
	}
	st.sm.inFlight.Set(float64(len(st.window)))
}

func (st *stream) windowLen() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.window)
}

// adopt takes the tenant's newest routing snapshot and reports whether the
// run must restart: a new table (the Router routes by it), or a new owner for
// a range an in-flight file still waits on (its batch went to the old one).
// Owner changes of other ranges apply to the following files in place.
func (st *stream) adopt() bool {
	snap := st.s.routes.current(st.tenant)
	st.mu.Lock()
	defer st.mu.Unlock()
	old := st.snap
	st.snap = snap
	if snap.table != old.table {
		st.dropUnroutedLocked()
		return true
	}
	changed := changedRanges(old.owners, snap.owners)
	for _, f := range st.window {
		for id := range f.pending {
			if changed[id] {
				return true
			}
		}
	}
	return false
}

// dropUnroutedLocked forgets the acks of ranges no longer in the table.
func (st *stream) dropUnroutedLocked() {
	for id := range st.durable {
		if _, ok := st.snap.owners[id]; !ok {
			delete(st.durable, id)
		}
	}
	for id := range st.delivered {
		if _, ok := st.snap.owners[id]; !ok {
			delete(st.delivered, id)
		}
	}
}
