package grpcx

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// member is a fake member of a service with one leader: Check is its one
// unary call; answer decides what it says.
type member struct {
	healthpb.UnimplementedHealthServer
	addr   string
	calls  atomic.Int64
	answer atomic.Pointer[func(ctx context.Context) error]
}

func startMember(t *testing.T) *member {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	m := &member{addr: lis.Addr().String()}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, m)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return m
}

func (m *member) set(f func(ctx context.Context) error) { m.answer.Store(&f) }

func (m *member) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	m.calls.Add(1)
	if err := (*m.answer.Load())(ctx); err != nil {
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func TestRedirectDetail(t *testing.T) {
	err := NotLeaderError("not the leader", "10.0.0.1:7100")
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Equal(t, "10.0.0.1:7100", RedirectedTo(err))
	require.Empty(t, RedirectedTo(NotLeaderError("no leader", "")))
	require.Empty(t, RedirectedTo(status.Error(codes.Unavailable, "x")))
	require.Empty(t, RedirectedTo(nil))
}

// A LeaderConn dialled at a standby follows a redirect at once, switches
// to the leader named in a forwarded answer's trailer for later calls,
// goes back to the address dialled when the leader's connection fails,
// and follows at most maxRedirects redirects (no loop between members).
func TestLeaderConn(t *testing.T) {
	standby, leader, other := startMember(t), startMember(t), startMember(t)
	serve := func(context.Context) error { return nil }
	leader.set(serve)
	other.set(serve)
	standby.set(func(context.Context) error { return NotLeaderError("not the leader", leader.addr) })

	lc, err := DialLeader(standby.addr, nil)
	require.NoError(t, err)
	defer lc.Close()
	c := healthpb.NewHealthClient(lc)
	ctx := context.Background()
	_, err = c.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "the redirect is followed")
	require.Equal(t, int64(1), standby.calls.Load())
	require.Equal(t, int64(1), leader.calls.Load())
	require.Equal(t, leader.addr, lc.Leader())
	_, err = c.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, int64(1), standby.calls.Load(), "later calls go to the leader")

	// The leader moves to other; the old leader redirects there.
	leader.set(func(context.Context) error { return NotLeaderError("not the leader", other.addr) })
	_, err = c.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, int64(1), other.calls.Load())
	require.Equal(t, other.addr, lc.Leader())

	// other fails without a redirect: the conn drops it, the call fails,
	// the next goes to the address dialled, which now forwards and says
	// where the leader is in the trailer.
	other.set(func(context.Context) error { return status.Error(codes.Unavailable, "down") })
	_, err = c.Check(ctx, &healthpb.HealthCheckRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Empty(t, lc.Leader())
	standby.set(func(ctx context.Context) error { SetLeaderTrailer(ctx, leader.addr); return nil })
	leader.set(serve)
	before := standby.calls.Load()
	_, err = c.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, before+1, standby.calls.Load())
	require.Eventually(t, func() bool { return lc.Leader() == leader.addr }, 5*time.Second, 10*time.Millisecond)
	leaderBefore := leader.calls.Load()
	_, err = c.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, leaderBefore+1, leader.calls.Load(), "switched to the leader once its connection was up")

	// Members redirecting to each other: the call ends after maxRedirects.
	leader.set(func(context.Context) error { return NotLeaderError("not the leader", other.addr) })
	other.set(func(context.Context) error { return NotLeaderError("not the leader", leader.addr) })
	l0, o0 := leader.calls.Load(), other.calls.Load()
	_, err = c.Check(ctx, &healthpb.HealthCheckRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.NotEmpty(t, RedirectedTo(err))
	require.Equal(t, int64(maxRedirects+1), leader.calls.Load()-l0+other.calls.Load()-o0)
}
