package metaserver

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/grpcx"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// A stopped leader resigns; the standby takes over with the assignments
// as they were, and the old leader's term can no longer write.
func TestFailoverOnStop(t *testing.T) {
	env := newEnv(t)
	a, ca := env.leader()
	b := env.startMeta()
	cb := env.client(b)
	env.sorter("s1")
	env.register(ca, 1, 3, 101, 102, 103, 104)
	require.Eventually(t, func() bool { return allOwned(env.ranges(1), "s1") }, waitFor, pollEvery)
	before := env.owners(1)

	// The standby serves by forwarding; asked not to forward, it names
	// the leader in the redirect.
	var tr metadata.MD
	_, err := cb.ListTenants(context.Background(), &metav1.ListTenantsRequest{}, grpc.Trailer(&tr))
	require.NoError(t, err)
	require.Equal(t, []string{a.GRPCAddr()}, tr.Get(grpcx.LeaderTrailer))
	noForward := metadata.AppendToOutgoingContext(context.Background(), hopsKey, strconv.Itoa(maxHops))
	_, err = cb.ListTenants(noForward, &metav1.ListTenantsRequest{})
	requireCode(t, err, codes.Unavailable, "the leader is at "+a.GRPCAddr())
	require.Equal(t, a.GRPCAddr(), grpcx.RedirectedTo(err))

	old := a.cur.Load()
	require.NotNil(t, old)
	stopMeta(t, a)
	require.Eventually(t, b.IsLeader, waitFor, pollEvery)

	// The new leader schedules (tenant 2's ranges get an owner) and leaves
	// tenant 1's assignments alone.
	env.register(cb, 2, 2, 201, 202)
	require.Eventually(t, func() bool { return allOwned(env.ranges(2), "s1") }, waitFor, pollEvery)
	require.Equal(t, before, env.owners(1))

	requireDeposed(t, a, old)
}

// A leader whose session ends (lease expired: paused or partitioned) is
// replaced; the deposed one cannot write, becomes a standby and forwards
// its clients' calls to the new leader.
func TestFailoverOnLostSession(t *testing.T) {
	env := newEnv(t)
	a, ca := env.leader()
	b := env.startMeta()
	env.sorter("s1")
	env.register(ca, 1, 2, 101, 102)
	require.Eventually(t, func() bool { return allOwned(env.ranges(1), "s1") }, waitFor, pollEvery)

	old := a.cur.Load()
	lease, err := strconv.ParseInt(old.key[strings.LastIndex(old.key, "/")+1:], 16, 64)
	require.NoError(t, err)
	_, err = env.cli.Revoke(context.Background(), clientv3.LeaseID(lease))
	require.NoError(t, err)

	require.Eventually(t, b.IsLeader, waitFor, pollEvery)
	require.Eventually(t, func() bool { return !a.IsLeader() }, waitFor, pollEvery)
	requireDeposed(t, a, old)
	require.Eventually(t, func() bool {
		var tr metadata.MD
		_, err := ca.ListTenants(context.Background(), &metav1.ListTenantsRequest{}, grpc.Trailer(&tr))
		return err == nil && slices.Equal(tr.Get(grpcx.LeaderTrailer), []string{b.GRPCAddr()})
	}, waitFor, pollEvery)
	resp, err := env.client(b).ListTenants(context.Background(), &metav1.ListTenantsRequest{})
	require.NoError(t, err)
	require.Len(t, resp.Tenants, 1)
}

// requireDeposed checks that a write guarded by an ended term fails and
// changes nothing.
func requireDeposed(t *testing.T, s *Service, old *term) {
	t.Helper()
	key := etcdx.TenantKey(999)
	ok, _, err := s.commit(context.Background(), old, nil, clientv3.OpPut(key, "deposed"))
	require.ErrorIs(t, err, errNotLeader)
	require.False(t, ok)
	resp, err := s.etcd.Get(context.Background(), key)
	require.NoError(t, err)
	require.Empty(t, resp.Kvs)
}

func allOwned(ranges map[uint64]*metav1.RangeTask, owner string) bool {
	if len(ranges) == 0 {
		return false
	}
	for _, r := range ranges {
		if r.Owner != owner {
			return false
		}
	}
	return true
}
