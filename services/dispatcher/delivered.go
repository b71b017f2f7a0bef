package dispatcher

import (
	"github.com/tistream/tistream/libs/route/routepb"
)

// Resending only to the ranges that changed (issue 12). A run ends on a
// routing change (a split, a move) or a refusal and the next one restarts
// from the checkpoint, which moves only at the sorters' snapshots; resending
// every file past it to every range costs the sorters the unmarshalling of
// batches they drop as duplicates, and the stream the time. So each stream
// records, per range, what really went out on which Ingest stream
// (delivered), and a new run skips a range's batches that its sorter got
// already on the same, still open, Ingest stream:
//
//   - The record (range -> Ingest stream, range epoch, highest seq) is
//     written by the connection's sender when it commits to sending a
//     request (sendItem.commit): after it checked, under the stream's
//     mutex, that the request's run has not ended, and before stream.Send.
//     Requests of an ended run are dropped unsent, so "queued" never counts;
//     a committed request goes out on that gRPC stream before anything queued
//     after it, or the stream breaks (and with it every run subscribed to
//     it). A run that starts after the previous one ended therefore sees
//     every request that will ever reach a sorter from the ended run.
//   - A run skips range R's batch of file seq when, at the run's start, R's
//     record names the same sorter address and epoch as the routing
//     snapshot, that Ingest stream is still the pool's live one to the
//     address (not broken and re-dialled), the run subscribed to it (so its
//     break fails the run), and seq is at most the recorded seq; and the file's
//     own snapshot still names that owner. The skipped range stays pending in
//     the file's window entry: the checkpoint still waits for the sorter's
//     Durable ack, which the sorter sends for the earlier delivery (or sent
//     already: the stream's durable record).
//   - Any NotOwner for R deletes R's record and stops the current run
//     recording R; if the run skips R (or the refused file is one of its
//     in-flight files) the run ends, as for any refusal. A sorter can take a
//     range again from its snapshot at the same epoch after a half-applied
//     batch (it refuses that batch), going back on every store: each batch
//     carries the store's previous file the run routed to R, sent or
//     skipped (prev_seq, runState.prev), and a range that has not applied
//     that far refuses it, as it refuses every later file of the store
//     after a refusal until it has applied the refused one (sticky). So a
//     run that skipped past what R lost has its next batch to R refused,
//     and the run after it resends R everything from the checkpoint.
//
// Ranges whose owner or epoch changed (a moved range, a split's children)
// have no matching record and get every file from the checkpoint. The record
// is memory only: a restarted process resends everything from the
// checkpoint. Config.ResendChangedOnly turns the skip off (every run
// resends to every range, as before).

// deliveredMark is what one Ingest stream carried of one range's batches:
// every batch of the range up to seq that was not durable before went out
// on conn, in order, at epoch.
type deliveredMark struct {
	conn  *sorterConn
	epoch uint64
	seq   uint64
}

// skipMark is how far a run skips a range: its batches of files up to seq,
// while the range's owner is addr at epoch.
type skipMark struct {
	addr  string
	epoch uint64
	seq   uint64
}

// commitFor returns the sender's commit hook for req, a request of run r
// on conn c: it reports whether the request is still to be sent (its run
// has not ended) and, if so, records its batches as delivered. It runs on
// the connection's sender goroutine, under the stream's mutex, so a run
// starting after r ended sees every request of r that will be sent.
func (st *stream) commitFor(r *runState, c *sorterConn, req *routepb.Request) func() bool {
	return func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		if r.ended() {
			return false
		}
		if !st.s.cfg.ResendChangedOnly {
			return true
		}
		for _, b := range req.Batches {
			if r.refusedRanges[b.RangeID] {
				continue
			}
			m := st.delivered[b.RangeID]
			if m.conn == c && m.epoch == b.RangeEpoch {
				m.seq = max(m.seq, req.Seq)
			} else {
				m = deliveredMark{conn: c, epoch: b.RangeEpoch, seq: req.Seq}
			}
			st.delivered[b.RangeID] = m
		}
		return true
	}
}

// planSkips decides, at the start of run r with routing snapshot snap, which
// ranges r skips and how far, subscribing r to the Ingest streams that
// delivered them (added to conns). It reports false if one of them broke
// meanwhile (r has failed then).
func (st *stream) planSkips(r *runState, snap *routeSnap, conns map[string]*sorterConn) bool {
	if !st.s.cfg.ResendChangedOnly {
		return true
	}
	st.mu.Lock()
	cands := map[uint64]deliveredMark{}
	for id, m := range st.delivered {
		o, ok := snap.owner(id)
		if !ok || o.addr != m.conn.addr || o.epoch != m.epoch || m.seq <= st.ckpt.seq {
			continue
		}
		cands[id] = m
	}
	st.mu.Unlock()
	for id, m := range cands {
		if st.s.pool.current(m.conn.addr) != m.conn {
			continue // broken, or re-dialled: the sorter may not have got it all
		}
		if c := conns[m.conn.addr]; c == nil {
			if !m.conn.subscribe(r) {
				return false
			}
			conns[m.conn.addr] = m.conn
		} else if c != m.conn {
			continue
		}
		st.mu.Lock()
		// A refusal may have cancelled the record since: it is only
		// honoured if it is still the same.
		if cur, ok := st.delivered[id]; ok && cur.conn == m.conn && cur.epoch == m.epoch && !r.refusedRanges[id] {
			r.skips[id] = skipMark{addr: m.conn.addr, epoch: m.epoch, seq: min(cur.seq, m.seq)}
		}
		st.mu.Unlock()
	}
	return true
}

// skipping reports whether run r skips range id's batch of file seq owned
// by o. Called by the run's loop after planSkips (the only writer of
// r.skips, on the same goroutine).
func (r *runState) skipping(id uint64, o rangeOwner, seq uint64) bool {
	m, ok := r.skips[id]
	return ok && seq <= m.seq && m.addr == o.addr && m.epoch == o.epoch
}

// forgetDeliveredLocked handles a refusal of range id by the sorter at
// addr: it cancels the range's record of what went to that sorter and stops
// run r from recording the range; it reports whether r skips the range's
// batches to that sorter. st.mu held.
func (st *stream) forgetDeliveredLocked(r *runState, id uint64, addr string) bool {
	if m, ok := st.delivered[id]; ok && m.conn.addr == addr {
		delete(st.delivered, id)
	}
	if r == nil {
		return false
	}
	r.refusedRanges[id] = true
	m, skipped := r.skips[id]
	return skipped && m.addr == addr
}
