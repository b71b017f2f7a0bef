package auth

import (
	"context"
	"crypto/x509"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// forwardedCall is a server context of a call from cert carrying the
// forwarded identity value fwd.
func forwardedCall(cert *x509.Certificate, fwd []byte) context.Context {
	ctx := callAs(cert, "")
	return metadata.NewIncomingContext(ctx, metadata.Pairs(ForwardedIdentityKey, string(fwd)))
}

// A meta-server's certificate may forward an outside caller's identity,
// and the guard then authorizes that identity by the policy, role and
// tenant, exactly as if it had called directly; nobody else may forward.
func TestGuardForwardedIdentity(t *testing.T) {
	g := NewGuard(nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	call := func(ctx context.Context, method string, req any) (Identity, error) {
		resp, err := g.Unary(ctx, req, &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, _ any) (any, error) {
			id, _ := FromContext(ctx)
			return id, nil
		})
		if err != nil {
			return Identity{}, err
		}
		return resp.(Identity), nil
	}
	enc := func(id Identity) []byte {
		b, err := EncodeForwarded(id)
		require.NoError(t, err)
		return b
	}
	meta := certOf(t, "meta-server/m2")
	listTasks := "/tistream.meta.v1.MetaService/ListTasks"
	notify := "/tistream.meta.v1.MetaService/NotifyStoreFile"
	admin := Identity{Role: RoleAdmin, Name: "ops", AllTenants: true, Via: "token"}
	up1 := Identity{Role: RoleUpstream, Name: "tikv", Tenants: []uint64{1}, Via: "cert"}
	reader := Identity{Role: RoleReader, Name: "alice", Tenants: []uint64{1}, Via: "cert"}

	id, err := call(forwardedCall(meta, enc(admin)), listTasks, &metav1.ListTasksRequest{TenantId: 3})
	require.NoError(t, err)
	require.Equal(t, Identity{Role: RoleAdmin, Name: "ops", AllTenants: true, Via: "token", ForwardedBy: "m2"}, id)
	require.Contains(t, id.String(), `forwarded by meta-server "m2"`)

	id, err = call(forwardedCall(meta, enc(up1)), notify, &metav1.NotifyStoreFileRequest{TenantId: 1})
	require.NoError(t, err)
	require.Equal(t, RoleUpstream, id.Role)
	_, err = call(forwardedCall(meta, enc(up1)), notify, &metav1.NotifyStoreFileRequest{TenantId: 2})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "the forwarded upstream holds tenant 1 only")
	_, err = call(forwardedCall(meta, enc(reader)), listTasks, &metav1.ListTasksRequest{TenantId: 1})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "a reader may not list tasks, forwarded or not")

	// Without a forwarded identity the meta-server is itself, and may not
	// call MetaService.
	_, err = call(callAs(meta, ""), listTasks, &metav1.ListTasksRequest{TenantId: 1})
	require.Equal(t, codes.PermissionDenied, status.Code(err))

	// Anyone else sending the metadata is refused, even an admin.
	for _, who := range []string{"admin/ops", "upstream/1/tikv", "dispatcher/d1"} {
		_, err = call(forwardedCall(certOf(t, who), enc(admin)), listTasks, &metav1.ListTasksRequest{TenantId: 1})
		require.Equal(t, codes.Unauthenticated, status.Code(err), who)
		require.ErrorContains(t, err, "only a meta-server's certificate may")
	}
	// A bad value from a meta-server is refused too.
	_, err = call(forwardedCall(meta, []byte(`{"v":1,"role":"sorter","name":"x","all_tenants":true,"via":"cert"}`)), listTasks,
		&metav1.ListTasksRequest{TenantId: 1})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	ctx := metadata.NewIncomingContext(callAs(meta, ""), metadata.Pairs(ForwardedIdentityKey, string(enc(admin)), ForwardedIdentityKey, string(enc(admin))))
	_, err = call(ctx, listTasks, &metav1.ListTasksRequest{TenantId: 1})
	require.ErrorContains(t, err, "2 forwarded identities")
}

func TestForwardedEncoding(t *testing.T) {
	for _, id := range []Identity{
		{Role: RoleAdmin, Name: "ops", AllTenants: true, Via: "cert"},
		{Role: RoleUpstream, Name: "p", AllTenants: true, Via: "cert"},
		{Role: RoleUpstream, Name: "p", Tenants: []uint64{4, 9}, Via: "token"},
		{Role: RoleReader, Name: "名前", Tenants: []uint64{1}, Via: "cert"},
	} {
		b, err := EncodeForwarded(id)
		require.NoError(t, err)
		got, err := DecodeForwarded(b)
		require.NoError(t, err)
		require.Equal(t, id, got)
	}
	// An admin token listing tenants holds all of them; the list is dropped.
	b, err := EncodeForwarded(Identity{Role: RoleAdmin, Name: "ops", AllTenants: true, Tenants: []uint64{2}, Via: "token"})
	require.NoError(t, err)
	got, err := DecodeForwarded(b)
	require.NoError(t, err)
	require.True(t, got.AllTenants)
	require.Empty(t, got.Tenants)

	_, err = EncodeForwarded(Identity{Role: RoleSorter, Name: "s", AllTenants: true, Via: "cert"})
	require.ErrorContains(t, err, "fleet member")
	for name, bad := range map[string]string{
		"not json":        `{`,
		"version":         `{"v":2,"role":"admin","name":"x","all_tenants":true,"via":"cert"}`,
		"unknown role":    `{"v":1,"role":"wizard","name":"x","all_tenants":true,"via":"cert"}`,
		"fleet role":      `{"v":1,"role":"meta-server","name":"x","all_tenants":true,"via":"cert"}`,
		"via":             `{"v":1,"role":"admin","name":"x","all_tenants":true,"via":"magic"}`,
		"no tenants":      `{"v":1,"role":"reader","name":"x","via":"cert"}`,
		"both":            `{"v":1,"role":"reader","name":"x","tenants":[1],"all_tenants":true,"via":"cert"}`,
		"reader all":      `{"v":1,"role":"reader","name":"x","all_tenants":true,"via":"cert"}`,
		"tenant zero":     `{"v":1,"role":"reader","name":"x","tenants":[0],"via":"cert"}`,
		"negative tenant": `{"v":1,"role":"reader","name":"x","tenants":[-1],"via":"cert"}`,
	} {
		_, err := DecodeForwarded([]byte(bad))
		require.Error(t, err, name)
	}
	_, err = DecodeForwarded(make([]byte, maxForwardedBytes+1))
	require.ErrorContains(t, err, "bytes")
}

// FuzzDecodeForwarded: any value decodes or is refused, never panics, and
// what decodes encodes back to an identity that decodes the same.
func FuzzDecodeForwarded(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"role":"admin","name":"ops","all_tenants":true,"via":"token"}`,
		`{"v":1,"role":"upstream","name":"p","tenants":[1,2],"via":"cert"}`,
		`{"v":1,"role":"reader","name":"","tenants":[18446744073709551615],"via":"cert"}`,
		`{"v":1}`, `null`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := DecodeForwarded(b)
		if err != nil {
			return
		}
		again, err := EncodeForwarded(id)
		if err != nil {
			t.Fatalf("decoded %v does not encode: %v", id, err)
		}
		id2, err := DecodeForwarded(again)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", again, err)
		}
		if id.String() != id2.String() {
			t.Fatalf("round trip: %v != %v", id, id2)
		}
	})
}
