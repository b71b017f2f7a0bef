package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/tistream/tistream/libs/tlsx"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"

	// Every TiStream API, so the policy test sees them all.
	_ "github.com/tistream/tistream/proto/gen/go/tistream/dispatcher/v1"
	_ "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
	_ "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// Every RPC of every TiStream service has a rule: a new RPC is closed
// until someone writes one, and this test says which.
func TestEveryRPCHasARule(t *testing.T) {
	n := 0
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "tistream.") {
			return true
		}
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for j := range sd.Methods().Len() {
				m := "/" + string(sd.FullName()) + "/" + string(sd.Methods().Get(j).Name())
				_, ok := policy[m]
				require.True(t, ok, "no authorization rule for %s (libs/auth/policy.go)", m)
				n++
			}
		}
		return true
	})
	require.Equal(t, len(policy), n, "every rule names a real RPC")
}

func certOf(t *testing.T, identity string) *x509.Certificate {
	t.Helper()
	ca, err := tlsx.NewCA("test", time.Hour)
	require.NoError(t, err)
	leaf, err := ca.Issue(identity, []string{"127.0.0.1"}, time.Hour)
	require.NoError(t, err)
	b, _ := pem.Decode(leaf.CertPEM)
	c, err := x509.ParseCertificate(b.Bytes)
	require.NoError(t, err)
	return c
}

func TestIdentityFromCertificate(t *testing.T) {
	id, err := FromCertificate(certOf(t, "sorter/s1"))
	require.NoError(t, err)
	require.Equal(t, Identity{Role: RoleSorter, Name: "s1", AllTenants: true, Via: "cert"}, id)
	id, err = FromCertificate(certOf(t, "reader/1,7/alice"))
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 7}, id.Tenants)
	require.False(t, id.AllTenants)
	require.True(t, id.CanActOn(7) && !id.CanActOn(2))
	for _, bad := range []string{"wizard/x", "reader/alice", "reader/0/alice", "sorter/a/b/c"} {
		_, err := FromCertificate(certOf(t, bad))
		require.Error(t, err, bad)
	}
}

// keys writes a PEM file of public keys and returns their signers.
func keys(t *testing.T) (string, ed25519.PrivateKey, *ecdsa.PrivateKey) {
	t.Helper()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	var out []byte
	for _, k := range []any{ed.Public(), &ec.PublicKey} {
		der, err := x509.MarshalPKIXPublicKey(k)
		require.NoError(t, err)
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	path := filepath.Join(t.TempDir(), "keys.pem")
	require.NoError(t, os.WriteFile(path, out, 0o644))
	return path, ed, ec
}

func TestTokens(t *testing.T) {
	path, ed, ec := keys(t)
	v, err := NewVerifier(path)
	require.NoError(t, err)
	exp := jwt.NewNumericDate(time.Now().Add(time.Hour))
	ok := func(k any, c Claims) Identity {
		t.Helper()
		tok, err := Sign(k.(signer), c)
		require.NoError(t, err)
		id, err := v.Verify(tok)
		require.NoError(t, err)
		return id
	}
	id := ok(ed, Claims{Role: "reader", Tenants: []uint64{3}, RegisteredClaims: jwt.RegisteredClaims{Subject: "a", ExpiresAt: exp}})
	require.Equal(t, Identity{Role: RoleReader, Name: "a", Tenants: []uint64{3}, Via: "token"}, id)
	id = ok(ec, Claims{Role: "admin", RegisteredClaims: jwt.RegisteredClaims{Subject: "ops", ExpiresAt: exp}})
	require.True(t, id.AllTenants)

	_, other, _ := ed25519.GenerateKey(rand.Reader)
	for name, c := range map[string]struct {
		k signer
		c Claims
	}{
		"expired":           {ed, Claims{Role: "reader", Tenants: []uint64{1}, RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour))}}},
		"no expiry":         {ed, Claims{Role: "reader", Tenants: []uint64{1}}},
		"another key":       {other, Claims{Role: "reader", Tenants: []uint64{1}, RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: exp}}},
		"wrong audience":    {ed, Claims{Role: "reader", Tenants: []uint64{1}, RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: exp, Audience: jwt.ClaimStrings{"other"}}}},
		"fleet role":        {ed, Claims{Role: "sorter", RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: exp}}},
		"reader, no tenant": {ed, Claims{Role: "reader", RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: exp}}},
	} {
		tok, err := Sign(c.k, c.c)
		require.NoError(t, err)
		_, err = v.Verify(tok)
		require.Error(t, err, name)
	}
	_, err = v.Verify(strings.Repeat("x", maxTokenBytes+1))
	require.ErrorContains(t, err, "bytes")
	// An HMAC token (alg HS256, a confusion attack with the public key as
	// the secret) is refused.
	hs, err := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Role: "admin", RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: exp,
		Audience: jwt.ClaimStrings{Audience}}}).SignedString([]byte("secret"))
	require.NoError(t, err)
	_, err = v.Verify(hs)
	require.Error(t, err)
}

type signer = interface {
	Public() crypto.PublicKey
	Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error)
}

// callAs builds a server context as the guard sees it: a TLS peer with
// the certificate, and an optional bearer token.
func callAs(cert *x509.Certificate, token string) context.Context {
	st := tls.ConnectionState{}
	if cert != nil {
		st.VerifiedChains = [][]*x509.Certificate{{cert}}
	}
	ctx := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{State: st}})
	if token != "" {
		ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+token))
	}
	return ctx
}

func TestGuard(t *testing.T) {
	path, ed, _ := keys(t)
	v, err := NewVerifier(path)
	require.NoError(t, err)
	g := NewGuard(v, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	handler := func(ctx context.Context, req any) (any, error) {
		id, _ := FromContext(ctx)
		return id, nil
	}
	call := func(ctx context.Context, method string, req any) (any, codes.Code) {
		resp, err := g.Unary(ctx, req, &grpc.UnaryServerInfo{FullMethod: method}, handler)
		return resp, status.Code(err)
	}
	listTables := "/tistream.api.v1.TiStreamService/ListTables"
	reader := func(tenants ...uint64) string {
		tok, err := Sign(ed, Claims{Role: "reader", Tenants: tenants, RegisteredClaims: jwt.RegisteredClaims{Subject: "r",
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}})
		require.NoError(t, err)
		return tok
	}
	_, c := call(callAs(nil, ""), listTables, &apiv1.ListTablesRequest{TenantId: 1})
	require.Equal(t, codes.Unauthenticated, c)
	_, c = call(callAs(nil, reader(2)), listTables, &apiv1.ListTablesRequest{TenantId: 1})
	require.Equal(t, codes.PermissionDenied, c, "another tenant")
	resp, c := call(callAs(nil, reader(1, 2)), listTables, &apiv1.ListTablesRequest{TenantId: 1})
	require.Equal(t, codes.OK, c)
	require.Equal(t, RoleReader, resp.(Identity).Role)
	_, c = call(callAs(certOf(t, "sorter/s1"), ""), listTables, &apiv1.ListTablesRequest{TenantId: 1})
	require.Equal(t, codes.PermissionDenied, c, "a fleet member that is not the api-server's client")
	_, c = call(callAs(certOf(t, "admin/ops"), ""), "/tistream.meta.v1.MetaService/ListTenants", &metav1.ListTenantsRequest{})
	require.Equal(t, codes.OK, c)
	_, c = call(callAs(certOf(t, "reader/1/alice"), ""), "/tistream.meta.v1.MetaService/ListTasks", &metav1.ListTasksRequest{TenantId: 1})
	require.Equal(t, codes.PermissionDenied, c)
	_, c = call(callAs(certOf(t, "admin/ops"), ""), "/tistream.unknown.v1.X/Y", nil)
	require.Equal(t, codes.PermissionDenied, c, "a method without a rule")
	_, c = call(callAs(nil, ""), "/grpc.health.v1.Health/Check", nil)
	require.Equal(t, codes.OK, c, "health is open")
	_, c = call(callAs(nil, "not-a-jwt"), listTables, &apiv1.ListTablesRequest{TenantId: 1})
	require.Equal(t, codes.Unauthenticated, c)

	// A message that decodes itself (libs/grpcx's codec) is checked by its
	// tenant getter; one whose tenant cannot be read is refused, not let
	// through unchecked.
	_, c = call(callAs(nil, reader(2)), listTables, selfDecoded{tenant: 1})
	require.Equal(t, codes.PermissionDenied, c, "another tenant, by the getter")
	_, c = call(callAs(nil, reader(1)), listTables, selfDecoded{tenant: 1})
	require.Equal(t, codes.OK, c)
	_, c = call(callAs(nil, reader(1)), listTables, struct{}{})
	require.Equal(t, codes.PermissionDenied, c, "a request whose tenant cannot be read")
}

type selfDecoded struct{ tenant uint64 }

func (m selfDecoded) GetTenantId() uint64 { return m.tenant }
