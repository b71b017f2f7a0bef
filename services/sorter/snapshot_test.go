package sorter

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// An idle range (its files carry only resolved ts) writes a snapshot once
// a store has fed it --snapshot-max-skip-files files since its last one,
// not every snapshot interval, and its Durable acks follow the snapshots
// written; when its files stop, the next tick acknowledges everything; a
// change of content is written at the next tick. The ticks are driven by
// the test (the interval is an hour), so the counts are exact.
func TestIdleRangeSnapshots(t *testing.T) {
	const bound = 8
	e := newEnv(t)
	s := e.startSorterWith("s1", func(c *Config) {
		c.SnapshotInterval = time.Hour
		c.SnapshotMaxSkipFiles = bound
	})
	e.putTask(tenant, 1, "s1", 1)
	waitTaken(t, s, tenant, 1, 1)
	h := s.lookup(rangeKey{tenant, 1})
	f := openFeeder(t, s.GRPCAddr())

	seq := uint64(0)
	feed := func(events ...*sorterv1.Event) {
		t.Helper()
		seq++
		f.send(tenant, 1, seq, 1, 1, events...)
		require.Eventually(t, func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.r != nil && h.r.Applied()[1] == seq
		}, waitFor, pollEvery, "file %d not applied", seq)
	}
	// snapshots counts the snapshots written; the store keeps the newest two.
	snapshots := func() int {
		t.Helper()
		objs, err := objstore.ListAll(context.Background(), e.pool, layout.SorterSnapshotPrefix(tenant, 1), "")
		require.NoError(t, err)
		n := int(testutil.ToFloat64(s.m.snapshots))
		require.Equal(t, min(n, 2), len(objs), "the newest two snapshots stay")
		require.Equal(t, float64(n-len(objs)), testutil.ToFloat64(s.m.snapDeleted.WithLabelValues("deleted")))
		return n
	}
	lastAck := func() uint64 {
		var top uint64
		for _, d := range f.acks() {
			top = max(top, d.Seq)
		}
		return top
	}

	feed(regionStart(), resolvedAt(100))
	h.snapshot()
	require.Equal(t, 1, snapshots(), "a new range writes its first snapshot")
	f.waitDurable(tenant, 1, 1, 1)

	// 29 idle files, a tick after each: snapshots at files 9, 17 and 25.
	for range 29 {
		feed(resolvedAt(100 + 10*(seq+1)))
		h.snapshot()
	}
	require.Equal(t, 4, snapshots())
	require.Equal(t, float64(26), testutil.ToFloat64(s.m.snapSkipped))
	f.waitDurable(tenant, 1, 1, 25)
	require.Equal(t, uint64(25), lastAck(), "acks come from written snapshots only")

	// The store goes quiet: the next tick writes and acknowledges the rest.
	h.snapshot()
	require.Equal(t, 5, snapshots())
	f.waitDurable(tenant, 1, 1, 30)
	h.snapshot()
	require.Equal(t, 5, snapshots(), "nothing applied since: nothing to write")

	// A change of content is written at the next tick, skip bound or not.
	feed(prewrite(1, "v1", 500))
	h.snapshot()
	require.Equal(t, 6, snapshots())
	feed(commit(1, 500, 510), resolvedAt(520))
	require.Equal(t, []string{"1@510 OP_PUT=v1"}, e.waitPublished(tenant, 1, 520))
	h.snapshot()
	require.Equal(t, 7, snapshots(), "published: the content changed back")
	f.waitDurable(tenant, 1, 1, 32)
}

// A snapshot written after a newer owner took the range (a move the old
// owner has not heard of yet, or a lease it lost without knowing) is not
// acknowledged: the new owner restored an older snapshot, and an ack would
// let the dispatchers move their checkpoints past files it never got.
func TestSnapshotAfterTakeoverNotAcknowledged(t *testing.T) {
	e := newEnv(t)
	// No publication during the test: the fence would be noticed there
	// first and the range dropped before its next snapshot.
	s, f := e.sorterFeedingRange1(func(c *Config) { c.FlushInterval = time.Hour })
	f.send(tenant, 1, 1, 1, 1, file1()...)
	f.send(tenant, 1, 2, 1, 1, file2()...)
	f.waitDurable(tenant, 1, 1, 2)

	// Another sorter takes the range at epoch 2 in the pool; etcd still
	// names s1, which goes on applying.
	g, err := pool.NewGroupWriter(e.pool, tenant, pool.GroupID("s2", 1), "s2", pool.GroupOptions{})
	require.NoError(t, err)
	defer g.Close()
	w, err := pool.OpenRange(context.Background(), g, tenant, 1, 2)
	require.NoError(t, err)
	defer w.Close()

	f.send(tenant, 1, 3, 1, 1, committed(4, "v4", 135, 140), resolvedAt(150))
	require.Eventually(t, func() bool { return testutil.ToFloat64(s.m.snapUnacked.WithLabelValues("taken")) > 0 },
		waitFor, pollEvery, "s1 never found its snapshot after the takeover unacknowledgeable")
	for _, d := range f.acks() {
		require.Less(t, d.Seq, uint64(3), "file 3 acknowledged durable by the old owner after the takeover")
	}
}
