package dispatcher

import (
	"context"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/route/routepb"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// receivedSeqs lists, in arrival order, the seqs of the batches of (range,
// store) a fake sorter received and accepted (duplicates included: a
// resend counts again).
func receivedSeqs(f *fakeSorter, rangeID, store uint64) []uint64 {
	return seqsOfBatches(accepted(f, rangeID, store))
}

// storeOne is a test's fleet and store 1's simulated files: their batches
// by the test's own routing, their seqs and the last one.
func storeOne(t *testing.T) (*env, map[uint64]map[uint64]string, []uint64, uint64) {
	v := newEnv(t)
	exp := expectedBatches(t, v.src, 1)
	seqs := seqsOf(t, v, 1)
	return v, exp, seqs, seqs[len(seqs)-1]
}

// requireResent checks that range 1 received each of its files in
// (after, upto] at least twice.
func requireResent(t *testing.T, v *env, exp map[uint64]map[uint64]string, after, upto uint64, why string) {
	t.Helper()
	got := receivedSeqs(v.sorters[0], 1, 1)
	for _, seq := range fedSeqs(exp, 1, after, upto) {
		require.GreaterOrEqual(t, countOf(got, seq), 2, "file %d resent to range 1 %s", seq, why)
	}
}

// heldCheckpoint is where a stream's checkpoint stops while range 2's
// sorter acknowledges only up to limit: before range 2's first file past
// limit (the middle file if there is none).
func heldCheckpoint(exp map[uint64]map[uint64]string, seqs []uint64, limit uint64) uint64 {
	for _, seq := range seqs {
		if _, ok := exp[seq][2]; ok && seq > limit {
			return seq - 1
		}
	}
	return seqs[len(seqs)/2]
}

// moveAndFinish moves range 2 to a new sorter (moveRange2), feeds store 1's
// second half and waits for the checkpoint to reach the last file.
func (v *env) moveAndFinish(seqs []uint64, last uint64) *fakeSorter {
	s3 := v.moveRange2()
	v.feed(1, seqs[len(seqs)/2]+1, last)
	eventually(v.t, func() bool { return v.checkpointSeq(1) == last }, "checkpoint reaches %d", last)
	return s3
}

// inFlightSetup feeds store 1's first half and holds the checkpoint below
// range 2's first file past limit (range 2's sorter acknowledges only up to
// limit), with range 1 fed ahead of it within the window; it returns the
// checkpoint and the last file range 1 got.
func inFlightSetup(t *testing.T, v *env, exp map[uint64]map[uint64]string, seqs []uint64, window int, tweak func(*Config)) (ckpt, ahead uint64, reg *prometheus.Registry) {
	const store, limit = 1, 3
	half := seqs[len(seqs)/2]
	ckpt = heldCheckpoint(exp, seqs, limit)
	require.Less(t, ckpt, half)
	v.sorters[1].set(func(f *fakeSorter) { f.ackLimit[store] = limit })
	v.feed(store, 1, half)
	v.assign(store, "d1", 1)
	_, reg = v.dispatcher("d1", func(c *Config) {
		c.MaxInFlight = window
		if tweak != nil {
			tweak(c)
		}
	})
	eventually(t, func() bool { return v.checkpointSeq(store) == ckpt }, "checkpoint reaches %d", ckpt)
	ahead = min(half, ckpt+uint64(window))
	eventually(t, func() bool { return slices.Equal(v.sorters[0].appliedOrder(1, store), fedSeqs(exp, 1, 0, ahead)) },
		"range 1 got the files up to %d", ahead)
	eventually(t, func() bool { return slices.Equal(v.sorters[1].appliedOrder(2, store), fedSeqs(exp, 2, 0, ahead)) },
		"range 2 got the files up to %d", ahead)
	require.NotEmpty(t, fedSeqs(exp, 1, ckpt, ahead), "range 1 must have files in flight")
	return ckpt, ahead, reg
}

// moveRange2 moves range 2 to a new sorter s3 at epoch 2; s2 no longer
// owns it.
func (v *env) moveRange2() *fakeSorter {
	s3 := newFakeSorter(v.t, map[uint64]uint64{2: 2})
	v.sorters[1].set(func(f *fakeSorter) { f.owned = map[uint64]uint64{} })
	v.put(etcdx.WorkerKey(metav1.WorkerKind_WORKER_KIND_SORTER, "s3"), &metav1.WorkerInfo{Id: "s3", Kind: metav1.WorkerKind_WORKER_KIND_SORTER, Addr: s3.addr})
	v.put(etcdx.RangeKey(testTenant, 2), &metav1.RangeTask{TenantId: testTenant, RangeId: 2, StartKey: splitKey,
		State: metav1.RangeTask_STATE_ACTIVE, Epoch: 2, Owner: "s3"})
	return s3
}

func skippedSends(t *testing.T, reg *prometheus.Registry, store uint64) float64 {
	return metric(t, reg, "tistream_dispatcher_resend_skipped_batches_total", streamLabels(store))
}

// A move of range 2 with files in flight: the run after it resends only to
// the moved range. Range 1 (same sorter, epoch and Ingest stream) receives
// every file exactly once across the restart; the new owner of range 2
// receives every file from the checkpoint on, in order; the checkpoint
// reaches the last file.
func TestMoveResendsOnlyToMovedRange(t *testing.T) {
	const store = 1
	v, exp, seqs, last := storeOne(t)
	ckpt, ahead, reg := inFlightSetup(t, v, exp, seqs, testMaxInFlight, nil)

	s3 := v.moveAndFinish(seqs, last)

	require.Equal(t, fedSeqs(exp, 1, 0, last), receivedSeqs(v.sorters[0], 1, store), "range 1 gets each file exactly once")
	require.Equal(t, fedSeqs(exp, 2, ckpt, last), s3.appliedOrder(2, store))
	for _, b := range s3.received() {
		require.Greater(t, b.seq, ckpt)
	}
	checkContent(t, v.sorters[0], 1, map[uint64]map[uint64]map[uint64]string{store: exp})
	checkContent(t, s3, 2, map[uint64]map[uint64]map[uint64]string{store: exp})
	require.GreaterOrEqual(t, skippedSends(t, reg, store), float64(len(fedSeqs(exp, 1, ckpt, ahead))))
	require.Positive(t, metric(t, reg, "tistream_dispatcher_stream_restarts_total", reasonLabel(reasonRouting)))
}

// The same with --resend-changed-only=false: range 1 gets its in-flight
// files again (the behaviour before issue 12's fourth pass).
func TestMoveResendsEverythingWhenOff(t *testing.T) {
	const store = 1
	v, exp, seqs, last := storeOne(t)
	ckpt, ahead, reg := inFlightSetup(t, v, exp, seqs, testMaxInFlight, func(c *Config) { c.ResendChangedOnly = false })
	s3 := v.moveAndFinish(seqs, last)
	requireResent(t, v, exp, ckpt, ahead, "with the skip off")
	require.Equal(t, fedSeqs(exp, 1, 0, last), v.sorters[0].appliedOrder(1, store))
	require.Equal(t, fedSeqs(exp, 2, ckpt, last), s3.appliedOrder(2, store))
	require.Zero(t, skippedSends(t, reg, store))
}

func countOf(seqs []uint64, seq uint64) int {
	n := 0
	for _, s := range seqs {
		if s == seq {
			n++
		}
	}
	return n
}

// A split of range 2 with files in flight: range 1 receives every file
// exactly once; the children (new ranges on a new sorter) receive every
// file from the checkpoint on, in order.
func TestSplitResendsOnlyToChildren(t *testing.T) {
	const store = 1
	v, exp, seqs, last := storeOne(t)
	ckpt, _, reg := inFlightSetup(t, v, exp, seqs, testMaxInFlight, nil)

	s3 := newFakeSorter(t, map[uint64]uint64{3: 1, 4: 1})
	v.splitRange2(s3)
	v.feed(store, seqs[len(seqs)/2]+1, last)
	eventually(t, func() bool { return v.checkpointSeq(store) == last }, "checkpoint reaches %d", last)

	require.Equal(t, fedSeqs(exp, 1, 0, last), receivedSeqs(v.sorters[0], 1, store), "range 1 gets each file exactly once")
	want := splitFedSeqs(t, v, store, ckpt)
	require.Equal(t, want[3], s3.appliedOrder(3, store))
	require.Equal(t, want[4], s3.appliedOrder(4, store))
	require.Positive(t, skippedSends(t, reg, store))
}

// An Ingest stream that breaks just before the routing change: the run
// after it has a new one, so nothing is skipped; range 1 gets its files
// from the checkpoint on again, in order. The test waits for the break's
// restart before it moves the range: a restart is counted once, under the
// reason seen first, and a routing change seen first was counted as
// "routing" (CI failed so once).
func TestBrokenStreamResendsEverything(t *testing.T) {
	const store = 1
	v, exp, seqs, last := storeOne(t)
	ckpt, ahead, reg := inFlightSetup(t, v, exp, seqs, testMaxInFlight, nil)

	v.sorters[0].breakStreams()
	eventually(t, func() bool {
		return metric(t, reg, "tistream_dispatcher_stream_restarts_total", reasonLabel(reasonIngest)) > 0
	}, "the broken stream restarts the run")
	s3 := v.moveAndFinish(seqs, last)

	requireResent(t, v, exp, ckpt, ahead, "on the new Ingest stream")
	require.Equal(t, fedSeqs(exp, 1, 0, last), v.sorters[0].appliedOrder(1, store))
	require.Equal(t, fedSeqs(exp, 2, ckpt, last), s3.appliedOrder(2, store))
	require.Zero(t, skippedSends(t, reg, store))
}

// A skipped range's sorter takes the range again from its snapshot at the
// same epoch (a half-applied batch) and refuses: the refusal cancels the
// record, the run ends, and the next one resends range 1 every file from
// the checkpoint, so the range applies every file in order, with no gap
// (what it applied past its snapshot is forgotten by the fake sorter).
func TestRefusalCancelsSkip(t *testing.T) {
	const store = 1
	v, exp, seqs, last := storeOne(t)
	half := seqs[len(seqs)/2]
	// Range 1 is durable only up to where the checkpoint will stop.
	pos := heldCheckpoint(exp, seqs, 3)
	v.sorters[0].set(func(f *fakeSorter) { f.ackLimit[store] = pos })
	// A window wide enough for the run after the move to send range 1
	// files past the ones it skips while range 1 is durable only up to pos.
	ckpt, ahead, reg := inFlightSetup(t, v, exp, seqs, 1000, nil)
	require.Equal(t, half, ahead)
	require.Equal(t, pos, ckpt)
	require.NotEmpty(t, fedSeqs(exp, 1, ahead, last), "range 1 must get files after the move")

	s3 := v.moveRange2()
	eventually(t, func() bool { return skippedSends(t, reg, store) > 0 }, "the run after the move skips range 1")
	v.sorters[0].set(func(f *fakeSorter) { f.retakeAt[1] = pos })
	v.feed(store, half+1, last)
	eventually(t, func() bool {
		return metric(t, reg, "tistream_dispatcher_stream_restarts_total", reasonLabel(reasonNotOwner)) > 0
	}, "range 1's refusal ends the run")
	v.sorters[0].set(func(f *fakeSorter) { delete(f.ackLimit, store) })
	eventually(t, func() bool { return v.checkpointSeq(store) == last }, "checkpoint reaches %d", last)

	require.Equal(t, fedSeqs(exp, 1, 0, last), v.sorters[0].appliedOrder(1, store), "range 1 applied every file in order after its retake")
	require.Equal(t, fedSeqs(exp, 2, ckpt, last), s3.appliedOrder(2, store))
	checkContent(t, v.sorters[0], 1, map[uint64]map[uint64]map[uint64]string{store: exp})
	// Range 1 got the files after its snapshot again, from the checkpoint.
	requireResent(t, v, exp, pos, ahead, "after the retake")
}

// planSkips on its own: a record is honoured only for the owner and epoch
// of the snapshot, above the checkpoint, on the pool's live connection to
// the address (not one that broke and was re-dialled), and a connection
// that broke fails the run.
func TestPlanSkipsNeedsTheSameLiveStream(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Security.Insecure = true
	s, err := New(cfg, Deps{Etcd: &clientv3.Client{}, Buffer: objstore.NewMemory()})
	require.NoError(t, err)
	s.pool = newConnPool(s.log, s.m, nil, nil)
	conn := func(addr string) *sorterConn {
		return &sorterConn{pool: s.pool, addr: addr, dead: make(chan struct{}), subs: map[*runState]struct{}{}, cancel: func() {}}
	}
	a1, a2, b := conn("A"), conn("A"), conn("B")
	s.pool.conns["A"], s.pool.conns["B"] = a1, b
	st := newStream(s, streamKey{1, 1}, 1, 1, 0)
	snap := &routeSnap{owners: map[uint64]rangeOwner{
		1: {sorter: "a", addr: "A", epoch: 1}, 2: {sorter: "a", addr: "A", epoch: 2},
		3: {sorter: "b", addr: "B", epoch: 1}, 4: {sorter: "a", addr: "A", epoch: 1}, 5: {sorter: "a", addr: "A", epoch: 1},
	}, changed: make(chan struct{})}
	st.snap = snap
	st.ckpt = position{seq: 10}
	st.delivered = map[uint64]deliveredMark{
		1: {conn: a1, epoch: 1, seq: 15}, // skipped up to 15
		2: {conn: a1, epoch: 1, seq: 15}, // moved to epoch 2: not skipped
		3: {conn: a1, epoch: 1, seq: 15}, // owned by B now: not skipped
		4: {conn: a2, epoch: 1, seq: 15}, // a connection that is not the live one
		5: {conn: a1, epoch: 1, seq: 9},  // behind the checkpoint: nothing to skip
	}
	run := func() (*runState, map[string]*sorterConn, bool) {
		r := newRunState(context.Background())
		st.run = r
		conns := map[string]*sorterConn{}
		return r, conns, st.planSkips(r, snap, conns)
	}
	r, conns, ok := run()
	require.True(t, ok)
	require.Equal(t, map[uint64]skipMark{1: {addr: "A", epoch: 1, seq: 15}}, r.skips)
	require.Same(t, a1, conns["A"], "the run sends on the stream it skips for")
	require.True(t, r.skipping(1, snap.owners[1], 15))
	require.False(t, r.skipping(1, snap.owners[1], 16))
	require.False(t, r.skipping(1, rangeOwner{addr: "A", epoch: 2}, 12), "a later snapshot with another epoch")
	a1.mu.Lock()
	_, subscribed := a1.subs[r]
	a1.mu.Unlock()
	require.True(t, subscribed)

	// A refusal of range 1 by A ends the run and cancels the record; one by
	// B changes nothing.
	st.mu.Lock()
	require.False(t, st.forgetDeliveredLocked(r, 1, "B"))
	require.True(t, st.forgetDeliveredLocked(r, 1, "A"))
	_, kept := st.delivered[1]
	st.mu.Unlock()
	require.False(t, kept)
	// and the run no longer records range 1 as delivered.
	r2, _, _ := run()
	require.Empty(t, r2.skips)

	// A re-dialled connection: the record is for the old one.
	st.delivered[1] = deliveredMark{conn: a1, epoch: 1, seq: 15}
	s.pool.conns["A"] = a2
	r3, _, ok := run()
	require.True(t, ok)
	require.NotContains(t, r3.skips, uint64(1))
	require.Contains(t, r3.skips, uint64(4))

	// A connection that broke but is still the pool's: the run fails.
	s.pool.conns["A"] = a1
	a1.err = errPoolClosed
	close(a1.dead)
	r4, _, ok := run()
	require.False(t, ok)
	require.True(t, r4.ended())

	// The sender's commit hook: a request of a live run is recorded (the
	// highest seq per stream and epoch; another stream or epoch replaces the
	// record), except for a range refused during the run; one of an ended
	// run is dropped and not recorded.
	st.delivered = map[uint64]deliveredMark{}
	r5, _, _ := run()
	req := func(seq uint64, ranges ...uint64) *routepb.Request {
		q := &routepb.Request{Seq: seq}
		for _, id := range ranges {
			q.Batches = append(q.Batches, routepb.Batch{RangeID: id, RangeEpoch: 1})
		}
		return q
	}
	require.True(t, st.commitFor(r5, b, req(12, 1, 3))())
	require.True(t, st.commitFor(r5, b, req(11, 1))())
	require.Equal(t, deliveredMark{conn: b, epoch: 1, seq: 12}, st.delivered[1])
	require.True(t, st.commitFor(r5, a2, req(13, 1))())
	require.Equal(t, deliveredMark{conn: a2, epoch: 1, seq: 13}, st.delivered[1])
	st.mu.Lock()
	st.forgetDeliveredLocked(r5, 3, "B")
	st.mu.Unlock()
	require.True(t, st.commitFor(r5, b, req(14, 3))())
	require.NotContains(t, st.delivered, uint64(3))
	r5.fail(reasonRouting, errRoutingChanged)
	require.False(t, st.commitFor(r5, a2, req(15, 1))())
	require.Equal(t, uint64(13), st.delivered[1].seq)
}
