package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Guard authenticates and authorizes every call of one server by the
// policy table.
type Guard struct {
	tokens  *Verifier // nil: no bearer tokens accepted
	log     *slog.Logger
	refused *prometheus.CounterVec
}

// NewGuard builds a guard; tokens may be nil. Refusals are counted in
// tistream_auth_refused_total{method,reason} on reg.
func NewGuard(tokens *Verifier, log *slog.Logger, reg prometheus.Registerer) *Guard {
	g := &Guard{tokens: tokens, log: log, refused: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tistream_auth_refused_total",
		Help: "Calls refused: reason unauthenticated (no or a bad credential), forbidden (role or tenant not allowed), unknown_method.",
	}, []string{"method", "reason"})}
	if reg != nil {
		reg.MustRegister(g.refused)
	}
	return g
}

type ctxKey struct{}

// FromContext is the identity of the call's caller, if authenticated.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// identify reads the caller's identity: a bearer token if one is sent,
// else the verified TLS client certificate; then, from a meta-server's
// certificate, the identity it forwards (forwarded.go).
func (g *Guard) identify(ctx context.Context) (Identity, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	id, err := g.peerIdentity(ctx, md)
	if err != nil {
		return Identity{}, err
	}
	return forwardedIdentity(md, id)
}

// peerIdentity is who sent the call: its bearer token or certificate.
func (g *Guard) peerIdentity(ctx context.Context, md metadata.MD) (Identity, error) {
	if vals := md.Get("authorization"); len(vals) > 0 {
		tok, ok := strings.CutPrefix(vals[0], "Bearer ")
		if !ok {
			return Identity{}, errors.New("the authorization header is not a Bearer token")
		}
		if g.tokens == nil {
			return Identity{}, errors.New("this server accepts no bearer tokens (use a client certificate)")
		}
		id, err := g.tokens.Verify(tok)
		if err != nil {
			return Identity{}, fmt.Errorf("bearer token: %w", err)
		}
		return id, nil
	}
	p, ok := peer.FromContext(ctx)
	if ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			if c := verifiedLeaf(ti.State); c != nil {
				return FromCertificate(c)
			}
		}
	}
	return Identity{}, errors.New("no credentials: present a client certificate or a bearer token")
}

func verifiedLeaf(st tls.ConnectionState) *x509.Certificate {
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return nil
	}
	return st.VerifiedChains[0][0]
}

// authorize decides a call; it returns the context with the identity.
func (g *Guard) authorize(ctx context.Context, method string) (context.Context, Rule, error) {
	rule, ok := ruleFor(method)
	if !ok {
		return ctx, rule, g.refuse(ctx, method, "unknown_method", nil, codes.PermissionDenied, "method %s is not allowed", method)
	}
	if rule.Open {
		return ctx, rule, nil
	}
	id, err := g.identify(ctx)
	if err != nil {
		return ctx, rule, g.refuse(ctx, method, "unauthenticated", nil, codes.Unauthenticated, "%v", err)
	}
	allowed := false
	for _, r := range rule.Roles {
		allowed = allowed || r == id.Role
	}
	if !allowed {
		return ctx, rule, g.refuse(ctx, method, "forbidden", &id, codes.PermissionDenied, "%s may not call %s", id.Role, method)
	}
	return context.WithValue(ctx, ctxKey{}, id), rule, nil
}

// checkTenant refuses a request for a tenant the caller does not hold.
func (g *Guard) checkTenant(ctx context.Context, method string, req any) error {
	id, _ := FromContext(ctx)
	t, ok := tenantOf(req)
	if !ok {
		// Not a message whose tenant can be read: refused, never let
		// through unchecked.
		return g.refuse(ctx, method, "forbidden", &id, codes.PermissionDenied, "the request's tenant cannot be read (%T)", req)
	}
	if t == 0 && !id.AllTenants {
		return g.refuse(ctx, method, "forbidden", &id, codes.PermissionDenied, "a request without a tenant needs access to every tenant")
	}
	if t != 0 && !id.CanActOn(t) {
		return g.refuse(ctx, method, "forbidden", &id, codes.PermissionDenied, "%s may not act on tenant %d", id.Role, t)
	}
	return nil
}

// tenantOf reads the request's tenant_id field (0 if it has none): a
// generated message's, or the getter of a message that decodes itself
// (routepb.Received). ok is false for anything else.
func tenantOf(req any) (t uint64, ok bool) {
	switch m := req.(type) {
	case proto.Message:
		r := m.ProtoReflect()
		f := r.Descriptor().Fields().ByName("tenant_id")
		if f == nil || f.Kind() != protoreflect.Uint64Kind {
			return 0, true
		}
		return r.Get(f).Uint(), true
	case interface{ GetTenantId() uint64 }:
		return m.GetTenantId(), true
	}
	return 0, false
}

func (g *Guard) refuse(ctx context.Context, method, reason string, id *Identity, code codes.Code, format string, args ...any) error {
	g.refused.WithLabelValues(method, reason).Inc()
	who := "anonymous"
	if id != nil {
		who = id.String()
	}
	addr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	msg := fmt.Sprintf(format, args...)
	g.log.Warn("call refused", "method", method, "reason", reason, "identity", who, "peer", addr, "detail", msg)
	return status.Error(code, msg)
}

// audited are calls that change the fleet: each allowed one is logged
// with its caller.
var audited = map[string]bool{
	"/tistream.meta.v1.MetaService/RegisterTenant":   true,
	"/tistream.meta.v1.MetaService/SplitRange":       true,
	"/tistream.meta.v1.MetaService/MergeRanges":      true,
	"/tistream.meta.v1.MetaService/DrainWorker":      true,
	"/tistream.meta.v1.MetaService/UpdateTenant":     true,
	"/tistream.meta.v1.MetaService/DeregisterTenant": true,
}

// Unary is the guard as a unary interceptor.
func (g *Guard) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, rule, err := g.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	if rule.Tenant {
		if err := g.checkTenant(ctx, info.FullMethod, req); err != nil {
			return nil, err
		}
	}
	if audited[info.FullMethod] {
		id, _ := FromContext(ctx)
		t, _ := tenantOf(req)
		g.log.Info("audited call", "method", info.FullMethod, "identity", id.String(), "tenant", t)
	}
	return h(ctx, req)
}

// Stream is the guard as a stream interceptor: the tenant of every
// message the client sends is checked.
func (g *Guard) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, rule, err := g.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return h(srv, &guardedStream{ServerStream: ss, ctx: ctx, g: g, method: info.FullMethod, tenant: rule.Tenant})
}

type guardedStream struct {
	grpc.ServerStream
	ctx    context.Context
	g      *Guard
	method string
	tenant bool
}

func (s *guardedStream) Context() context.Context { return s.ctx }

func (s *guardedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if s.tenant {
		return s.g.checkTenant(s.ctx, s.method, m)
	}
	return nil
}
