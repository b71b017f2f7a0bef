package metaserver

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tistream/tistream/libs/auth"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/tidbcodec"
	"github.com/tistream/tistream/libs/tlsx"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// forwardedCount is a member's tistream_meta_forwarded_total{method,result}.
func forwardedCount(s *Service, method, result string) int {
	return int(testutil.ToFloat64(s.m.forwarded.WithLabelValues(method, result)))
}

// Every MetaService RPC sent to a standby is served by the leader: the
// effects are the leader's (read back from etcd), the answer carries the
// leader's address in the trailer, and the standby counts each forward.
func TestStandbyForwardsEveryRPC(t *testing.T) {
	env := newEnv(t)
	a, _ := env.leader()
	b, c := env.startMeta(), env.startMeta()
	cb, cc := env.client(b), env.client(c)
	env.sorter("s1")
	ctx := context.Background()
	var tr metadata.MD
	leaderIs := func() {
		t.Helper()
		require.Equal(t, []string{a.GRPCAddr()}, tr.Get(grpcx.LeaderTrailer))
		tr = nil
	}

	env.writeSnapshot(1, tso(1000), 101, 102, 103, 104)
	reg, err := cb.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 1, InitialRanges: 2}, grpc.Trailer(&tr))
	require.NoError(t, err)
	require.True(t, reg.Created)
	leaderIs()
	require.Len(t, env.ranges(1), 2)
	require.Eventually(t, func() bool { return allOwned(env.ranges(1), "s1") }, waitFor, pollEvery)

	tenants, err := cc.ListTenants(ctx, &metav1.ListTenantsRequest{}, grpc.Trailer(&tr))
	require.NoError(t, err)
	leaderIs()
	require.Len(t, tenants.Tenants, 1)
	require.Equal(t, uint64(1), tenants.Tenants[0].TenantId)

	tasks, err := cb.ListTasks(ctx, &metav1.ListTasksRequest{TenantId: 1}, grpc.Trailer(&tr))
	require.NoError(t, err)
	leaderIs()
	require.Len(t, tasks.Ranges, 2)
	for _, r := range tasks.Ranges {
		require.Equal(t, "s1", r.Task.Owner)
	}

	env.storeFile(1, 5, 1)
	_, err = cc.NotifyStoreFile(ctx, &metav1.NotifyStoreFileRequest{ClusterId: testCluster, TenantId: 1, StoreId: 5, Seq: 1, MaxTs: tso(1)},
		grpc.Trailer(&tr))
	require.NoError(t, err)
	leaderIs()
	require.Eventually(t, func() bool { st := env.streams(1)[5]; return st != nil && st.LatestSeq == 1 }, waitFor, pollEvery)

	merged, err := cb.MergeRanges(ctx, &metav1.MergeRangesRequest{TenantId: 1, LeftRangeId: 1, RightRangeId: 2}, grpc.Trailer(&tr))
	require.NoError(t, err)
	leaderIs()
	ranges := env.ranges(1)
	require.Equal(t, []uint64{merged.NewRangeId}, ranges[1].SuccessorRangeIds)
	require.Equal(t, []uint64{1, 2}, ranges[merged.NewRangeId].ParentRangeIds)

	env.writeSnapshot(2, tso(1000), 201, 202)
	_, err = cc.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 2, InitialRanges: 1})
	require.NoError(t, err)
	split, err := cc.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 2, RangeId: 1, SplitKey: tidbcodec.TablePrefix(202)}, grpc.Trailer(&tr))
	require.NoError(t, err)
	leaderIs()
	require.Equal(t, []uint64{2, 3}, split.NewRangeIds)
	require.Equal(t, metav1.RangeTask_STATE_SEALING, env.ranges(2)[1].State)

	// A refusal by the leader is passed on as it is.
	_, err = cb.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 2, RangeId: 99, SplitKey: []byte("t")})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)

	for _, m := range []string{"RegisterTenant", "ListTasks", "MergeRanges", "SplitRange"} {
		require.Positive(t, forwardedCount(b, m, fwdAnswered), m)
	}
	for _, m := range []string{"RegisterTenant", "ListTenants", "NotifyStoreFile", "SplitRange"} {
		require.Positive(t, forwardedCount(c, m, fwdAnswered), m)
	}
	require.Zero(t, forwardedCount(a, "ListTasks", fwdAnswered), "the leader serves, it does not forward")
}

// retryUnavailable makes one call, retrying UNAVAILABLE (an election under
// way) for up to 5 s; it returns the error and how many attempts failed.
func retryUnavailable(call func(context.Context) error) (int, error) {
	deadline := time.Now().Add(5 * time.Second)
	for failed := 0; ; failed++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := call(ctx)
		cancel()
		if err == nil || status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			return failed, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Calls through the standbys keep being served while the leader changes
// twice: a graceful stop (resign) and a lost session (the lease revoked,
// as for a killed or paused process). A call may meet UNAVAILABLE while
// the election is under way, never another error, and is served within
// seconds; a LeaderConn dialled at a standby goes straight to the leader
// and follows it.
func TestForwardAcrossLeaderChange(t *testing.T) {
	env := newEnv(t)
	a, ca := env.leader()
	b, c := env.startMeta(), env.startMeta()
	env.sorter("s1")
	env.register(ca, 1, 2, 101, 102)
	lc, err := grpcx.DialLeader(c.GRPCAddr(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lc.Close() })
	viaC := metav1.NewMetaServiceClient(lc)
	viaB := env.client(b)

	calls, transient := 0, 0
	call := func(client metav1.MetaServiceClient, seq uint64) {
		t.Helper()
		env.storeFile(1, 7, seq)
		failed, err := retryUnavailable(func(ctx context.Context) error {
			if _, err := client.ListTasks(ctx, &metav1.ListTasksRequest{TenantId: 1}); err != nil {
				return err
			}
			_, err := client.NotifyStoreFile(ctx, &metav1.NotifyStoreFileRequest{ClusterId: testCluster, TenantId: 1, StoreId: 7, Seq: seq, MaxTs: tso(seq)})
			return err
		})
		require.NoError(t, err, "call %d", seq)
		calls++
		transient += failed
	}
	seq := uint64(0)
	round := func(n int) {
		for range n {
			seq++
			call(viaB, seq)
			seq++
			call(viaC, seq)
		}
	}
	round(5)
	// The LeaderConn learnt the leader from the trailer and goes there.
	require.Eventually(t, func() bool { round(1); return lc.Leader() == a.GRPCAddr() }, waitFor, pollEvery)
	before := forwardedCount(c, "ListTasks", fwdAnswered)
	round(3)
	require.Equal(t, before, forwardedCount(c, "ListTasks", fwdAnswered), "the LeaderConn calls the leader itself")

	// Leader change 1: the leader stops (resigns).
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- a.Stop(ctx)
	}()
	round(10)
	require.NoError(t, <-stopped)
	require.Eventually(t, func() bool { return b.IsLeader() || c.IsLeader() }, waitFor, pollEvery)
	round(5)
	next, standby := b, c
	if c.IsLeader() {
		next, standby = c, b
	}
	// The LeaderConn follows: to b, or to its own address if c leads.
	want := next.GRPCAddr()
	if next == c {
		want = ""
	}
	require.Eventually(t, func() bool { round(1); return lc.Leader() == want }, waitFor, pollEvery)

	// Leader change 2: the new leader's session ends; the last standby
	// takes over and the deposed leader forwards to it.
	old := next.cur.Load()
	require.NotNil(t, old)
	lease, err := strconv.ParseInt(old.key[strings.LastIndex(old.key, "/")+1:], 16, 64)
	require.NoError(t, err)
	_, err = env.cli.Revoke(context.Background(), clientv3.LeaseID(lease))
	require.NoError(t, err)
	round(10)
	// Until the deposed leader sees its session end it still answers as
	// the leader (etcd's election gives no better), and its writes fail:
	// notifications it took then are lost, which is why they are best
	// effort. Wait for that to pass before the last calls.
	require.Eventually(t, func() bool { return standby.IsLeader() && !next.IsLeader() }, waitFor, pollEvery)
	round(5)

	// Every notification reached the leader of its time: the stream task
	// records the last one.
	require.Eventually(t, func() bool { st := env.streams(1)[7]; return st != nil && st.LatestSeq == seq }, waitFor, pollEvery)
	t.Logf("%d calls through standbys across two leader changes; %d attempts met UNAVAILABLE during the elections", calls, transient)
	require.Less(t, transient, calls, "most calls are served at the first attempt")
}

// freeAddr is a 127.0.0.1 address no one listens on (for a server to
// take next).
func freeAddr(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

// A forwarding loop ends at the hop limit with the redirect. The loop is
// made on purpose: the election names the member at 127.0.0.1:P while it
// advertises itself as localhost:P, so it believes someone else leads and
// forwards every call to itself.
func TestForwardHopLimit(t *testing.T) {
	env := newEnv(t)
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	// A candidate key created first leads the election for good (no lease
	// ends it): no member is elected.
	_, err := env.cli.Put(context.Background(), etcdx.ElectionPrefix+"/fake", addr)
	require.NoError(t, err)
	s := env.startMeta(func(c *Config) { c.GRPCAddr, c.AdvertiseAddr = addr, "localhost:"+port })
	other := env.startMeta()
	require.Eventually(t, func() bool { return s.state.ready() && other.state.ready() }, waitFor, pollEvery)

	_, err = env.client(other).ListTenants(context.Background(), &metav1.ListTenantsRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Equal(t, addr, grpcx.RedirectedTo(err), "the redirect names the elected leader: %v", err)
	require.ErrorContains(t, err, "forwarded 2 times")
	require.Equal(t, 1, forwardedCount(other, "ListTenants", fwdAnswered), "other forwarded once, to s")
	require.Equal(t, 1, forwardedCount(s, "ListTenants", fwdAnswered), "s forwarded to itself once")
	require.Equal(t, 1, forwardedCount(s, "ListTenants", fwdHopLimit), "then refused")

	// A client may ask for the redirect instead of a forward.
	ctx := metadata.AppendToOutgoingContext(context.Background(), hopsKey, strconv.Itoa(maxHops))
	_, err = env.client(other).ListTenants(ctx, &metav1.ListTenantsRequest{})
	require.Equal(t, addr, grpcx.RedirectedTo(err))
	require.Equal(t, 1, forwardedCount(other, "ListTenants", fwdHopLimit))
	ctx = metadata.AppendToOutgoingContext(context.Background(), hopsKey, "many")
	_, err = env.client(other).ListTenants(ctx, &metav1.ListTenantsRequest{})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

// tlsFleet is a CA and credential files for identities, on 127.0.0.1.
type tlsFleet struct {
	t   *testing.T
	dir string
	ca  *tlsx.CA
}

func newTLSFleet(t *testing.T) *tlsFleet {
	ca, err := tlsx.NewCA("test", time.Hour)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, tlsx.WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM, 0o644))
	return &tlsFleet{t: t, dir: dir, ca: ca}
}

func (f *tlsFleet) files(identity string) tlsx.Files {
	leaf, err := f.ca.Issue(identity, []string{"127.0.0.1", "localhost"}, time.Hour)
	require.NoError(f.t, err)
	d := filepath.Join(f.dir, strings.ReplaceAll(identity, "/", "_"))
	require.NoError(f.t, os.MkdirAll(d, 0o755))
	files, err := tlsx.WriteLeaf(d, "id", leaf, filepath.Join(f.dir, "ca.pem"))
	require.NoError(f.t, err)
	return files
}

func (f *tlsFleet) creds(identity string) grpccreds.TransportCredentials {
	src, err := tlsx.NewSource(f.files(identity), nil)
	require.NoError(f.t, err)
	return grpccreds.NewTLS(tlsx.ClientConfig(src))
}

func (f *tlsFleet) client(s *Service, identity string) metav1.MetaServiceClient {
	conn, err := grpcx.Dial(s.GRPCAddr(), f.creds(identity))
	require.NoError(f.t, err)
	f.t.Cleanup(func() { _ = conn.Close() })
	return metav1.NewMetaServiceClient(conn)
}

// Through a standby, with TLS and authorization on: the standby refuses
// whom the policy refuses (never forwarded), forwards the rest with its own
// certificate and the caller's identity, and the leader authorizes that
// identity: an upstream of tenant 1 registers tenant 1 but not tenant 2,
// a reader lists nothing, an admin everything; a forged forwarded
// identity is refused at the standby and at the leader.
func TestForwardAuthorization(t *testing.T) {
	env := newEnv(t)
	f := newTLSFleet(t)
	secure := func(c *Config) { c.Security.Insecure, c.Security.TLS = false, f.files("meta-server/m") }
	a, _ := env.leader(secure)
	b := env.startMeta(secure)
	require.Eventually(t, func() bool { return b.state.ready() }, waitFor, pollEvery)
	ctx := context.Background()
	env.writeSnapshot(1, tso(1000), 101)
	env.writeSnapshot(2, tso(1000), 201)

	up := f.client(b, "upstream/1/tikv")
	_, err := up.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 1, InitialRanges: 1})
	require.NoError(t, err)
	_, err = up.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: 2, InitialRanges: 1})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	_, err = up.ListTenants(ctx, &metav1.ListTenantsRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	_, err = f.client(b, "reader/1/alice").ListTasks(ctx, &metav1.ListTasksRequest{TenantId: 1})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	_, err = f.client(b, "dispatcher/d1").ListTasks(ctx, &metav1.ListTasksRequest{TenantId: 1})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	resp, err := f.client(b, "admin/ops").ListTenants(ctx, &metav1.ListTenantsRequest{})
	require.NoError(t, err)
	require.Len(t, resp.Tenants, 1, "tenant 2 was never registered")
	require.Equal(t, 2, forwardedCount(b, "RegisterTenant", fwdAnswered)+forwardedCount(b, "ListTenants", fwdAnswered),
		"only the authorized calls were forwarded")

	// A forged forwarded identity: an upstream claiming to be an admin.
	admin, err := auth.EncodeForwarded(auth.Identity{Role: auth.RoleAdmin, Name: "mallory", AllTenants: true, Via: "cert"})
	require.NoError(t, err)
	forged := metadata.AppendToOutgoingContext(ctx, auth.ForwardedIdentityKey, string(admin))
	_, err = up.ListTenants(forged, &metav1.ListTenantsRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)

	// The leader authorizes the forwarded identity, not the meta-server's
	// certificate: a meta-server forwarding a reader is refused, and a
	// meta-server calling on its own behalf too.
	reader, err := auth.EncodeForwarded(auth.Identity{Role: auth.RoleReader, Name: "alice", Tenants: []uint64{1}, Via: "cert"})
	require.NoError(t, err)
	asMeta := f.client(a, "meta-server/m")
	_, err = asMeta.ListTasks(metadata.AppendToOutgoingContext(ctx, auth.ForwardedIdentityKey, string(reader)), &metav1.ListTasksRequest{TenantId: 1})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	_, err = asMeta.ListTasks(ctx, &metav1.ListTasksRequest{TenantId: 1})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	tasks, err := asMeta.ListTasks(metadata.AppendToOutgoingContext(ctx, auth.ForwardedIdentityKey, string(admin)), &metav1.ListTasksRequest{TenantId: 1})
	require.NoError(t, err, "a meta-server's certificate may forward an admin")
	require.Len(t, tasks.Ranges, 1)
}
