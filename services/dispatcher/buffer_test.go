package dispatcher

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/tenantcfg"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Each tenant's streams read its own data change buffer: tenant 1's
// buffer_url names a directory of its own, where every file is dispatched
// from and deleted behind the checkpoint, and the service's --buffer is
// never touched; tenant 2's buffer_url cannot be opened, so its stream is
// blocked (buffer_unavailable) and tenant 1 does not notice.
func TestEachTenantReadsItsOwnBuffer(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	ownURL := "file://" + t.TempDir()
	own, err := objstore.Open(ctx, ownURL)
	require.NoError(t, err)
	v.buffer = own // feed and bufferSeqs use tenant 1's own buffer
	def, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	const broken = 2
	badURL := "s3://no-bucket/p?endpoint=http://127.0.0.1:1&max_attempts=1"
	w := tenantcfg.Static(tenantcfg.Defaults{},
		&metav1.TenantInfo{TenantId: testTenant, ClusterId: testCluster, Settings: &metav1.TenantSettings{BufferUrl: proto.String(ownURL)}},
		&metav1.TenantInfo{TenantId: broken, ClusterId: testCluster, Settings: &metav1.TenantSettings{BufferUrl: proto.String(badURL)}})
	v.deps = func(d *Deps) { d.Buffer, d.Tenants = def, w }

	// Tenant 2: one range, one store stream, on the same dispatcher.
	v.put(etcdx.RangeKey(broken, 1), &metav1.RangeTask{TenantId: broken, RangeId: 1, State: metav1.RangeTask_STATE_ACTIVE, Epoch: 1, Owner: "s1"})
	v.put(etcdx.StreamKey(broken, 1), &metav1.StreamTask{ClusterId: testCluster, TenantId: broken, StoreId: 1, Epoch: 1, Owner: "d1"})

	exp := expectedBatches(t, v.src, 1)
	seqs := seqsOf(t, v, 1)
	last := seqs[len(seqs)-1]
	v.feed(1, 1, last)
	v.assign(1, "d1", 1)
	_, reg := v.dispatcher("d1", nil)

	eventually(t, func() bool { return v.checkpointSeq(1) == last }, "tenant 1's checkpoint reaches %d", last)
	eventually(t, func() bool { return slices.Equal(v.bufferSeqs(1), v.kept(1, last)) }, "tenant 1's own buffer emptied behind the checkpoint")
	for i, f := range v.sorters {
		rangeID := uint64(i + 1)
		require.Equal(t, fedSeqs(exp, rangeID, 0, last), f.appliedOrder(rangeID, 1), "range %d", rangeID)
	}
	objs, err := objstore.ListAll(ctx, def, "", "")
	require.NoError(t, err)
	require.Empty(t, objs, "the service's --buffer is not tenant 1's")

	blocked := map[string]string{"tenant": "2", "store": "1", "reason": blockBuffer}
	eventually(t, func() bool { return metric(t, reg, "tistream_dispatcher_stream_blocked", blocked) == 1 },
		"tenant 2's stream is blocked: its buffer cannot be opened")
	require.Positive(t, metric(t, reg, "tistream_dispatcher_stream_restarts_total", map[string]string{"tenant": "2", "reason": reasonBuffer}))
	require.Zero(t, metric(t, reg, "tistream_dispatcher_stream_restarts_total", map[string]string{"tenant": "1"}))
}
