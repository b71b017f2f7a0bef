package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tistream/tistream/libs/route"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var (
	errRoutingChanged = errors.New("routing changed")
	errDrained        = errors.New("drained")
	// errFenced: the stream task names another owner or epoch, or this
	// dispatcher's lease is gone: the stream is no longer ours.
	errFenced = errors.New("stream is no longer owned by this dispatcher")
)

// streamKey names a stream.
type streamKey struct{ tenant, store uint64 }

// stream runs one (tenant, store) stream at one epoch. A reassignment (new
// epoch) is a new stream object.
type stream struct {
	s                             *Service
	tenant, store, cluster, epoch uint64
	lease                         clientv3.LeaseID // of the registration the stream started under
	log                           *slog.Logger
	sm                            *streamMetrics
	notes                         *notices // store files notified (stream task, Notify) and read: notices.go

	buf atomic.Pointer[streamBuffer] // the tenant's data change buffer (buffer.go)

	ctx        context.Context // the whole stream
	cancel     context.CancelFunc
	loopCtx    context.Context // the read loop; cancelled after a graceful drain
	loopCancel context.CancelFunc
	drain      chan struct{}
	drainOnce  sync.Once
	loopDone   chan struct{}
	ckptDone   chan struct{}
	stopOnce   sync.Once
	wakeCh     chan struct{}
	spaceCh    chan struct{}

	mu      sync.Mutex
	snap    *routeSnap
	durable map[uint64]uint64 // range -> highest seq it acked durable
	// delivered: per range, what an Ingest stream carried of its batches
	// (delivered.go), so a restarted run skips what the sorter has.
	delivered map[uint64]deliveredMark
	run       *runState
	window    []*inflight
	ckpt      position // every file up to it is durable
	written   position // last checkpoint written to etcd
	// ckptBase and writtenBase: the last file at or below ckpt (written)
	// whose header holds the full leader list (store file format version
	// 2), 0 if none: the file after the checkpoint may name it as its base.
	ckptBase, writtenBase uint64
	gcQueue               []gcTarget
	gcReady               uint64       // files up to this seq may be deleted (grace passed) ...
	gcKeep                uint64       // ... except this one (the base of the file after gcReady)
	gcDerive              bool         // ... which is not known yet (see gcTarget)
	gcDone                uint64       // files up to this seq are deleted ...
	gcKept                uint64       // ... except this one
	ingest                ingestLedger // metering (checkpoint.go)

	// Bad input (badinput.go), also under mu.
	blocked    blocked
	refused    uint64 // lowest file a sorter refused (NotOwner) in refusedRun
	refusedRun *runState

	// Loop goroutine only.
	tracker *route.Tracker // incarnations and resolved ts seen, across runs
	readTo  uint64         // the last file the current run read and routed
	replay  *replayCache   // files read past the checkpoint (replay.go)
	gap     gapState
	refuse  refuseState
}

func newStream(s *Service, key streamKey, cluster, epoch uint64, lease clientv3.LeaseID) *stream {
	ctx, cancel := context.WithCancel(context.Background())
	loopCtx, loopCancel := context.WithCancel(ctx)
	return &stream{
		s: s, tenant: key.tenant, store: key.store, cluster: cluster, epoch: epoch, lease: lease,
		log: s.log.With("tenant", key.tenant, "store", key.store, "epoch", epoch),
		sm:  s.m.forStream(key.tenant, key.store),
		ctx: ctx, cancel: cancel, loopCtx: loopCtx, loopCancel: loopCancel,
		drain: make(chan struct{}), loopDone: make(chan struct{}), ckptDone: make(chan struct{}),
		wakeCh: make(chan struct{}, 1), spaceCh: make(chan struct{}, 1),
		snap:    &routeSnap{owners: map[uint64]rangeOwner{}, changed: make(chan struct{})},
		durable: map[uint64]uint64{}, delivered: map[uint64]deliveredMark{},
		tracker: route.NewTracker(),
		replay:  newReplayCache(s.replay),
		notes:   newNotices(),
	}
}

func (st *stream) start() {
	st.s.routes.acquire(st.tenant)
	st.log.Info("stream started")
	go st.loop()
	go st.checkpointer()
}

// wake makes a stream waiting for its next file look for it now, and one
// waiting for room in its window look at its notices (a recheck).
func (st *stream) wake() {
	for _, ch := range []chan struct{}{st.wakeCh, st.spaceCh} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// stopHard stops at once, without a final checkpoint (the stream is no
// longer ours, or the lease is gone).
func (st *stream) stopHard() {
	st.cancel()
	<-st.loopDone
	<-st.ckptDone
	st.release()
}

// stopGraceful stops reading files, waits (within ctx and the drain
// timeout) for the in-flight files to be acknowledged, then writes the final
// checkpoint and deletes what it covers.
func (st *stream) stopGraceful(ctx context.Context) {
	st.drainOnce.Do(func() { close(st.drain) })
	dctx, cancel := context.WithTimeout(ctx, st.s.cfg.DrainTimeout)
	select {
	case <-st.loopDone:
	case <-dctx.Done():
		st.log.Warn("drain timed out, in-flight files will be resent by the next owner", "in_flight", st.windowLen())
	}
	cancel()
	st.loopCancel()
	<-st.loopDone
	st.cancel()
	<-st.ckptDone
	if err := st.checkpointOnce(ctx, true); err != nil {
		st.log.Warn("final checkpoint not written", "err", err)
	}
	st.release()
}

func (st *stream) release() {
	st.stopOnce.Do(func() {
		st.s.routes.release(st.tenant)
		st.sm.dropGauges()
		st.log.Info("stream stopped")
	})
}

func (st *stream) draining() bool {
	select {
	case <-st.drain:
		return true
	default:
		return false
	}
}

// loop runs the stream from its checkpoint, restarting with a capped
// backoff after failures, until the stream stops.
func (st *stream) loop() {
	defer close(st.loopDone)
	defer st.replay.clear()
	ctx := st.loopCtx
	bo := newBackoff(st.s.cfg.RetryMin, st.s.cfg.RetryMax)
	for {
		err := st.loadCheckpoint(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, errFenced) {
			st.fenced(err)
			return
		}
		if ctx.Err() != nil {
			return
		}
		st.log.Warn("checkpoint not readable, retrying", "err", err)
		if !bo.wait(ctx) {
			return
		}
	}
	bo.reset()
	for ctx.Err() == nil {
		before := st.checkpointSeq()
		reason, err := st.runOnce(ctx)
		if ctx.Err() != nil || reason == reasonStopped || reason == reasonDrained {
			return
		}
		st.sm.restart(reason)
		ckpt := st.checkpointSeq()
		reread := uint64(0)
		if st.readTo > ckpt {
			reread = st.readTo - ckpt
		}
		st.sm.reread(reason, reread)
		if ckpt > before {
			bo.reset()
		}
		switch reason {
		case reasonRouting:
			st.log.Info("routing changed, restarting from the checkpoint", "checkpoint", ckpt, "reread_files", reread)
			continue
		case reasonDecode:
			// An operator may replace files in the buffer now
			// (docs/bad-input.md): read every file from it again.
			st.replay.clear()
			var bad *badFileError
			if errors.As(err, &bad) {
				st.block(bad.reason, bad.seq, bad.key, bad.err)
			} else {
				st.log.Error("store file does not decode, stream stopped until a retry", "checkpoint", st.checkpointSeq(), "err", err)
			}
		default:
			st.log.Warn("stream failed, restarting from the checkpoint", "reason", reason, "checkpoint", ckpt, "reread_files", reread, "err", err)
		}
		if reason == reasonNotOwner {
			st.onRefused(err)
		} else {
			st.refuse = refuseState{}
		}
		if b := st.blockedState(); b.reason == blockRefused && st.checkpointSeq() >= b.seq {
			st.unblock(0, true)
		}
		if reason == reasonNotOwner || reason == reasonIngest {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := st.s.routes.refresh(rctx, st.tenant); err != nil && ctx.Err() == nil {
				st.log.Warn("routing refresh failed", "err", err)
			}
			cancel()
		}
		if !st.retryWait(ctx, bo) {
			return
		}
	}
}

// retryWait waits the backoff before the next run, but a routing change
// (seen since the failed run's snapshot, or during the wait) ends the wait at
// once: a refusal or a broken Ingest stream mostly means a range is moving
// or splitting, and what ends it is the routing change that names the new
// owner or the children. Waiting out a backoff that grew over the refusals
// before it would only add to the lag. It reports whether ctx is still alive.
func (st *stream) retryWait(ctx context.Context, bo *backoff) bool {
	cur := st.s.routes.current(st.tenant)
	st.mu.Lock()
	seen := st.snap
	st.mu.Unlock()
	if cur != seen {
		return ctx.Err() == nil
	}
	return bo.waitOr(ctx, cur.changed)
}

// fenced stops a stream that found it no longer owns its task; the task
// watcher replaces or removes it when it sees the change.
func (st *stream) fenced(err error) {
	st.log.Warn("stream fenced, stopping it", "err", err)
	st.sm.restart("fenced")
	st.cancel()
}

func (st *stream) checkpointSeq() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.ckpt.seq
}

// checkpointer writes the checkpoint at most every CheckpointInterval.
func (st *stream) checkpointer() {
	defer close(st.ckptDone)
	t := time.NewTicker(st.s.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-st.ctx.Done():
			return
		case <-t.C:
			if err := st.checkpointOnce(st.ctx, false); err != nil {
				if errors.Is(err, errFenced) {
					st.fenced(err)
					return
				}
				if st.ctx.Err() == nil {
					st.log.Warn("checkpoint write failed", "err", err)
				}
			}
		}
	}
}
