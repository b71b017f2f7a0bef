package metaserver

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	"google.golang.org/grpc/codes"
)

// The first notification of a store creates its stream task; once a
// dispatcher owns it, notifications are forwarded to it, and the task's
// latest seq follows with coalesced writes.
func TestNotifyStoreFile(t *testing.T) {
	env := newEnv(t)
	_, c := env.leader()
	ctx := context.Background()
	env.register(c, 1, 1, 101)
	notify := func(seq uint64) {
		t.Helper()
		_, err := c.NotifyStoreFile(ctx, &metav1.NotifyStoreFileRequest{ClusterId: testCluster, TenantId: 1, StoreId: 5, Seq: seq, MaxTs: tso(seq)})
		require.NoError(t, err)
	}
	env.storeFile(1, 5, 1) // a new store's first notification must name a file it wrote

	notify(1)
	require.Eventually(t, func() bool { return env.streams(1)[5] != nil }, waitFor, pollEvery)
	st := env.streams(1)[5]
	require.Equal(t, uint64(testCluster), st.ClusterId)
	require.Equal(t, uint64(1), st.LatestSeq)
	require.Equal(t, tso(1), st.LatestMaxTs)
	require.Empty(t, st.Owner)

	d := startFakeDispatcher(t)
	env.worker(metav1.WorkerKind_WORKER_KIND_DISPATCHER, "d1", d.lis.Addr().String())
	require.Eventually(t, func() bool { st := env.streams(1)[5]; return st.Owner == "d1" && st.Epoch == 1 }, waitFor, pollEvery)
	// The leader forwards once its mirror shows the owner: notify until then.
	require.Eventually(t, func() bool { notify(2); return len(d.seqs()) > 0 }, waitFor, 50*time.Millisecond)

	resp, err := env.cli.Get(ctx, etcdx.StreamKey(1, 5))
	require.NoError(t, err)
	writesBefore := resp.Kvs[0].Version
	for seq := uint64(3); seq <= 40; seq++ {
		notify(seq)
	}
	require.Eventually(t, func() bool { return slices.Contains(d.seqs(), 40) }, waitFor, pollEvery)
	require.Eventually(t, func() bool { return env.streams(1)[5].LatestSeq == 40 }, waitFor, pollEvery)
	st = env.streams(1)[5]
	require.Equal(t, tso(40), st.LatestMaxTs)
	require.Equal(t, "d1", st.Owner, "position updates keep the assignment")
	resp, err = env.cli.Get(ctx, etcdx.StreamKey(1, 5))
	require.NoError(t, err)
	require.Less(t, resp.Kvs[0].Version-writesBefore, int64(38), "38 notifications are coalesced into fewer writes")

	// ListTasks reports the stream's owner and pending files.
	list, err := c.ListTasks(ctx, &metav1.ListTasksRequest{TenantId: 1})
	require.NoError(t, err)
	require.Len(t, list.Streams, 1)
	require.Equal(t, d.lis.Addr().String(), list.Streams[0].OwnerAddr)
	require.Equal(t, uint64(40), list.Streams[0].PendingFiles)
	_, err = env.cli.Put(ctx, etcdx.CheckpointKey(1, 5), etcdx.Marshal(&metav1.Checkpoint{Seq: 30, Epoch: 1}))
	require.NoError(t, err)
	list, err = c.ListTasks(ctx, &metav1.ListTasksRequest{TenantId: 1})
	require.NoError(t, err)
	require.Equal(t, uint64(10), list.Streams[0].PendingFiles)
	require.Equal(t, uint64(30), list.Streams[0].Checkpoint.Seq)
}

func TestNotifyStoreFileBadRequests(t *testing.T) {
	env := newEnv(t)
	s, c := env.leader()
	env.register(c, 1, 1, 101)
	before := env.dump()
	for _, tc := range []struct {
		req      *metav1.NotifyStoreFileRequest
		code     codes.Code
		contains string
	}{
		{&metav1.NotifyStoreFileRequest{ClusterId: testCluster, TenantId: 2, StoreId: 1, Seq: 1}, codes.NotFound, "tenant 2 is not registered"},
		{&metav1.NotifyStoreFileRequest{ClusterId: 9, TenantId: 1, StoreId: 1, Seq: 1}, codes.InvalidArgument, "cluster"},
		{&metav1.NotifyStoreFileRequest{ClusterId: testCluster, TenantId: 0, StoreId: 1, Seq: 1}, codes.InvalidArgument, "tenant_id"},
		{&metav1.NotifyStoreFileRequest{ClusterId: testCluster, TenantId: 1, StoreId: 0, Seq: 1}, codes.InvalidArgument, "store_id"},
		{&metav1.NotifyStoreFileRequest{ClusterId: testCluster, TenantId: 1, StoreId: 1, Seq: 0}, codes.InvalidArgument, "seq"},
		// No such file in the buffer: a made-up store gets no stream.
		{&metav1.NotifyStoreFileRequest{ClusterId: testCluster, TenantId: 1, StoreId: 1, Seq: 1, MaxTs: tso(1)}, codes.FailedPrecondition,
			"store 1 of tenant 1 has no stream yet and the data change buffer has no file seq 1"},
	} {
		_, err := c.NotifyStoreFile(context.Background(), tc.req)
		requireCode(t, err, tc.code, tc.contains)
	}
	// Nothing was queued for the next coalesced write either.
	require.Empty(t, s.notes.take())
	require.Equal(t, before, env.dump())
	for reason, n := range map[string]float64{reasonUnknownTenant: 1, reasonMalformed: 4, reasonNoSuchFile: 1} {
		require.Equal(t, n, testutil.ToFloat64(s.m.refused.WithLabelValues("NotifyStoreFile", reason)), reason)
	}
}

// storeFile puts a (content-free) store change file with max ts tso(seq)
// into the buffer: the meta-server only checks that it exists.
func (e *testEnv) storeFile(tenant, store, seq uint64) {
	e.t.Helper()
	require.NoError(e.t, e.buffer.Put(context.Background(), layout.StoreFileKey(testCluster, tenant, store, seq, tso(seq)), []byte("file")))
}
