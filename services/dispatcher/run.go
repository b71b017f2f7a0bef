package dispatcher

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/route/routepb"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// runOnce runs the stream from its in-memory checkpoint (every file up to
// it is durable downstream) with a new Router, until it must restart; it
// returns why.
func (st *stream) runOnce(ctx context.Context) (string, error) {
	rctx, cancel := context.WithCancel(ctx)
	r := newRunState(rctx)
	conns := map[string]*sorterConn{}
	var watchDone chan struct{}
	defer func() {
		cancel()
		r.stop()
		if watchDone != nil {
			<-watchDone
		}
		for _, c := range conns {
			c.unsubscribe(r)
		}
		st.mu.Lock()
		st.run, st.window = nil, nil
		st.sm.inFlight.Set(0)
		st.mu.Unlock()
	}()
	table, reason, err := st.waitTable(r)
	if err != nil {
		return reason, err
	}
	st.mu.Lock()
	st.run = r
	next := st.ckpt.seq + 1
	snap := st.snap
	st.mu.Unlock()
	if snap.table == table && !st.planSkips(r, snap, conns) {
		return r.reason(), r.err()
	}
	watchDone = make(chan struct{})
	go st.watchRouting(r, watchDone)
	if err := st.resolveBuffer(rctx, next); err != nil {
		return reasonBuffer, err
	}
	// A run starts at the file after the checkpoint: a delta header there
	// reads its base's header (kept by the garbage collection, see collect).
	// A file whose header is not the one expected is refused before its
	// leader list is read.
	router := route.NewTrackedRouter(table, st.tracker).WithBase(
		storefile.BaseFromStore(rctx, st.buffer(), st.cluster, st.tenant, st.store)).WithCheck(
		func(key string, h *formatv1.StoreFileHeader) error { return checkName(key, h, next) })
	// quiet: a Notify call named the file just read with its max_ts. While
	// nothing names the next file, listing its seq now would find it only
	// if its notification was lost (a file is notified once written): the
	// stream waits for one, or for the poll timer, before it lists. After
	// a file known otherwise (listed, or the stream task's latest file,
	// which is stale after an outage) it lists on at once, as before.
	quiet := false
	for {
		if reason, err := st.waitSpace(r); err != nil {
			return reason, err
		}
		if quiet && !st.notes.heard(next) {
			polled, reason, err := st.waitFile(r)
			if err != nil {
				return reason, err
			}
			quiet = !polled // woken otherwise (a routing change in place): still nothing to list
			continue
		}
		quiet = false
		st.drainWake() // looking now: a later notification wakes the stream again
		// The next file comes from the replay cache (a file an earlier run
		// read past the checkpoint: the same bytes, no request), its notified
		// key (one GET) or a listing of its seq (read.go).
		st.trimPast()
		f, err := st.fetch(rctx, next)
		var bad *badFileError
		switch {
		case errors.As(err, &bad):
			st.sm.decodeErrors.Inc()
			st.settle(r)
			return reasonDecode, err
		case err != nil:
			return reasonStorage, err
		case f.key == "":
			st.onMissing(next, f.later)
			if _, reason, err := st.waitFile(r); err != nil {
				return reason, err
			}
			continue
		}
		st.onFound(next)
		key, data := f.key, f.data
		batches, h, err := router.Route(key, data)
		if err == nil {
			err = checkName(key, h, next)
		}
		if errors.Is(err, storefile.ErrBaseLoad) && !errors.Is(err, objstore.ErrNotFound) && !errors.Is(err, container.ErrCorrupt) {
			return reasonStorage, err // the base header could not be read: retry
		}
		if err != nil && f.how == readNotified {
			// The stream stops at a file only on what a listing of its seq
			// shows, as before direct reads (a copy under another name
			// whose key matches its header is read instead, 3a).
			st.log.Warn("store file read by its notified key does not decode or route; listing its seq",
				"seq", next, "key", key, "err", err)
			st.notes.mustList(next)
			continue
		}
		if err != nil {
			st.sm.decodeErrors.Inc()
			st.settle(r)
			return reasonDecode, classify(key, next, err)
		}
		st.tracker.Commit()
		st.notes.readAs(next, h.MaxTs, f.listed())
		st.sm.read(f.how)
		quiet = st.notes.live(next)
		st.replay.put(next, key, data)
		st.unblock(next, false)
		st.readTo = next
		st.sm.filesRead.Inc()
		st.sm.bytesRead.Add(float64(len(data)))
		rows := fileRows(batches)
		st.readFile(h.Seq, rows, len(data))
		if reason, err := st.takeQuota(r, rows, len(data)); err != nil {
			return reason, err
		}
		reqs, reason, err := st.requests(r, table, batches, inflight{seq: h.Seq, maxTs: h.MaxTs, base: router.Base()})
		// The batches' events are encoded (the requests hold the bytes):
		// their arrays route the next files.
		router.Recycle(batches)
		if err != nil {
			return reason, err
		}
		for _, addr := range slices.Sorted(maps.Keys(reqs)) {
			c := conns[addr]
			if c == nil {
				if c, err = st.s.pool.get(addr); err != nil {
					return reasonIngest, err
				}
				conns[addr] = c
				if !c.subscribe(r) {
					return r.reason(), r.err()
				}
			}
			if err := c.send(r, reqs[addr], st.commitFor(r, c, reqs[addr])); err != nil {
				if reason := r.reason(); reason != "" {
					return reason, r.err()
				}
				if rctx.Err() != nil {
					return reasonStopped, err
				}
				return reasonIngest, err
			}
		}
		next++
	}
}

// watchRouting ends the run when the tenant's routing changes in a way
// that requires a restart (see adopt), even while the run is blocked sending
// to a sorter that stopped reading: otherwise a stuck sorter that lost its
// ranges would hold the stream until its connection broke.
func (st *stream) watchRouting(r *runState, done chan<- struct{}) {
	defer close(done)
	for {
		st.mu.Lock()
		changed := st.snap.changed
		st.mu.Unlock()
		select {
		case <-changed:
			if st.adopt() {
				r.fail(reasonRouting, errRoutingChanged)
				return
			}
		case <-r.failed:
			return
		case <-r.ctx.Done():
			return
		}
	}
}

// requests groups a file's batches per sorter and adds the file to the
// window, waiting (without dropping the file) while a range has no
// registered owner. The requests and the window entry are built from the same
// routing snapshot; a run whose table is no longer the tenant's ends.
func (st *stream) requests(r *runState, table *route.Table, batches map[uint64]*route.Batch, file inflight) (map[string]*routepb.Request, string, error) {
	seq, maxTs := file.seq, file.maxTs
	events := make(map[uint64]routepb.Events, len(batches))
	for id, b := range batches {
		evs := routepb.EncodeEvents(b.Events) // once, whichever sorter and request it goes in
		events[id] = evs
		st.sm.rowsRead.Add(float64(evs.Rows))
	}
	ids := slices.Sorted(maps.Keys(batches))
	logged := false
	for {
		st.mu.Lock()
		snap := st.snap
		st.mu.Unlock()
		if snap.table != table {
			return nil, reasonRouting, errRoutingChanged
		}
		reqs := map[string]*routepb.Request{}
		pending := make(map[uint64]string, len(ids))
		var missing []uint64
		skipped := 0
		for _, id := range ids {
			o, ok := snap.owner(id)
			if !ok {
				missing = append(missing, id)
				continue
			}
			if r.skipping(id, o, seq) {
				// Its sorter has this batch already (delivered.go): it
				// stays pending until the sorter's Durable ack.
				pending[id] = o.addr
				skipped++
				continue
			}
			req := reqs[o.addr]
			if req == nil {
				req = &routepb.Request{TenantID: st.tenant, StoreID: st.store, Seq: seq, MaxTs: maxTs, Dispatcher: st.s.cfg.ID}
				reqs[o.addr] = req
			}
			req.Batches = append(req.Batches, routepb.Batch{RangeID: id, RangeEpoch: o.epoch, Events: events[id], PrevSeq: r.prev[id]})
			pending[id] = o.addr
		}
		if len(missing) == 0 {
			f := file
			f.pending, f.sent = pending, maps.Clone(pending)
			if st.appendFile(&f, snap) {
				st.sm.resendsSkipped.Add(float64(skipped))
				for _, id := range ids {
					r.prev[id] = seq
				}
				return reqs, "", nil
			}
			continue // the routing changed meanwhile: rebuild
		}
		if !logged {
			st.log.Info("waiting for ranges to get a registered owner", "seq", seq, "ranges", missing)
			logged = true
		}
		if st.draining() {
			return nil, reasonDrained, errDrained
		}
		timer := time.NewTimer(st.s.cfg.PollInterval)
		reason, err := st.await(r, nil, st.drain, timer.C)
		timer.Stop()
		if err != nil {
			return nil, reason, err
		}
	}
}
