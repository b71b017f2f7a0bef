package metaserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tistream/tistream/libs/auth"
	"github.com/tistream/tistream/libs/grpcx"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Every member serves MetaService (docs/fleet.md, "meta-server"): a
// standby forwards each call to the leader it reads from the election and
// passes the answer back, so a Kubernetes Service may send calls to any
// member. The forwarded call
//
//   - is made with the standby's own certificate (the services' TLS
//     settings) and carries the identity the standby's guard verified for
//     the caller in auth.ForwardedIdentityKey; the leader believes it only
//     from a meta-server's certificate and authorizes it by the policy, as
//     if the caller had called it directly (the standby's guard has already
//     refused callers the policy refuses, so they are never forwarded);
//   - carries hopsKey, the number of times it was forwarded: a member
//     forwards a call at most maxHops-1 more times, so two members that
//     each believe the other leads (during an election) cannot bounce a
//     call for ever; at the limit the call fails with the redirect;
//   - keeps the caller's deadline (forwardCallTimeout when it has none).
//
// A forwarded call that succeeds carries the leader's address in the
// trailer grpcx.LeaderTrailer; one that cannot be forwarded (no leader
// elected, hop limit, leader unreachable) fails with UNAVAILABLE and, when
// a leader is known, the redirect detail naming it (grpcx.NotLeaderError),
// so a client may call the leader itself. A client that wants the redirect
// instead of forwarding sends hopsKey = maxHops.
const (
	hopsKey            = "tistream-meta-hops"
	maxHops            = 2
	forwardCallTimeout = 30 * time.Second
)

// Results of tistream_meta_forwarded_total.
const (
	fwdAnswered    = "answered"    // the leader answered (its error, if any, is passed on)
	fwdUnavailable = "unavailable" // the leader could not be reached, or was not ready: the redirect
	fwdHopLimit    = "hop_limit"
	fwdNoLeader    = "no_leader"
	fwdBadRequest  = "bad_request" // a bad hop count or an identity that cannot be forwarded
)

// forward sends one call to the leader with fwd and passes the answer on.
func forward[Req, Resp any](ctx context.Context, s *Service, method string, req Req,
	fwd func(metav1.MetaServiceClient, context.Context, Req, ...grpc.CallOption) (Resp, error)) (Resp, error) {
	var zero Resp
	count := func(result string) { s.m.forwarded.WithLabelValues(method, result).Inc() }
	hops, err := incomingHops(ctx)
	if err != nil {
		count(fwdBadRequest)
		return zero, err
	}
	leader := s.leaderAddr(ctx)
	switch {
	case leader == "":
		count(fwdNoLeader)
		return zero, s.notLeader("", "")
	case leader == s.advertise:
		// Elected in etcd but not (or no longer) leading here: the term
		// is starting or ending.
		count(fwdNoLeader)
		return zero, status.Errorf(codes.Unavailable, "meta-server %s is taking over or giving up leadership; retry shortly", s.advertise)
	case hops >= maxHops:
		count(fwdHopLimit)
		return zero, s.notLeader(leader, fmt.Sprintf(" (not forwarded: it was forwarded %d times already; an election is under way)", hops))
	}
	client, err := s.proxy.client(leader)
	if err != nil {
		count(fwdUnavailable)
		return zero, s.notLeader(leader, "; forwarding to it failed: "+err.Error())
	}
	octx := metadata.NewOutgoingContext(ctx, metadata.Pairs(hopsKey, strconv.Itoa(hops+1)))
	if id, ok := auth.FromContext(ctx); ok {
		if octx, err = auth.WithForwarded(octx, id); err != nil {
			count(fwdBadRequest)
			return zero, status.Error(codes.PermissionDenied, err.Error())
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		octx, cancel = context.WithTimeout(octx, forwardCallTimeout)
		defer cancel()
	}
	resp, err := fwd(client, octx, req)
	if err != nil {
		// UNAVAILABLE without a redirect: the leader could not be reached,
		// or it is still loading or ending its term; CANCELED while the
		// caller has not cancelled: this member closed its connection to
		// the leader (stopping, or the leader changed). Either way the
		// caller may try the leader itself.
		st := status.Convert(err)
		if (st.Code() == codes.Unavailable && grpcx.RedirectedTo(err) == "") || (st.Code() == codes.Canceled && ctx.Err() == nil) {
			count(fwdUnavailable)
			return zero, s.notLeader(leader, "; forwarded to it: "+st.Message())
		}
		count(fwdAnswered)
		return zero, err
	}
	count(fwdAnswered)
	grpcx.SetLeaderTrailer(ctx, leader)
	return resp, nil
}

// incomingHops reads hopsKey (0 when absent).
func incomingHops(ctx context.Context) (int, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(hopsKey)
	if len(vals) == 0 {
		return 0, nil
	}
	n, err := strconv.Atoi(vals[0])
	if err != nil || n < 0 || len(vals) > 1 {
		return 0, status.Errorf(codes.InvalidArgument, "metadata %s: %q is not one count of forwards", hopsKey, vals)
	}
	return n, nil
}

// leaderProxy is the standby's connection to the leader, replaced when
// the leader changes (the old one is closed once the calls on it are
// over, or at stop).
type leaderProxy struct {
	creds credentials.TransportCredentials // set at start: the meta-server's own certificate

	mu      sync.Mutex
	addr    string
	conn    *grpc.ClientConn
	retired []*grpc.ClientConn // to earlier leaders, closed by a timer or at stop
	closed  bool
}

func (p *leaderProxy) client(addr string) (metav1.MetaServiceClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("meta-server stopping")
	}
	if p.conn == nil || p.addr != addr {
		if old := p.conn; old != nil {
			// Calls under way on it end within their deadline.
			p.retired = append(p.retired, old)
			time.AfterFunc(forwardCallTimeout, func() { _ = old.Close() })
		}
		conn, err := grpcx.Dial(addr, p.creds)
		if err != nil {
			p.conn, p.addr = nil, ""
			return nil, err
		}
		p.conn, p.addr = conn, addr
	}
	return metav1.NewMetaServiceClient(p.conn), nil
}

func (p *leaderProxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, c := range append(p.retired, p.conn) {
		if c != nil {
			_ = c.Close()
		}
	}
	p.conn, p.addr, p.retired = nil, "", nil
}
