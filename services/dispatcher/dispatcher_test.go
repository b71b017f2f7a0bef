package dispatcher

import (
	"context"
	"errors"
	"flag"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/tidbcodec"
	dispatcherv1 "github.com/tistream/tistream/proto/gen/go/tistream/dispatcher/v1"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// seqsOf lists a store's simulated seqs, ascending.
func seqsOf(t *testing.T, v *env, storeID uint64) []uint64 {
	var out []uint64
	for _, k := range storeFiles(t, v.src, storeID) {
		n, err := layout.ParseStoreFileKey(k)
		require.NoError(t, err)
		out = append(out, n.Seq)
	}
	return out
}

// feed copies a store's simulated files with from <= seq <= to into the
// buffer.
func (v *env) feed(storeID, from, to uint64) {
	v.t.Helper()
	for _, k := range storeFiles(v.t, v.src, storeID) {
		n, err := layout.ParseStoreFileKey(k)
		require.NoError(v.t, err)
		if n.Seq >= from && n.Seq <= to {
			copyFiles(v.t, v.src, v.buffer, k)
		}
	}
}

// fedSeqs lists the seqs (ascending, within (after, upto]) whose file feeds
// rangeID.
func fedSeqs(exp map[uint64]map[uint64]string, rangeID, after, upto uint64) []uint64 {
	var out []uint64
	for _, seq := range slices.Sorted(maps.Keys(exp)) {
		if _, ok := exp[seq][rangeID]; ok && seq > after && seq <= upto {
			out = append(out, seq)
		}
	}
	return out
}

// accepted lists the batches of (range, store) a fake sorter accepted, in
// arrival order.
func accepted(f *fakeSorter, rangeID, store uint64) []recvBatch {
	var out []recvBatch
	for _, b := range f.received() {
		if b.rangeID == rangeID && b.store == store && !b.refused {
			out = append(out, b)
		}
	}
	return out
}

func seqsOfBatches(bs []recvBatch) []uint64 {
	out := make([]uint64, len(bs))
	for i, b := range bs {
		out[i] = b.seq
	}
	return out
}

// checkContent checks every batch a sorter received for a range against
// the test's own routing of the same file: its events, and its prev_seq
// (0, or the store's last file before it that feeds the range).
func checkContent(t *testing.T, f *fakeSorter, rangeID uint64, exp map[uint64]map[uint64]map[uint64]string) {
	t.Helper()
	for _, b := range f.received() {
		require.Equal(t, rangeID, b.rangeID, "sorter got a batch of range %d it does not own", b.rangeID)
		want, ok := exp[b.store][b.seq][b.rangeID]
		require.True(t, ok, "store %d file %d does not feed range %d", b.store, b.seq, b.rangeID)
		require.Equal(t, want, b.digest, "events of store %d file %d range %d", b.store, b.seq, b.rangeID)
		if b.prevSeq != 0 {
			between := fedSeqs(exp[b.store], rangeID, b.prevSeq-1, b.seq-1)
			require.Equal(t, []uint64{b.prevSeq}, between,
				"store %d file %d range %d: prev_seq %d is not the last earlier file feeding the range", b.store, b.seq, rangeID, b.prevSeq)
		}
	}
}

// (1) Every event of every file reaches the sorter owning its range, in seq
// order per store, and exactly the batches the test's own Router yields;
// the checkpoints reach the last file and the buffer is emptied.
func TestDispatchesEveryFileInOrder(t *testing.T) {
	v := newEnv(t)
	exp := map[uint64]map[uint64]map[uint64]string{}
	last := map[uint64]uint64{}
	for store := uint64(1); store <= testStores; store++ {
		exp[store] = expectedBatches(t, v.src, store)
		seqs := seqsOf(t, v, store)
		require.NotEmpty(t, seqs)
		last[store] = seqs[len(seqs)-1]
		v.feed(store, 1, last[store])
		v.assign(store, "d1", 1)
	}
	_, reg := v.dispatcher("d1", nil)
	for store := uint64(1); store <= testStores; store++ {
		eventually(t, func() bool { return v.checkpointSeq(store) == last[store] }, "checkpoint of store %d reaches %d", store, last[store])
		eventually(t, func() bool { return slices.Equal(v.bufferSeqs(store), v.kept(store, last[store])) },
			"buffer of store %d emptied but for its last full leader list", store)
		cp := v.checkpoint(store)
		require.Equal(t, uint64(1), cp.Epoch)
		for i, f := range v.sorters {
			rangeID := uint64(i + 1)
			want := fedSeqs(exp[store], rangeID, 0, last[store])
			require.NotEmpty(t, want)
			// No restart happened, so each file went exactly once, in order.
			require.Equal(t, want, seqsOfBatches(accepted(f, rangeID, store)), "store %d range %d", store, rangeID)
			require.Equal(t, want, f.appliedOrder(rangeID, store))
		}
	}
	for i, f := range v.sorters {
		checkContent(t, f, uint64(i+1), exp)
	}
	require.Zero(t, metric(t, reg, "tistream_dispatcher_stream_restarts_total", nil))
	for store := uint64(1); store <= testStores; store++ {
		require.Equal(t, float64(last[store]), metric(t, reg, "tistream_dispatcher_checkpoint_seq", streamLabels(store)))
		n := float64(len(seqsOf(t, v, store)) - len(v.kept(store, last[store])))
		eventually(t, func() bool {
			return metric(t, reg, "tistream_dispatcher_files_deleted_total", streamLabels(store)) == n
		}, "store %d: every file deleted once", store)
	}
}

// (2) The checkpoint advances only over files durable in every range they
// fed, never beyond; files at or below it are deleted, files above kept.
func TestCheckpointWaitsForEveryRange(t *testing.T) {
	v := newEnv(t)
	const store, limit = 1, 3
	exp := expectedBatches(t, v.src, store)
	seqs := seqsOf(t, v, store)
	last := seqs[len(seqs)-1]
	// Range 2 makes store 1 durable only up to file `limit`: the checkpoint
	// must stop before the first later file that fed range 2.
	want := last
	for _, seq := range seqs {
		if _, ok := exp[seq][2]; ok && seq > limit {
			want = seq - 1
			break
		}
	}
	require.Less(t, want, last, "the simulated files must feed range 2 after file %d", limit)
	v.sorters[1].set(func(f *fakeSorter) { f.ackLimit[store] = limit })
	v.feed(store, 1, last)
	v.assign(store, "d1", 1)

	// Record every checkpoint value etcd ever holds.
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wch := v.cli.Watch(wctx, etcdx.CheckpointKey(testTenant, store))
	seen := make(chan uint64, 1024)
	go func() {
		for resp := range wch {
			for _, ev := range resp.Events {
				cp := &metav1.Checkpoint{}
				if err := proto.Unmarshal(ev.Kv.Value, cp); err == nil {
					select {
					case seen <- cp.Seq:
					default:
					}
				}
			}
		}
		close(seen)
	}()

	v.dispatcher("d1", nil)
	eventually(t, func() bool { return v.checkpointSeq(store) == want }, "checkpoint reaches %d", want)
	// The window holds MaxInFlight files: range 1 gets exactly the files up
	// to want+MaxInFlight, and the checkpoint stays.
	ahead := min(last, want+testMaxInFlight)
	eventually(t, func() bool { return slices.Equal(v.sorters[0].appliedOrder(1, store), fedSeqs(exp, 1, 0, ahead)) },
		"range 1 gets the files up to %d", ahead)
	time.Sleep(300 * time.Millisecond) // several checkpoint intervals
	require.Equal(t, want, v.checkpointSeq(store))
	require.Equal(t, fedSeqs(exp, 1, 0, ahead), v.sorters[0].appliedOrder(1, store), "more than MaxInFlight files in flight")
	eventually(t, func() bool {
		return slices.Equal(v.bufferSeqs(store), append(v.kept(store, want), seqsAbove(seqs, want)...))
	},
		"files up to %d deleted but the last full leader list, later ones kept: %v", want, v.bufferSeqs(store))

	// Every value written so far: at most want, never going back.
	prev := uint64(0)
	for len(seen) > 0 {
		seq := <-seen
		require.GreaterOrEqual(t, seq, prev, "checkpoint went back")
		require.LessOrEqual(t, seq, want, "checkpoint %d written while range 2 was durable only up to file %d", seq, limit)
		prev = seq
	}

	// Lift the limit: the checkpoint reaches the last file and the buffer empties.
	v.sorters[1].set(func(f *fakeSorter) { delete(f.ackLimit, store) })
	eventually(t, func() bool { return v.checkpointSeq(store) == last }, "checkpoint reaches %d", last)
	eventually(t, func() bool { return slices.Equal(v.bufferSeqs(store), v.kept(store, last)) }, "buffer emptied but for the last full leader list")
}

func seqsAbove(seqs []uint64, above uint64) []uint64 {
	var out []uint64
	for _, s := range seqs {
		if s > above {
			out = append(out, s)
		}
	}
	return out
}

// (3a) A sorter answering NotOwner makes the stream resend from its
// checkpoint: the range ends up with every file, in order, none skipped.
func TestNotOwnerResendsFromCheckpoint(t *testing.T) {
	v := newEnv(t)
	const store = 1
	exp := expectedBatches(t, v.src, store)
	seqs := seqsOf(t, v, store)
	last := seqs[len(seqs)-1]
	v.feed(store, 1, last)
	v.assign(store, "d1", 1)
	v.sorters[1].set(func(f *fakeSorter) { f.refuseN[2] = 3 })
	_, reg := v.dispatcher("d1", nil)
	eventually(t, func() bool { return v.checkpointSeq(store) == last }, "checkpoint reaches %d", last)
	require.Equal(t, fedSeqs(exp, 2, 0, last), v.sorters[1].appliedOrder(2, store))
	require.Equal(t, fedSeqs(exp, 1, 0, last), v.sorters[0].appliedOrder(1, store))
	require.Positive(t, metric(t, reg, "tistream_dispatcher_stream_restarts_total", map[string]string{"reason": reasonNotOwner}))
	// Each refusal was followed by a resend of the refused file.
	got := v.sorters[1].received()
	for i, b := range got {
		if b.refused {
			resent := false
			for _, later := range got[i+1:] {
				if later.store == b.store && later.rangeID == b.rangeID && !later.refused && later.seq <= b.seq {
					resent = true
					break
				}
			}
			require.True(t, resent, "file %d refused and never resent", b.seq)
		}
	}
	checkContent(t, v.sorters[1], 2, map[uint64]map[uint64]map[uint64]string{store: exp})
}

// (3b) A range moving to another sorter makes the stream resend, from the
// checkpoint, to the new owner, which then gets every later file in order.
// With the replay cache (replay.go) the files read past the checkpoint are
// routed again from memory: every store file is read from the buffer once;
// without it (or beyond its budget) they are read again.
func TestRangeMoveResendsFromCheckpoint(t *testing.T) {
	forReplayCache(t, testRangeMove)
}

// replayMode is how much a test dispatcher's replay cache may keep.
type replayMode string

const (
	replayAll  replayMode = "cache"       // the default budget: every file fits
	replaySome replayMode = "small_cache" // two files' worth: the rest is read again
	replayNone replayMode = "no_cache"    // --replay-cache-bytes=0
)

// forReplayCache runs a test in every replayMode.
func forReplayCache(t *testing.T, test func(t *testing.T, mode replayMode)) {
	for _, mode := range []replayMode{replayAll, replaySome, replayNone} {
		t.Run(string(mode), func(t *testing.T) { test(t, mode) })
	}
}

// replayTweak sets the replay cache of a test dispatcher.
func replayTweak(t *testing.T, v *env, store uint64, mode replayMode) func(*Config) {
	var largest int64
	for _, k := range storeFiles(t, v.src, store) {
		b, err := v.src.Get(context.Background(), k)
		require.NoError(t, err)
		largest = max(largest, int64(len(b)))
	}
	return func(c *Config) {
		switch mode {
		case replaySome:
			c.ReplayCacheBytes = 2 * largest
		case replayNone:
			c.ReplayCacheBytes = 0
		}
	}
}

// checkReplayReads checks how often each store file up to last was read
// from the buffer: once with the whole window in the replay cache, which
// routed the files after ckpt up to readTo again (the restarted run's);
// without the cache those were read twice or more; with a small one, each
// of them either came from the cache or was read again. The cache is empty
// once the stream caught up.
func checkReplayReads(t *testing.T, mode replayMode, buf *countingStore, reg *prometheus.Registry, store, ckpt, readTo, last uint64) {
	t.Helper()
	require.Greater(t, readTo, ckpt)
	gets := buf.getsOf(t, store)
	hits := metric(t, reg, "tistream_dispatcher_replay_cache_files_total", streamLabels(store))
	again := 0
	for seq := uint64(1); seq <= last; seq++ {
		inWindow := seq > ckpt && seq <= readTo
		switch {
		case mode == replayAll:
			require.Equal(t, 1, gets[seq], "file %d read from the buffer", seq)
		case mode == replayNone && inWindow:
			require.GreaterOrEqual(t, gets[seq], 2, "file %d read again without the cache", seq)
		default:
			require.GreaterOrEqual(t, gets[seq], 1, "file %d never read", seq)
		}
		if inWindow && gets[seq] >= 2 {
			again++
		}
	}
	switch mode {
	case replayNone:
		require.Zero(t, hits)
	case replayAll:
		require.GreaterOrEqual(t, hits, float64(readTo-ckpt), "files routed again from the cache")
	case replaySome:
		require.GreaterOrEqual(t, hits+float64(again), float64(readTo-ckpt), "every file of the window routed again, from the cache or the buffer")
		require.Positive(t, again, "a small cache must not hold the whole window")
	}
	eventually(t, func() bool { return metric(t, reg, "tistream_dispatcher_replay_cache_bytes", nil) == 0 },
		"the cache empties as the checkpoint passes its files")
}

func testRangeMove(t *testing.T, mode replayMode) { rangeMove(t, mode, false) }

// rangeMove is testRangeMove; with notified, the dispatcher does not poll
// and each file is notified once written (notified_test.go). It returns
// the counted buffer, the registry and the store's seqs.
func rangeMove(t *testing.T, mode replayMode, notified bool) (*countingStore, *prometheus.Registry, []uint64) {
	v := newEnv(t)
	buf := countGets(v.buffer)
	v.buffer = buf
	const store, limit = 1, 3
	exp := expectedBatches(t, v.src, store)
	seqs := seqsOf(t, v, store)
	last := seqs[len(seqs)-1]
	half := seqs[len(seqs)/2]
	ckpt := heldCheckpoint(exp, seqs, limit)
	require.Less(t, ckpt, half)
	sent := min(half, ckpt+testMaxInFlight)
	v.sorters[1].set(func(f *fakeSorter) { f.ackLimit[store] = limit })
	write := func(from, to uint64) { v.feed(store, from, to) }
	tweak := replayTweak(t, v, store, mode)
	if notified {
		tweak = func(c *Config) { replayTweak(t, v, store, mode)(c); noPoll(c) }
	} else {
		write(1, half)
	}
	v.assign(store, "d1", 1)
	d, reg := v.dispatcher("d1", tweak)
	if notified {
		listedOnce(t, buf, store)
		write = func(from, to uint64) {
			for seq := from; seq <= to; seq++ {
				v.feed(store, seq, seq)
				v.notify(d, store, seq, v.maxTsOf(store, seq))
			}
		}
		write(1, half)
	}
	eventually(t, func() bool { return v.checkpointSeq(store) == ckpt }, "checkpoint reaches %d", ckpt)
	ahead := min(half, ckpt+testMaxInFlight)
	eventually(t, func() bool { return slices.Equal(v.sorters[1].appliedOrder(2, store), fedSeqs(exp, 2, 0, ahead)) },
		"range 2 got the files up to %d", ahead)

	// Move range 2 to a new sorter s3 at epoch 2; s2 no longer owns it.
	s3 := v.moveRange2()
	write(half+1, last)
	eventually(t, func() bool { return v.checkpointSeq(store) == last }, "checkpoint reaches %d", last)
	// s3 got everything after the checkpoint, from the file after it, in order.
	require.Equal(t, fedSeqs(exp, 2, ckpt, last), s3.appliedOrder(2, store))
	for _, b := range s3.received() {
		require.Equal(t, uint64(2), b.epoch)
		require.Greater(t, b.seq, ckpt, "s3 got a file at or below the checkpoint")
	}
	require.Equal(t, fedSeqs(exp, 1, 0, last), v.sorters[0].appliedOrder(1, store))
	checkContent(t, s3, 2, map[uint64]map[uint64]map[uint64]string{store: exp})
	for _, b := range v.sorters[1].received() {
		if !b.refused {
			require.LessOrEqual(t, b.seq, sent, "s2 accepted file %d after losing range 2", b.seq)
		}
	}
	checkReplayReads(t, mode, buf, reg, store, ckpt, sent, last)
	return buf, reg, seqs
}

// (4) A stream reassigned to another dispatcher at epoch+1: the old
// dispatcher stops it and can no longer write its checkpoint.
func TestReassignedStreamIsFenced(t *testing.T) {
	v := newEnv(t)
	const store = 1
	exp := expectedBatches(t, v.src, store)
	seqs := seqsOf(t, v, store)
	last := seqs[len(seqs)-1]
	half := seqs[len(seqs)/2]
	v.feed(store, 1, half)
	v.assign(store, "d1", 1)
	d1, _ := v.dispatcher("d1", nil)
	d2, _ := v.dispatcher("d2", nil)
	eventually(t, func() bool { return v.checkpointSeq(store) == half }, "checkpoint reaches %d", half)
	old := d1.lookup(testTenant, store)
	require.NotNil(t, old)

	v.assign(store, "d2", 2)
	eventually(t, func() bool { return d1.lookup(testTenant, store) == nil }, "d1 drops the stream")
	select {
	case <-old.loopDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the old stream's loop did not stop")
	}
	v.feed(store, half+1, last)
	eventually(t, func() bool { return v.checkpointSeq(store) == last }, "checkpoint reaches %d", last)
	require.Equal(t, uint64(2), v.checkpoint(store).Epoch)
	require.NotNil(t, d2.lookup(testTenant, store))
	for i, f := range v.sorters {
		for _, b := range accepted(f, uint64(i+1), store) {
			if b.seq > half {
				require.Equal(t, "d2", b.dispatcher, "file %d of range %d", b.seq, i+1)
			}
		}
		require.Equal(t, fedSeqs(exp, uint64(i+1), 0, last), f.appliedOrder(uint64(i+1), store))
	}

	// The old stream, even with a checkpoint far ahead, is fenced.
	old.mu.Lock()
	old.ckpt = position{seq: last + 100, maxTs: 1}
	old.mu.Unlock()
	err := old.writeCheckpoint(context.Background())
	require.True(t, errors.Is(err, errFenced), "got %v", err)
	require.Equal(t, last, v.checkpointSeq(store))
	require.Equal(t, uint64(2), v.checkpoint(store).Epoch)

	// A stream of the old epoch restarted from scratch is fenced at once by
	// the newer checkpoint, too.
	st := newStream(d1, streamKey{testTenant, store}, testCluster, 1, d1.worker.Get().Session.Lease())
	require.True(t, errors.Is(st.loadCheckpoint(context.Background()), errFenced))
}

// A lost lease stops every stream; the dispatcher registers again and runs
// them under the new lease.
func TestLostLeaseStopsStreams(t *testing.T) {
	v := newEnv(t)
	const store = 1
	seqs := seqsOf(t, v, store)
	last := seqs[len(seqs)-1]
	half := seqs[len(seqs)/2]
	v.feed(store, 1, half)
	v.assign(store, "d1", 1)
	d1, reg := v.dispatcher("d1", nil)
	eventually(t, func() bool { return v.checkpointSeq(store) == half }, "checkpoint reaches %d", half)
	old := d1.lookup(testTenant, store)
	require.NotNil(t, old)
	lease := d1.worker.Get().Session.Lease()
	_, err := v.cli.Revoke(context.Background(), lease)
	require.NoError(t, err)
	select {
	case <-old.loopDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not stop after the lease was lost")
	}
	eventually(t, func() bool {
		st := d1.lookup(testTenant, store)
		return st != nil && st != old && st.lease != lease
	}, "the stream runs again under a new lease")
	require.Equal(t, float64(1), metric(t, reg, "tistream_dispatcher_lease_lost_total", nil))
	v.feed(store, half+1, last)
	eventually(t, func() bool { return v.checkpointSeq(store) == last }, "checkpoint reaches %d", last)
}

// (5) Stop drains, writes the final checkpoint and leaves no goroutine
// behind.
func TestStopIsClean(t *testing.T) {
	v := newEnv(t)
	seqsStore := map[uint64]uint64{}
	for store := uint64(1); store <= testStores; store++ {
		seqs := seqsOf(t, v, store)
		seqsStore[store] = seqs[len(seqs)-1]
		v.feed(store, 1, seqsStore[store])
		v.assign(store, "d1", 1)
	}
	// The etcd client starts its lease keep-alive goroutines (for its
	// lifetime) at the first KeepAlive: start them before counting.
	lease, err := v.cli.Grant(context.Background(), 5)
	require.NoError(t, err)
	kctx, kcancel := context.WithCancel(context.Background())
	_, err = v.cli.KeepAlive(kctx, lease.ID)
	require.NoError(t, err)
	kcancel()
	time.Sleep(100 * time.Millisecond) // let the environment's goroutines settle
	before := runtime.NumGoroutine()
	// Checkpoints are written rarely: the final one comes from Stop.
	d1, _ := v.dispatcher("d1", func(c *Config) { c.CheckpointInterval = time.Hour })
	for store := uint64(1); store <= testStores; store++ {
		eventually(t, func() bool { return len(v.sorters[1].appliedOrder(2, store)) > 0 }, "store %d dispatched", store)
	}
	for store := uint64(1); store <= testStores; store++ {
		eventually(t, func() bool {
			st := d1.lookup(testTenant, store)
			return st != nil && st.checkpointSeq() == seqsStore[store]
		}, "store %d durable", store)
		require.Zero(t, v.checkpointSeq(store))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, d1.Stop(ctx))
	for store := uint64(1); store <= testStores; store++ {
		require.Equal(t, seqsStore[store], v.checkpointSeq(store), "final checkpoint of store %d", store)
		require.Equal(t, v.kept(store, seqsStore[store]), v.bufferSeqs(store))
	}
	resp, err := v.cli.Get(context.Background(), etcdx.WorkerKey(metav1.WorkerKind_WORKER_KIND_DISPATCHER, "d1"))
	require.NoError(t, err)
	require.Zero(t, resp.Count, "the worker key is gone after Stop")
	deadline := time.Now().Add(5 * time.Second)
	for (runtime.NumGoroutine() > before || len(dispatcherGoroutines()) > 0) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.Empty(t, dispatcherGoroutines(), "goroutines of the dispatcher still run after Stop")
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after Stop, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// dispatcherGoroutines returns the stacks of the goroutines running code of
// this package (tests excluded).
func dispatcherGoroutines() []string {
	buf := make([]byte, 1<<22)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		for _, line := range strings.Split(g, "\n") {
			if strings.Contains(line, "/services/dispatcher/") && !strings.Contains(line, "_test.go") {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// Notify wakes a stream waiting for its next file (no polling here); it
// refuses bad requests and streams that do not run here.
func TestNotifyWakesStream(t *testing.T) {
	v := newEnv(t)
	const store = 1
	seqs := seqsOf(t, v, store)
	last := seqs[len(seqs)-1]
	half := seqs[len(seqs)/2]
	v.feed(store, 1, half)
	v.assign(store, "d1", 1)
	d1, _ := v.dispatcher("d1", func(c *Config) { c.PollInterval = time.Hour })
	eventually(t, func() bool { return v.checkpointSeq(store) == half }, "checkpoint reaches %d", half)
	v.feed(store, half+1, last)
	cc, err := grpcx.Dial(d1.GRPCAddr(), nil)
	require.NoError(t, err)
	defer cc.Close()
	cli := dispatcherv1.NewDispatcherServiceClient(cc)
	ctx := context.Background()
	_, err = cli.Notify(ctx, &dispatcherv1.NotifyRequest{TenantId: testTenant, StoreId: 0, Seq: 1})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = cli.Notify(ctx, &dispatcherv1.NotifyRequest{TenantId: testTenant, StoreId: 2, Seq: 1})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = cli.Notify(ctx, &dispatcherv1.NotifyRequest{TenantId: testTenant, StoreId: store, Seq: half + 1})
	require.NoError(t, err)
	eventually(t, func() bool { return v.checkpointSeq(store) == last }, "checkpoint reaches %d after Notify", last)
}

// A failed Start leaves nothing running and Stop is a no-op.
func TestStartFailureThenStop(t *testing.T) {
	v := newEnv(t)
	cfg := DefaultConfig()
	cfg.ID = "d1"
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "256.0.0.1:1"
	cfg.Security.Insecure = true // their own tests; security is libs/svc's, libs/auth's and e2e's
	s, err := New(cfg, Deps{Etcd: v.cli, Buffer: v.buffer})
	require.NoError(t, err)
	require.Error(t, s.Start(context.Background()))
	require.NoError(t, s.Stop(context.Background()))
	require.Error(t, s.Start(context.Background()), "a second Start")
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	require.ErrorContains(t, cfg.Validate(), "--tls-cert is required", "TLS by default")
	cfg.Security.Insecure = true
	require.NoError(t, cfg.Validate())
	fs := flag.NewFlagSet("dispatcher", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"--id=x", "--max-in-flight=0", "--lease-ttl=100ms", "--retry-min=2s", "--retry-max=1s", "--gc-grace=-1s"}))
	err := cfg.Validate()
	require.Error(t, err)
	for _, flag := range []string{"--max-in-flight", "--lease-ttl", "--retry-max", "--gc-grace"} {
		require.ErrorContains(t, err, flag)
	}
	cfg = DefaultConfig()
	cfg.ID = ""
	require.ErrorContains(t, cfg.Validate(), "--id")
	cfg = DefaultConfig()
	cfg.Security.Insecure = true
	_, err = New(cfg, Deps{})
	require.ErrorContains(t, err, "etcd")
}

// A stream starts after the checkpoint in etcd and deletes the files a
// previous owner left behind it.
func TestStartsFromCheckpoint(t *testing.T) {
	v := newEnv(t)
	const store, from = 1, 3
	exp := expectedBatches(t, v.src, store)
	seqs := seqsOf(t, v, store)
	last := seqs[len(seqs)-1]
	v.put(etcdx.CheckpointKey(testTenant, store), &metav1.Checkpoint{Seq: from, Epoch: 1})
	v.feed(store, 1, from)
	v.assign(store, "d1", 2)
	v.dispatcher("d1", nil)
	// The checkpoint was written without leader_base_seq (an older
	// dispatcher): the GC finds the base in file `from`'s header.
	eventually(t, func() bool { return slices.Equal(v.bufferSeqs(store), v.kept(store, from)) }, "files up to the checkpoint deleted but its base")
	v.feed(store, from+1, last)
	eventually(t, func() bool { return v.checkpointSeq(store) == last }, "checkpoint reaches %d", last)
	for i, f := range v.sorters {
		require.Equal(t, fedSeqs(exp, uint64(i+1), from, last), f.appliedOrder(uint64(i+1), store))
	}
	require.Equal(t, uint64(2), v.checkpoint(store).Epoch)
}

// (3c) A range table change (range 2 split into 3 and 4 on another sorter)
// makes the stream reroute from its checkpoint with the new table; the files
// read past the checkpoint are rerouted from the replay cache.
func TestSplitReroutesFromCheckpoint(t *testing.T) {
	forReplayCache(t, testSplitReroute)
}

func testSplitReroute(t *testing.T, mode replayMode) {
	v := newEnv(t)
	buf := countGets(v.buffer)
	v.buffer = buf
	const store, limit = 1, 3
	exp := expectedBatches(t, v.src, store)
	seqs := seqsOf(t, v, store)
	last := seqs[len(seqs)-1]
	half := seqs[len(seqs)/2]
	ckpt := heldCheckpoint(exp, seqs, limit)
	require.Less(t, ckpt, half)
	v.sorters[1].set(func(f *fakeSorter) { f.ackLimit[store] = limit })
	v.feed(store, 1, half)
	v.assign(store, "d1", 1)
	_, reg := v.dispatcher("d1", replayTweak(t, v, store, mode))
	eventually(t, func() bool { return v.checkpointSeq(store) == ckpt }, "checkpoint reaches %d", ckpt)
	sent := min(half, ckpt+testMaxInFlight)
	eventually(t, func() bool { return slices.Equal(v.sorters[1].appliedOrder(2, store), fedSeqs(exp, 2, 0, sent)) },
		"range 2 got the files up to %d", sent)

	split := tidbcodec.TablePrefix(106)
	s3 := newFakeSorter(t, map[uint64]uint64{3: 1, 4: 1})
	v.put(etcdx.WorkerKey(metav1.WorkerKind_WORKER_KIND_SORTER, "s3"), &metav1.WorkerInfo{Id: "s3", Kind: metav1.WorkerKind_WORKER_KIND_SORTER, Addr: s3.addr})
	v.put(etcdx.RangeKey(testTenant, 3), &metav1.RangeTask{TenantId: testTenant, RangeId: 3, StartKey: splitKey, EndKey: split,
		State: metav1.RangeTask_STATE_ACTIVE, Epoch: 1, Owner: "s3", ParentRangeIds: []uint64{2}})
	v.put(etcdx.RangeKey(testTenant, 4), &metav1.RangeTask{TenantId: testTenant, RangeId: 4, StartKey: split,
		State: metav1.RangeTask_STATE_ACTIVE, Epoch: 1, Owner: "s3", ParentRangeIds: []uint64{2}})
	v.put(etcdx.RangeKey(testTenant, 2), &metav1.RangeTask{TenantId: testTenant, RangeId: 2, StartKey: splitKey,
		State: metav1.RangeTask_STATE_RETIRED, Epoch: 1, Owner: "s2", SuccessorRangeIds: []uint64{3, 4}})
	v.feed(store, half+1, last)
	eventually(t, func() bool { return v.checkpointSeq(store) == last }, "checkpoint reaches %d", last)

	// The test's own routing with the new table, from the file after the
	// checkpoint on.
	tb, err := route.NewTable([]route.Range{{ID: 1, End: splitKey}, {ID: 3, Start: splitKey, End: split}, {ID: 4, Start: split}})
	require.NoError(t, err)
	rt := route.NewRouter(tb)
	want := map[uint64][]uint64{}
	digests := map[uint64]map[uint64]string{}
	for _, k := range storeFiles(t, v.src, store) {
		b, err := v.src.Get(context.Background(), k)
		require.NoError(t, err)
		batches, h, err := rt.Route(k, b)
		require.NoError(t, err)
		if h.Seq <= ckpt {
			continue
		}
		digests[h.Seq] = map[uint64]string{}
		for _, id := range slices.Sorted(maps.Keys(batches)) {
			want[id] = append(want[id], h.Seq)
			digests[h.Seq][id] = routeDigest(batches[id].Events)
		}
	}
	require.NotEmpty(t, want[3])
	require.NotEmpty(t, want[4])
	require.Equal(t, want[3], s3.appliedOrder(3, store))
	require.Equal(t, want[4], s3.appliedOrder(4, store))
	for _, b := range s3.received() {
		require.Equal(t, digests[b.seq][b.rangeID], b.digest, "file %d range %d", b.seq, b.rangeID)
	}
	require.Equal(t, fedSeqs(exp, 1, 0, last), v.sorters[0].appliedOrder(1, store))
	checkReplayReads(t, mode, buf, reg, store, ckpt, sent, last)
}

// A routing change ends a run even while it is blocked sending to a sorter
// that stopped reading (its queue and gRPC flow-control window are full):
// the range's new owner gets every file from the checkpoint on.
func TestRangeMoveUnblocksStuckSend(t *testing.T) {
	v := newEnv(t)
	const store = 1
	exp := expectedBatches(t, v.src, store)
	seqs := seqsOf(t, v, store)
	last := seqs[len(seqs)-1]
	gate := make(chan struct{})
	defer close(gate)
	v.sorters[1].set(func(f *fakeSorter) { f.gate = gate })
	v.feed(store, 1, last)
	v.assign(store, "d1", 1)
	d1, _ := v.dispatcher("d1", func(c *Config) { c.MaxInFlight = 1000 })
	// Wait until the stream is stuck: the sorter of range 1 stops getting files.
	prev, stable := -1, 0
	eventually(t, func() bool {
		n := len(v.sorters[0].appliedOrder(1, store))
		if n == prev && n > 0 {
			stable++
		} else {
			prev, stable = n, 0
		}
		return stable >= 20
	}, "the stream gets stuck")
	require.Less(t, prev, len(fedSeqs(exp, 1, 0, last)), "the stream should be stuck before the last file")
	require.Zero(t, v.checkpointSeq(store))
	st := d1.lookup(testTenant, store)
	require.NotNil(t, st)

	s3 := newFakeSorter(t, map[uint64]uint64{2: 2})
	v.put(etcdx.WorkerKey(metav1.WorkerKind_WORKER_KIND_SORTER, "s3"), &metav1.WorkerInfo{Id: "s3", Kind: metav1.WorkerKind_WORKER_KIND_SORTER, Addr: s3.addr})
	v.put(etcdx.RangeKey(testTenant, 2), &metav1.RangeTask{TenantId: testTenant, RangeId: 2, StartKey: splitKey,
		State: metav1.RangeTask_STATE_ACTIVE, Epoch: 2, Owner: "s3"})
	eventually(t, func() bool { return v.checkpointSeq(store) == last }, "checkpoint reaches %d", last)
	require.Equal(t, fedSeqs(exp, 2, 0, last), s3.appliedOrder(2, store))
	require.Equal(t, fedSeqs(exp, 1, 0, last), v.sorters[0].appliedOrder(1, store))
}

// splitRange2 splits range 2 at table 106 into ranges 3 and 4 owned by
// the sorter registered as s3, in one etcd transaction (children ACTIVE,
// parent RETIRED), as the meta-server completes a split.
func (v *env) splitRange2(s3 *fakeSorter) {
	v.t.Helper()
	split := tidbcodec.TablePrefix(106)
	v.put(etcdx.WorkerKey(metav1.WorkerKind_WORKER_KIND_SORTER, "s3"), &metav1.WorkerInfo{Id: "s3", Kind: metav1.WorkerKind_WORKER_KIND_SORTER, Addr: s3.addr})
	_, err := v.cli.Txn(context.Background()).Then(
		clientv3.OpPut(etcdx.RangeKey(testTenant, 3), string(etcdx.Marshal(&metav1.RangeTask{TenantId: testTenant, RangeId: 3, StartKey: splitKey, EndKey: split,
			State: metav1.RangeTask_STATE_ACTIVE, Epoch: 1, Owner: "s3", ParentRangeIds: []uint64{2}}))),
		clientv3.OpPut(etcdx.RangeKey(testTenant, 4), string(etcdx.Marshal(&metav1.RangeTask{TenantId: testTenant, RangeId: 4, StartKey: split,
			State: metav1.RangeTask_STATE_ACTIVE, Epoch: 1, Owner: "s3", ParentRangeIds: []uint64{2}}))),
		clientv3.OpPut(etcdx.RangeKey(testTenant, 2), string(etcdx.Marshal(&metav1.RangeTask{TenantId: testTenant, RangeId: 2, StartKey: splitKey,
			State: metav1.RangeTask_STATE_RETIRED, Epoch: 1, Owner: "s2", SuccessorRangeIds: []uint64{3, 4}}))),
	).Commit()
	require.NoError(v.t, err)
}

// splitFedSeqs routes a store's files with the table splitRange2 leaves (a
// Router of the test's own) and lists, per range, the seqs above after
// whose file feeds it, ascending.
func splitFedSeqs(t *testing.T, v *env, store, after uint64) map[uint64][]uint64 {
	tb, err := route.NewTable([]route.Range{{ID: 1, End: splitKey}, {ID: 3, Start: splitKey, End: tidbcodec.TablePrefix(106)},
		{ID: 4, Start: tidbcodec.TablePrefix(106)}})
	require.NoError(t, err)
	rt := route.NewRouter(tb)
	want := map[uint64][]uint64{}
	for _, k := range storeFiles(t, v.src, store) {
		b, err := v.src.Get(context.Background(), k)
		require.NoError(t, err)
		batches, h, err := rt.Route(k, b)
		require.NoError(t, err)
		for id := range batches {
			if h.Seq > after {
				want[id] = append(want[id], h.Seq)
			}
		}
	}
	for id := range want {
		slices.Sort(want[id])
	}
	require.NotEmpty(t, want[3])
	require.NotEmpty(t, want[4])
	return want
}

// A stream refused by a range that is not SEALING (here: its sorter lost
// it, the way a split's parent refuses when the dispatcher has not seen it
// SEALING yet) restarts; it resumes as soon as the routing changes, not
// when its backoff ends: here the backoff is an hour, so only the routing
// change can restart it. The children get every file after the checkpoint,
// in order, and the restarts report what they re-read.
func TestRefusedStreamRestartsOnRoutingChange(t *testing.T) {
	v := newEnv(t)
	const store = 1
	exp := expectedBatches(t, v.src, store)
	seqs := seqsOf(t, v, store)
	last := seqs[len(seqs)-1]
	v.sorters[1].set(func(f *fakeSorter) { f.owned = map[uint64]uint64{} })
	v.feed(store, 1, last)
	v.assign(store, "d1", 1)
	_, reg := v.dispatcher("d1", func(c *Config) { c.RetryMin, c.RetryMax = time.Hour, time.Hour })
	notOwner := map[string]string{"reason": reasonNotOwner}
	eventually(t, func() bool {
		return metric(t, reg, "tistream_dispatcher_stream_restarts_total", notOwner) >= 1
	}, "range 2's sorter refuses the stream")
	ckpt := v.checkpointSeq(store)
	require.Less(t, ckpt, last)

	s3 := newFakeSorter(t, map[uint64]uint64{3: 1, 4: 1})
	v.splitRange2(s3)
	eventually(t, func() bool { return v.checkpointSeq(store) == last }, "checkpoint reaches %d", last)
	want := splitFedSeqs(t, v, store, ckpt)
	require.Equal(t, want[3], s3.appliedOrder(3, store))
	require.Equal(t, want[4], s3.appliedOrder(4, store))
	require.Equal(t, fedSeqs(exp, 1, 0, last), v.sorters[0].appliedOrder(1, store))
	for _, b := range v.sorters[1].received() {
		require.True(t, b.refused, "range 2's old sorter accepted file %d", b.seq)
	}
	require.Positive(t, histogramCount(t, reg, "tistream_dispatcher_restart_reread_files", notOwner))
}

// A split's parent that sealed refuses every batch until the routing names
// its children. The stream does not restart on those refusals: it keeps
// feeding the other ranges (range 1 gets every file, past the refused
// ones, with no restart at all), holds its checkpoint below the first
// refused file, and restarts once, for the new table, when the split
// completes; the children then get every file after the checkpoint, in
// order.
func TestSealedParentKeepsOtherRangesFlowing(t *testing.T) {
	prev := sealedWait
	sealedWait = time.Hour // only the routing change may end the run
	t.Cleanup(func() { sealedWait = prev })
	v := newEnv(t)
	const store = 1
	exp := expectedBatches(t, v.src, store)
	seqs := seqsOf(t, v, store)
	last := seqs[len(seqs)-1]
	v.assign(store, "d1", 1)
	d1, reg := v.dispatcher("d1", func(c *Config) { c.MaxInFlight = 1000 })
	v.put(etcdx.RangeKey(testTenant, 2), &metav1.RangeTask{TenantId: testTenant, RangeId: 2, StartKey: splitKey,
		State: metav1.RangeTask_STATE_SEALING, Epoch: 1, Owner: "s2", SuccessorRangeIds: []uint64{3, 4}})
	eventually(t, func() bool {
		st := d1.lookup(testTenant, store)
		if st == nil {
			return false
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.snap.sealing[2]
	}, "the stream sees range 2 SEALING")
	v.sorters[1].set(func(f *fakeSorter) { f.owned = map[uint64]uint64{} }) // sealed: refuses
	v.feed(store, 1, last)

	eventually(t, func() bool { return slices.Equal(v.sorters[0].appliedOrder(1, store), fedSeqs(exp, 1, 0, last)) },
		"range 1 gets every file while range 2 refuses")
	eventually(t, func() bool {
		return metric(t, reg, "tistream_dispatcher_sealed_refusals_total", streamLabels(store)) > 0
	}, "range 2 refused")
	first := fedSeqs(exp, 2, 0, last)[0]
	require.Less(t, v.checkpointSeq(store), first, "the checkpoint passed a file range 2 refused")
	for _, b := range v.sorters[1].received() {
		require.True(t, b.refused)
	}
	for _, reason := range []string{reasonNotOwner, reasonRouting, reasonIngest} {
		require.Zero(t, metric(t, reg, "tistream_dispatcher_stream_restarts_total", map[string]string{"reason": reason}), reason)
	}

	ckpt := v.checkpointSeq(store)
	s3 := newFakeSorter(t, map[uint64]uint64{3: 1, 4: 1})
	v.splitRange2(s3)
	eventually(t, func() bool { return v.checkpointSeq(store) == last }, "checkpoint reaches %d", last)
	want := splitFedSeqs(t, v, store, ckpt)
	require.Equal(t, want[3], s3.appliedOrder(3, store))
	require.Equal(t, want[4], s3.appliedOrder(4, store))
	require.Equal(t, fedSeqs(exp, 1, 0, last), v.sorters[0].appliedOrder(1, store))
	require.Zero(t, metric(t, reg, "tistream_dispatcher_stream_restarts_total", reasonLabel(reasonNotOwner)))
	require.Equal(t, 1.0, metric(t, reg, "tistream_dispatcher_stream_restarts_total", reasonLabel(reasonRouting)))
}

func reasonLabel(reason string) map[string]string { return map[string]string{"reason": reason} }

// histogramCount is the sample count of the histogram series matching want.
func histogramCount(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) uint64 {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m, want) {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}
