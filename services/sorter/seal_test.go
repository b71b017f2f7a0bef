package sorter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// putRange writes a range task as the meta-server would.
func (e *testEnv) putRange(t *metav1.RangeTask) {
	e.t.Helper()
	t.TenantId = tenant
	_, err := e.cli.Put(context.Background(), etcdx.RangeKey(tenant, t.RangeId), etcdx.Marshal(t))
	require.NoError(e.t, err)
}

// waitSealed waits for the SEAL entry of a range and returns it.
func (e *testEnv) waitSealed(id uint64) *formatv1.RangeLogEntry {
	e.t.Helper()
	var head *formatv1.RangeLogEntry
	require.Eventually(e.t, func() bool {
		h, _, err := pool.FindHead(context.Background(), e.pool, tenant, id)
		require.NoError(e.t, err)
		head = h
		return h.Kind == formatv1.RangeLogEntry_KIND_SEAL
	}, waitFor, pollEvery, "range %d not sealed", id)
	return head
}

// sendBatches sends one store file's batches for several ranges.
func (f *feeder) sendBatches(store, seq uint64, batches ...*sorterv1.RangeBatch) {
	f.t.Helper()
	require.NoError(f.t, f.stream.Send(&sorterv1.IngestRequest{TenantId: tenant, StoreId: store, Seq: seq, Dispatcher: "d1", Batches: batches}))
}

func batch(rangeID, epoch uint64, evs ...*sorterv1.Event) *sorterv1.RangeBatch {
	return &sorterv1.RangeBatch{RangeId: rangeID, RangeEpoch: epoch, Events: evs}
}

// A SEALING range with two successors is split into them at its watermark;
// the children, assigned here at the parent's epoch, restore their share
// (a prewrite in flight included) and continue.
func TestSplit(t *testing.T) {
	e := newEnv(t)
	s := e.startSorter("s1")
	tStart, tEnd := tidbcodec.TablePrefix(testTable), tidbcodec.TablePrefix(testTable+1)
	parent := &metav1.RangeTask{RangeId: 1, StartKey: tStart, EndKey: tEnd, OpenedAtTs: 50,
		State: metav1.RangeTask_STATE_ACTIVE, Epoch: 1, Owner: "s1"}
	e.putRange(parent)
	waitTaken(t, s, tenant, 1, 1)
	f := openFeeder(t, s.GRPCAddr())
	f.send(tenant, 1, 1, 1, 1, file1()...)
	f.send(tenant, 1, 2, 1, 1, file2()...)
	f.send(tenant, 1, 3, 1, 1, prewrite(5, "v5", 140), resolvedAt(139))
	e.waitPublished(tenant, 1, 139)

	c2 := &metav1.RangeTask{RangeId: 2, StartKey: tStart, EndKey: key(3), State: metav1.RangeTask_STATE_ACTIVE, ParentRangeIds: []uint64{1}}
	c3 := &metav1.RangeTask{RangeId: 3, StartKey: key(3), EndKey: tEnd, State: metav1.RangeTask_STATE_ACTIVE, ParentRangeIds: []uint64{1}}
	e.putRange(c2)
	e.putRange(c3)
	parent.State, parent.SuccessorRangeIds = metav1.RangeTask_STATE_SEALING, []uint64{2, 3}
	e.putRange(parent)
	head := e.waitSealed(1)
	require.Equal(t, []uint64{2, 3}, head.SuccessorRangeIds)
	w := head.Watermark
	require.Equal(t, uint64(139), w)
	f.send(tenant, 1, 4, 1, 1, resolvedAt(150))
	f.waitNotOwner(tenant, 1, 1, 4) // sealed: the dispatcher re-routes

	parent.State = metav1.RangeTask_STATE_RETIRED
	e.putRange(parent)
	for _, c := range []*metav1.RangeTask{c2, c3} {
		c.OpenedAtTs, c.Owner, c.Epoch = w, "s1", 1
		e.putRange(c)
	}
	waitTaken(t, s, tenant, 2, 1)
	waitTaken(t, s, tenant, 3, 1)
	require.Eventually(t, func() bool { return s.lookup(rangeKey{tenant, 1}) == nil }, waitFor, pollEvery)

	// The dispatcher resends from its checkpoint (file 2, durable in the
	// parent) with the new table: file 3 to range 3, file 4 to both.
	f2 := openFeeder(t, s.GRPCAddr())
	f2.sendBatches(1, 3, batch(3, 1, prewrite(5, "v5", 140), resolvedAt(139)), batch(2, 1, resolvedAt(139)))
	f2.sendBatches(1, 4, batch(2, 1, resolvedAt(150)), batch(3, 1, commit(5, 140, 145), resolvedAt(150)))
	require.Empty(t, e.waitPublished(tenant, 2, 150))
	require.Equal(t, []string{"5@145 OP_PUT=v5"}, e.waitPublished(tenant, 3, 150))
	rows, _ := e.published(tenant, 1)
	require.Equal(t, rows12, rows)
	f2.waitDurable(tenant, 2, 1, 4)
	f2.waitDurable(tenant, 3, 1, 4)
	require.Empty(t, f2.refusals())
}

// Two adjacent SEALING ranges with one successor are merged into it by the
// sorter holding both.
func TestMerge(t *testing.T) {
	e := newEnv(t)
	s := e.startSorter("s1")
	tStart, tEnd := tidbcodec.TablePrefix(testTable), tidbcodec.TablePrefix(testTable+1)
	a := &metav1.RangeTask{RangeId: 1, StartKey: tStart, EndKey: key(3), OpenedAtTs: 50, State: metav1.RangeTask_STATE_ACTIVE, Epoch: 1, Owner: "s1"}
	b := &metav1.RangeTask{RangeId: 2, StartKey: key(3), EndKey: tEnd, OpenedAtTs: 50, State: metav1.RangeTask_STATE_ACTIVE, Epoch: 2, Owner: "s1"}
	e.putRange(a)
	e.putRange(b)
	waitTaken(t, s, tenant, 1, 1)
	waitTaken(t, s, tenant, 2, 2)
	f := openFeeder(t, s.GRPCAddr())
	f.sendBatches(1, 1, batch(1, 1, regionStart(), prewrite(1, "v1", 100), resolvedAt(99)),
		batch(2, 2, regionStart(), prewrite(4, "v4", 100), resolvedAt(99)))
	f.sendBatches(1, 2, batch(1, 1, commit(1, 100, 110), resolvedAt(130)),
		batch(2, 2, commit(4, 100, 110), prewrite(5, "v5", 120), resolvedAt(119)))
	require.Equal(t, []string{"1@110 OP_PUT=v1"}, e.waitPublished(tenant, 1, 130))
	require.Equal(t, []string{"4@110 OP_PUT=v4"}, e.waitPublished(tenant, 2, 119))

	c := &metav1.RangeTask{RangeId: 3, StartKey: tStart, EndKey: tEnd, State: metav1.RangeTask_STATE_ACTIVE, ParentRangeIds: []uint64{1, 2}}
	e.putRange(c)
	a.State, a.SuccessorRangeIds = metav1.RangeTask_STATE_SEALING, []uint64{3}
	b.State, b.SuccessorRangeIds = metav1.RangeTask_STATE_SEALING, []uint64{3}
	e.putRange(a)
	e.putRange(b)
	// Range 1 published 130 already: range 2 must get there first.
	require.Never(t, func() bool {
		h, _, err := pool.FindHead(context.Background(), e.pool, tenant, 1)
		return err == nil && h.Kind == formatv1.RangeLogEntry_KIND_SEAL
	}, 300*time.Millisecond, pollEvery)
	f.sendBatches(1, 3, batch(2, 2, commit(5, 120, 125), resolvedAt(135)))
	w := e.waitSealed(2).Watermark
	require.Equal(t, w, e.waitSealed(1).Watermark)
	require.Equal(t, uint64(130), w, "the parents align at the lower target")
	rows, _ := e.published(tenant, 2)
	require.Equal(t, []string{"4@110 OP_PUT=v4", "5@125 OP_PUT=v5"}, rows)

	a.State, b.State = metav1.RangeTask_STATE_RETIRED, metav1.RangeTask_STATE_RETIRED
	e.putRange(a)
	e.putRange(b)
	c.OpenedAtTs, c.Owner, c.Epoch = w, "s1", 2
	e.putRange(c)
	waitTaken(t, s, tenant, 3, 2)

	f2 := openFeeder(t, s.GRPCAddr())
	f2.send(tenant, 1, 4, 3, 2, committed(6, "v6", 140, 145), resolvedAt(150))
	require.Equal(t, []string{"6@145 OP_PUT=v6"}, e.waitPublished(tenant, 3, 150))
	rows, _ = e.published(tenant, 1)
	require.Equal(t, []string{"1@110 OP_PUT=v1"}, rows)
	f2.waitDurable(tenant, 3, 1, 4)
	require.Empty(t, f2.refusals())
}
