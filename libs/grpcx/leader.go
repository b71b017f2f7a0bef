package grpcx

import (
	"context"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The leader redirect (docs/api.md, "Leader redirect"): a member of a
// service with one leader (the meta-server) that answers for the leader
// says where the leader is, so that a client can switch to it.
//
//   - A call the member could not serve fails with UNAVAILABLE carrying a
//     google.rpc.ErrorInfo detail: reason LeaderRedirectReason, domain
//     LeaderRedirectDomain, metadata {"leader": "<host:port>"}. Nothing was
//     done, so the call may be sent again to the leader.
//   - A call the member served by forwarding it to the leader carries the
//     leader's address in the trailer LeaderTrailer.
const (
	LeaderRedirectReason = "NOT_LEADER"
	LeaderRedirectDomain = "tistream"
	LeaderTrailer        = "tistream-leader"
	leaderKey            = "leader"
)

// NotLeaderError is UNAVAILABLE with msg and, when leader is known, the
// redirect detail naming it.
func NotLeaderError(msg, leader string) error {
	st := status.New(codes.Unavailable, msg)
	if leader == "" {
		return st.Err()
	}
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: LeaderRedirectReason, Domain: LeaderRedirectDomain,
		Metadata: map[string]string{leaderKey: leader}}); err == nil {
		st = d
	}
	return st.Err()
}

// RedirectedTo is the leader a NotLeaderError names ("" for any other error).
func RedirectedTo(err error) string {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return ""
	}
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.Reason == LeaderRedirectReason && ei.Domain == LeaderRedirectDomain {
			return ei.Metadata[leaderKey]
		}
	}
	return ""
}

// SetLeaderTrailer tells the client of a server call that the leader at
// addr served it.
func SetLeaderTrailer(ctx context.Context, addr string) {
	_ = grpc.SetTrailer(ctx, metadata.Pairs(LeaderTrailer, addr))
}

// maxRedirects bounds how many redirects one call follows.
const maxRedirects = 2

// LeaderConn is a connection to any member of a service with one leader
// that follows the leader: a call refused with a redirect is sent again
// to the leader it names (at most maxRedirects times), and after a call
// served by forwarding, later calls go straight to the leader once a
// connection to it is up. Until then, and whenever the leader's
// connection fails, calls go to the address dialled (behind a Service,
// any member: it forwards). Only unary calls are followed.
type LeaderConn struct {
	*grpc.ClientConn // the address dialled
	f                *follower
}

// DialLeader is Dial for a service with one leader (LeaderConn).
func DialLeader(addr string, creds credentials.TransportCredentials, extra ...grpc.DialOption) (*LeaderConn, error) {
	f := &follower{base: addr, dial: func(a string) (*grpc.ClientConn, error) { return Dial(a, creds, extra...) }}
	conn, err := Dial(addr, creds, append(extra, grpc.WithChainUnaryInterceptor(f.intercept))...)
	if err != nil {
		return nil, err
	}
	return &LeaderConn{ClientConn: conn, f: f}, nil
}

// Leader is the leader's address the connection currently uses ("" when
// it sends calls to the address dialled).
func (c *LeaderConn) Leader() string {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if c.f.conn != nil && c.f.conn.GetState() == connectivity.Ready {
		return c.f.addr
	}
	return ""
}

// Close closes both connections.
func (c *LeaderConn) Close() error {
	c.f.close()
	return c.ClientConn.Close()
}

// follower holds the connection to the leader.
type follower struct {
	base string
	dial func(string) (*grpc.ClientConn, error)

	mu     sync.Mutex
	addr   string           // the leader's address last heard of
	conn   *grpc.ClientConn // to addr
	closed bool
}

// leader is the connection to use for a call: the leader's when it is
// up, else nil (the address dialled).
func (f *follower) leader() *grpc.ClientConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil && f.conn.GetState() == connectivity.Ready {
		return f.conn
	}
	return nil
}

// to returns a connection to addr (dialled if it is not the one held),
// or nil for the address dialled.
func (f *follower) to(addr string) *grpc.ClientConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || addr == f.base {
		return nil
	}
	if f.addr == addr && f.conn != nil {
		return f.conn
	}
	if f.conn != nil {
		_ = f.conn.Close()
		f.conn, f.addr = nil, ""
	}
	conn, err := f.dial(addr)
	if err != nil {
		return nil
	}
	conn.Connect()
	f.addr, f.conn = addr, conn
	return conn
}

// forget drops the leader's connection if it is still conn.
func (f *follower) forget(conn *grpc.ClientConn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == conn && conn != nil {
		_ = conn.Close()
		f.conn, f.addr = nil, ""
	}
}

func (f *follower) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.conn != nil {
		_ = f.conn.Close()
		f.conn, f.addr = nil, ""
	}
}

// redirectWait bounds how long a redirected call waits for the
// connection to the leader before it is sent (gRPC fails fast on a
// connection that cannot be made).
const redirectWait = 5 * time.Second

func (f *follower) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	var trailer metadata.MD
	opts = append(opts[:len(opts):len(opts)], grpc.Trailer(&trailer))
	conn := f.leader()
	for redirects := 0; ; redirects++ {
		var err error
		if conn == nil {
			err = invoker(ctx, method, req, reply, cc, opts...)
		} else {
			err = conn.Invoke(ctx, method, req, reply, opts...)
		}
		if err == nil {
			if vals := trailer.Get(LeaderTrailer); len(vals) == 1 && conn == nil {
				f.to(vals[0]) // connects in the background; used once up
			}
			return nil
		}
		leader := RedirectedTo(err)
		if leader == "" {
			if conn != nil && status.Code(err) == codes.Unavailable {
				f.forget(conn) // the next call goes to the address dialled
			}
			return err
		}
		if redirects == maxRedirects || ctx.Err() != nil {
			return err
		}
		next := f.to(leader)
		if next == conn {
			return err // redirected to where it was sent: an election is under way
		}
		if next != nil {
			wctx, cancel := context.WithTimeout(ctx, redirectWait)
			for st := next.GetState(); st != connectivity.Ready && st != connectivity.Shutdown && next.WaitForStateChange(wctx, st); st = next.GetState() {
			}
			cancel()
		}
		conn = next
		trailer = nil
	}
}
