package sorter

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/etcdx"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// A lost lease drops every range at once; the sorter registers again and,
// still the task's owner, takes the range back from its snapshot.
func TestLeaseLoss(t *testing.T) {
	e := newEnv(t)
	s, f := e.sorterFeedingRange1(nil)
	f.send(tenant, 1, 1, 1, 1, file1()...)
	f.send(tenant, 1, 2, 1, 1, file2()...)
	f.waitDurable(tenant, 1, 1, 2)
	require.Equal(t, rows12, e.waitPublished(tenant, 1, 130))

	old := s.worker.Get()
	require.NotNil(t, old)
	h := s.lookup(rangeKey{tenant, 1})
	_, err := e.cli.Revoke(context.Background(), old.Session.Lease())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r := s.worker.Get()
		return r != nil && r != old
	}, waitFor, pollEvery, "not registered again")
	waitTaken(t, s, tenant, 1, 1)
	require.NotSame(t, h, s.lookup(rangeKey{tenant, 1}), "the range was dropped and taken again")
	resp, err := e.cli.Get(context.Background(), etcdx.WorkerKey(metav1.WorkerKind_WORKER_KIND_SORTER, "s1"))
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Equal(t, int64(s.worker.Get().Session.Lease()), resp.Kvs[0].Lease)

	// It continues: a redelivery is skipped, new files are applied.
	f2 := openFeeder(t, s.GRPCAddr())
	f2.send(tenant, 1, 2, 1, 1, file2()...)
	f2.send(tenant, 1, 3, 1, 1, committed(4, "v4", 131, 135), resolvedAt(140))
	require.Equal(t, append(rows12, "4@135 OP_PUT=v4"), e.waitPublished(tenant, 1, 140))
	f2.waitDurable(tenant, 1, 1, 3)
}
