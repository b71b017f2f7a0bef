package sorter

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/pool"
	rangesorter "github.com/tistream/tistream/libs/sorter"
	"github.com/tistream/tistream/libs/tidbcodec"
	"github.com/tistream/tistream/libs/workpool"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// Each range of these tests covers its own table (tableOf) and region
// (incOf), so the ranges of one store file are independent.

func tableOfRange(id uint64) int64 { return int64(testTable + 100 + id) }

func incOf(id uint64) *sorterv1.Incarnation {
	return &sorterv1.Incarnation{RegionId: 1000 + id, Version: 1, Term: 1}
}

// putTableRange assigns range id (its own table) to owner at epoch.
func (e *testEnv) putTableRange(id uint64, owner string, epoch uint64) {
	e.t.Helper()
	tb := tableOfRange(id)
	t := &metav1.RangeTask{TenantId: tenant, RangeId: id, StartKey: tidbcodec.TablePrefix(tb), EndKey: tidbcodec.TablePrefix(tb + 1),
		OpenedAtTs: 50, State: metav1.RangeTask_STATE_ACTIVE, Epoch: epoch, Owner: owner}
	_, err := e.cli.Put(context.Background(), etcdx.RangeKey(tenant, id), etcdx.Marshal(t))
	require.NoError(e.t, err)
}

// assignTableRanges assigns ranges 1..n (their own tables) to s at epoch
// 1 and waits until s has taken them.
func (e *testEnv) assignTableRanges(s *Service, n uint64) {
	e.t.Helper()
	for id := uint64(1); id <= n; id++ {
		e.putTableRange(id, s.ID(), 1)
	}
	for id := uint64(1); id <= n; id++ {
		waitTaken(e.t, s, tenant, id, 1)
	}
}

// rangeFeed writes the store files of several table ranges and records
// what each range must publish: the independent record the tests compare
// the pool with.
type rangeFeed struct {
	ts   uint64
	want map[uint64][]string // range -> rows as published() prints them
}

func newRangeFeed() *rangeFeed { return &rangeFeed{ts: 100, want: map[uint64][]string{}} }

// batch is range id's part of a store file: a REGION_START on its first
// file, one committed row at a new commit ts, and (leader store 1 only) a
// resolved ts at it.
func (rf *rangeFeed) batch(id, store, seq uint64) *sorterv1.RangeBatch {
	var evs []*sorterv1.Event
	tb := tableOfRange(id)
	if store == 1 && seq == 1 {
		evs = append(evs, &sorterv1.Event{Kind: sorterv1.Event_KIND_REGION_START, Inc: incOf(id),
			StartKey: tidbcodec.TablePrefix(tb), EndKey: tidbcodec.TablePrefix(tb + 1)})
	}
	rf.ts++
	handle, value := int64(seq*10+store), fmt.Sprintf("r%d-s%d-f%d", id, store, seq)
	evs = append(evs, &sorterv1.Event{Kind: sorterv1.Event_KIND_ROW, Inc: incOf(id), Row: &sorterv1.Row{
		Type: sorterv1.RowType_ROW_TYPE_COMMITTED, Op: sorterv1.RowOp_ROW_OP_PUT, Key: tidbcodec.EncodeRecordKey(tb, handle),
		Value: []byte(value), StartTs: rf.ts - 1, CommitTs: rf.ts}})
	rf.want[id] = append(rf.want[id], fmt.Sprintf("%d@%d OP_PUT=%s", handle, rf.ts, value))
	if store == 1 {
		evs = append(evs, &sorterv1.Event{Kind: sorterv1.Event_KIND_RESOLVED, Refs: []*sorterv1.Incarnation{incOf(id)}, Ts: rf.ts})
	}
	return batch(id, 1, evs...)
}

// resolved is range id's part of a store 1 file resolving it at the
// newest commit ts.
func (rf *rangeFeed) resolved(id uint64) *sorterv1.RangeBatch {
	return batch(id, 1, &sorterv1.Event{Kind: sorterv1.Event_KIND_RESOLVED, Refs: []*sorterv1.Incarnation{incOf(id)}, Ts: rf.ts})
}

// lastTs is the resolved ts a store 1 batch ends with.
func lastTs(b *sorterv1.RangeBatch) uint64 { return b.Events[len(b.Events)-1].Ts }

func raise(peak *atomic.Int32, n int32) {
	for {
		old := peak.Load()
		if n <= old || peak.CompareAndSwap(old, n) {
			return
		}
	}
}

// The batches of one request for different ranges are applied in parallel
// on the worker pool, and every range still applies each store's files in
// the stream's order: the first file's batches wait for each other in the
// apply hook (they are all inside at once only if they run in parallel),
// the order in which each range applied (store, file) is exactly the order
// sent, and every range publishes exactly the rows sent to it.
func TestIngestAppliesRangesInParallel(t *testing.T) {
	const ranges, files = 8, 12
	e := newEnv(t)
	var mu sync.Mutex
	applied := map[uint64][]string{} // range -> "store/seq" in apply order
	var inside, peak atomic.Int32
	all := make(chan struct{})
	var allOnce sync.Once
	s := e.startSorterHooked("s1", func(c *Config) { c.Workers = ranges }, func(s *Service) {
		s.applying = func(k rangeKey, store, seq uint64) {
			n := inside.Add(1)
			defer inside.Add(-1)
			raise(&peak, n)
			mu.Lock()
			applied[k.id] = append(applied[k.id], fmt.Sprintf("%d/%d", store, seq))
			mu.Unlock()
			if store == 1 && seq == 1 {
				if n == ranges {
					allOnce.Do(func() { close(all) })
				}
				select { // bounded: serial applies fail below instead of hanging
				case <-all:
				case <-time.After(5 * time.Second):
				}
			}
		}
	})
	require.Equal(t, float64(ranges), testutil.ToFloat64(s.m.workers))
	e.assignTableRanges(s, ranges)

	f := openFeeder(t, s.GRPCAddr())
	rf := newRangeFeed()
	sent := map[uint64][]string{}
	send := func(store, seq uint64, mk func(id uint64) *sorterv1.RangeBatch) {
		var bs []*sorterv1.RangeBatch
		for id := uint64(1); id <= ranges; id++ {
			bs = append(bs, mk(id))
			sent[id] = append(sent[id], fmt.Sprintf("%d/%d", store, seq))
		}
		f.sendBatches(store, seq, bs...)
	}
	// Store 1 leads every region and resolves each file at its rows; store
	// 2's rows commit above that and are resolved by store 1's next file.
	for seq := uint64(1); seq <= files; seq++ {
		for store := uint64(1); store <= 2; store++ {
			send(store, seq, func(id uint64) *sorterv1.RangeBatch { return rf.batch(id, store, seq) })
		}
	}
	send(1, files+1, rf.resolved)
	select {
	case <-all:
	case <-time.After(waitFor):
		t.Fatalf("the first file's %d batches were never applied at once (at most %d)", ranges, peak.Load())
	}

	for id := uint64(1); id <= ranges; id++ {
		require.Equal(t, rf.want[id], e.waitPublished(tenant, id, rf.ts), "range %d", id)
		f.waitDurable(tenant, id, 1, files+1)
		f.waitDurable(tenant, id, 2, files)
	}
	require.Empty(t, f.refusals())
	require.Equal(t, int32(ranges), peak.Load(), "the first file's batches were applied at once")
	mu.Lock()
	defer mu.Unlock()
	for id := uint64(1); id <= ranges; id++ {
		require.Equal(t, sent[id], applied[id], "range %d applied its files out of the stream's order", id)
	}
}

// A range that fails does not stop the others. In ingest: a batch that
// cannot be decoded is refused (NotOwner) while the other ranges of its
// file apply theirs, the range refuses the store's later files (sticky)
// while the others go on, and it catches up when the dispatcher resends
// from the refused file. In publishing: a range fenced by a newer owner is
// dropped in a round (its stage or commit fails on the pool) while the
// others' flushes of that round and the next are published. Every range's
// rows are compared with what was sent to it.
func TestFailingRangeDoesNotStopTheOthers(t *testing.T) {
	const ranges = 4
	e := newEnv(t)
	a := e.startSorter("a")
	b := e.startSorter("b")
	e.assignTableRanges(a, ranges)
	f := openFeeder(t, a.GRPCAddr())
	rf := newRangeFeed()
	files := map[[2]uint64]*sorterv1.RangeBatch{} // (range, seq) -> store 1's batch
	send := func(seq uint64, ids ...uint64) {
		var bs []*sorterv1.RangeBatch
		for _, id := range ids {
			k := [2]uint64{id, seq}
			if files[k] == nil {
				files[k] = rf.batch(id, 1, seq)
			}
			bs = append(bs, files[k])
		}
		f.sendBatches(1, seq, bs...)
	}
	send(1, 1, 2, 3, 4)
	for id := uint64(1); id <= ranges; id++ {
		e.waitPublished(tenant, id, lastTs(files[[2]uint64{id, 1}]))
	}
	wm1 := lastTs(files[[2]uint64{2, 1}])

	// File 2 of range 2 cannot be decoded.
	good := rf.batch(2, 1, 2)
	files[[2]uint64{2, 2}] = &sorterv1.RangeBatch{RangeId: 2, RangeEpoch: 1,
		Events: append([]*sorterv1.Event{{Kind: sorterv1.Event_Kind(99)}}, good.Events...)}
	for seq := uint64(2); seq <= 4; seq++ {
		send(seq, 1, 2, 3, 4)
	}
	f.waitNotOwner(tenant, 2, 1, 2)
	f.waitNotOwner(tenant, 2, 1, 4)
	for _, id := range []uint64{1, 3, 4} {
		require.Equal(t, rf.want[id], e.waitPublished(tenant, id, lastTs(files[[2]uint64{id, 4}])), "range %d", id)
	}
	for _, n := range f.refusals() {
		require.Equal(t, uint64(2), n.RangeId, "only range 2 refuses: %v", n)
	}
	_, wm := e.published(tenant, 2)
	require.Equal(t, wm1, wm, "range 2 applied nothing after its refused file")

	// The dispatcher resends range 2 from the refused file, fixed.
	files[[2]uint64{2, 2}] = good
	for seq := uint64(2); seq <= 4; seq++ {
		send(seq, 2)
	}
	require.Equal(t, rf.want[2], e.waitPublished(tenant, 2, lastTs(files[[2]uint64{2, 4}])))
	require.Len(t, f.refusals(), 3)

	// A newer owner (b, epoch 2) takes range 3 behind a's back: a's next
	// publication finds its FENCE, and a drops the range in that round.
	tb := tableOfRange(3)
	r3, err := rangesorter.Take(context.Background(), b.deps, pool.RangeSpec{Tenant: tenant, RangeID: 3,
		Start: tidbcodec.TablePrefix(tb), End: tidbcodec.TablePrefix(tb + 1), OpenedAt: 50}, 2)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r3.Drop() })
	send(5, 1, 2, 3, 4)
	require.Eventually(t, func() bool {
		h := a.lookup(rangeKey{tenant, 3})
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.r == nil
	}, waitFor, pollEvery, "a still holds range 3")
	require.GreaterOrEqual(t, testutil.ToFloat64(a.pm.fenced), 1.0)
	send(6, 1, 2, 3, 4)
	f.waitNotOwner(tenant, 3, 1, 6)
	for _, id := range []uint64{1, 2, 4} {
		require.Equal(t, rf.want[id], e.waitPublished(tenant, id, lastTs(files[[2]uint64{id, 6}])), "range %d", id)
	}
}

// Two batches of one range in one request keep their order (the first is
// applied, the second is the same file again: a duplicate), whichever runs
// on the stream's goroutine and whichever on the pool.
func TestIngestSameRangeTwiceInOneRequest(t *testing.T) {
	e := newEnv(t)
	s := e.startSorter("s1")
	e.assignTableRanges(s, 2)
	f := openFeeder(t, s.GRPCAddr())
	rf := newRangeFeed()
	first, other := rf.batch(1, 1, 1), rf.batch(2, 1, 1)
	want := rf.want[1]
	second := rf.batch(1, 1, 1) // the same file of range 1, other rows
	f.sendBatches(1, 1, first, other, second)
	require.Equal(t, want, e.waitPublished(tenant, 1, lastTs(first)))
	require.Equal(t, rf.want[2], e.waitPublished(tenant, 2, lastTs(other)))
	// A second request whose first batch's range comes again later.
	rf.want[1] = want
	a, b, c := rf.batch(1, 1, 2), rf.batch(2, 1, 2), rf.batch(1, 1, 2)
	want = rf.want[1][:len(rf.want[1])-1] // c's row is a duplicate's
	f.sendBatches(1, 2, a, b, c)
	require.Equal(t, rf.want[2], e.waitPublished(tenant, 2, lastTs(b)))
	rows, wm := e.published(tenant, 1)
	require.Equal(t, lastTs(a), wm)
	require.Equal(t, want, rows)
	require.Empty(t, f.refusals())
	require.Equal(t, 2.0, testutil.ToFloat64(s.m.batches.WithLabelValues("duplicate")))
}

// A round whose pool is closed (the service stopped while a stream was
// still applying) runs its tasks on the caller, as before the pool.
func TestRoundRunsInlineOnAClosedPool(t *testing.T) {
	p, err := workpool.New(2, 4)
	require.NoError(t, err)
	require.NoError(t, p.Close())
	r := &round{work: p}
	ran := 0
	for i := 0; i < 3; i++ {
		r.run(rangeKey{1, uint64(i)}, func() { ran++ })
	}
	r.wait()
	require.Equal(t, 3, ran)
}

// Ranges of one tenant have distinct pool keys; a collision would only
// serialize them.
func TestPoolKeys(t *testing.T) {
	seen := map[uint64]rangeKey{}
	for tn := uint64(1); tn <= 50; tn++ {
		for id := uint64(1); id <= 200; id++ {
			k := rangeKey{tn, id}
			prev, dup := seen[k.poolKey()]
			require.False(t, dup, "%v and %v share a key", k, prev)
			seen[k.poolKey()] = k
		}
	}
}
