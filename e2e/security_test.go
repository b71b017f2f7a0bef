//go:build linux

package e2e

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tistream/tistream/client"
	"github.com/tistream/tistream/libs/auth"
	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/tlsx"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// TestSecurityProbes repeats, against a fleet run as deployed (every
// connection mutual TLS, etcd included; tokens for the public API), each
// probe an attacker on the same machine used on the open fleet (issue 10),
// and checks it is refused with the right code, while legitimate traffic —
// with a certificate rotated under it — still verifies.
func TestSecurityProbes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	f := startProcFleet(t, procFleetOptions{Metas: 1, Sorters: 1, Dispatchers: 1,
		Extra: map[string][]string{"api-server": {"--max-pulls-per-client", "3"}}})
	api, meta, sorter := f.first("api-server"), f.first("meta-server"), f.first("sorter")
	cl := f.clients()
	truthPath := filepath.Join(f.dir, "truth.jsonl")
	sim := start(t, "sim", simArgs(f.bufferURL, meta.grpcAddr, truthPath, "12s", cl.upstream)...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	code := func(err error) codes.Code { return status.Code(err) }
	// pullTenant opens a pull, reads its first message and closes it.
	pullTenant := func(conn *grpc.ClientConn, tenant uint64) error {
		pctx, pcancel := context.WithCancel(ctx)
		defer pcancel()
		st, err := apiv1.NewTiStreamServiceClient(conn).PullTenant(pctx, &apiv1.PullTenantRequest{TenantId: tenant})
		if err != nil {
			return err
		}
		_, err = st.Recv()
		return err
	}

	// Reading without credentials: plaintext does not even connect; TLS
	// without a certificate or token is UNAUTHENTICATED.
	plain, err := grpcx.Dial(api.grpcAddr, insecure.NewCredentials())
	require.NoError(t, err)
	defer plain.Close()
	require.Equal(t, codes.Unavailable, code(pullTenant(plain, 1)), "plaintext against a TLS server")
	anon := dialWith(t, f, api.grpcAddr, "")
	defer anon.Close()
	err = pullTenant(anon, 1)
	require.Equal(t, codes.Unauthenticated, code(err), "%v", err)
	_, err = metav1.NewMetaServiceClient(dialWith(t, f, meta.grpcAddr, "")).ListTenants(ctx, &metav1.ListTenantsRequest{})
	require.Equal(t, codes.Unauthenticated, code(err), "ListTenants without credentials")

	// A reader of tenant 2 cannot read tenant 1, nor list tenants.
	reader2 := dialWith(t, f, api.grpcAddr, mintToken(t, f, "reader", []uint64{2}, "mallory"))
	defer reader2.Close()
	require.Equal(t, codes.PermissionDenied, code(pullTenant(reader2, 1)))
	_, err = apiv1.NewTiStreamServiceClient(reader2).ListDBs(ctx, &apiv1.ListDBsRequest{TenantId: 1})
	require.Equal(t, codes.PermissionDenied, code(err))
	_, err = metav1.NewMetaServiceClient(dialWith(t, f, meta.grpcAddr, mintToken(t, f, "reader", []uint64{2}, "mallory"))).
		ListTenants(ctx, &metav1.ListTenantsRequest{})
	require.Equal(t, codes.PermissionDenied, code(err))
	// An expired token and a token signed by another key are refused.
	require.Equal(t, codes.Unauthenticated, code(pullTenant(dialWith(t, f, api.grpcAddr, mintExpired(t, f)), 2)))

	// Forging data: Ingest straight to a sorter. Without a client
	// certificate the handshake fails; with one that is not a
	// dispatcher's, PERMISSION_DENIED. Nothing reaches a pull (verified at
	// the end).
	noCert := dialWith(t, f, sorter.grpcAddr, "")
	defer noCert.Close()
	require.NotEqual(t, codes.OK, code(ingestOne(ctx, noCert)))
	asAdmin := f.tls.dial(t, sorter.grpcAddr, "admin")
	defer asAdmin.Close()
	require.Equal(t, codes.PermissionDenied, code(ingestOne(ctx, asAdmin)))

	// Operating the fleet needs an admin: an upstream may not split.
	upstream := f.tls.dial(t, meta.grpcAddr, "upstream")
	defer upstream.Close()
	_, err = metav1.NewMetaServiceClient(upstream).SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 1, RangeId: 1, SplitKey: []byte("t")})
	require.Equal(t, codes.PermissionDenied, code(err))
	// An upstream of tenant 2 may not notify tenant 1's files.
	up2 := dialWith(t, f, meta.grpcAddr, mintToken(t, f, "upstream", []uint64{2}, "producer-2"))
	defer up2.Close()
	_, err = metav1.NewMetaServiceClient(up2).NotifyStoreFile(ctx, &metav1.NotifyStoreFileRequest{TenantId: 1, StoreId: 9, Seq: 1})
	require.Equal(t, codes.PermissionDenied, code(err))

	// Bounds: a 5 MiB request to the public API is refused before it is
	// read into memory, and one client holds at most --max-pulls-per-client
	// pulls.
	_, err = apiv1.NewTiStreamServiceClient(f.tls.dial(t, api.grpcAddr, "admin")).ListTables(ctx,
		&apiv1.ListTablesRequest{TenantId: 1, Db: strings.Repeat("x", 5<<20)})
	require.Equal(t, codes.ResourceExhausted, code(err))
	admin := f.tls.dial(t, api.grpcAddr, "admin")
	defer admin.Close()
	require.Eventually(t, func() bool { return pullTenant(admin, 1) == nil }, time.Minute, 200*time.Millisecond,
		"the simulator registers tenant 1")
	// The closed pulls are released by the server asynchronously.
	require.Eventually(t, func() bool {
		return !strings.Contains(metrics(t, api.httpAddr), `tistream_apiserver_pulls_open{kind="tenant"} 1`)
	}, 10*time.Second, 50*time.Millisecond)
	var open []context.CancelFunc
	for range 3 {
		pctx, pcancel := context.WithCancel(ctx)
		open = append(open, pcancel)
		st, err := apiv1.NewTiStreamServiceClient(admin).PullTenant(pctx, &apiv1.PullTenantRequest{TenantId: 1})
		require.NoError(t, err)
		_, err = st.Recv()
		require.NoError(t, err)
	}
	require.Equal(t, codes.ResourceExhausted, code(pullTenant(admin, 1)), "a fourth pull of one client")
	for _, c := range open {
		c()
	}

	// The client library with a reader's token: its tenant reads; another
	// tenant is a typed authentication error, not a retry loop.
	checkClientLibrary(t, f, api.grpcAddr)

	// The HTTP port: no profiles by default, and a client that sends its
	// headers slowly is cut off.
	resp, err := http.Get("http://" + api.httpAddr + "/debug/pprof/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	requireSlowHeadersCut(t, api.httpAddr)

	// Certificate rotation under load: the api-server's certificate is
	// replaced in place; new connections get the new one, no restart.
	before := servedSerial(t, f, api.grpcAddr)
	rotate(t, f, "api-server", "api-server/api-server")
	require.Eventually(t, func() bool { return servedSerial(t, f, api.grpcAddr) != before }, 30*time.Second, 200*time.Millisecond)

	select {
	case <-sim.exited:
	case <-time.After(2 * time.Minute):
		t.Fatal("the simulator did not finish in 2 minutes")
	}
	require.NoError(t, sim.err, "the simulator")
	pullAndVerify(t, f.dir, truthPath, api.grpcAddr, cl.admin)
	m := metrics(t, api.httpAddr)
	require.Contains(t, m, `tistream_auth_refused_total{method="/tistream.api.v1.TiStreamService/PullTenant",reason="unauthenticated"}`)
	require.Contains(t, m, `tistream_apiserver_refused_total{bound="max_pulls_per_client"}`)
}

// dialWith connects over TLS (verifying the server against the fleet CA)
// presenting no certificate, and the token if one is given.
func dialWith(t *testing.T, f *procFleet, addr, token string) *grpc.ClientConn {
	t.Helper()
	ca := f.tls.files("admin")
	src, err := tlsx.NewSource(tlsx.Files{CAFile: ca.CAFile}, nil)
	require.NoError(t, err)
	var extra []grpc.DialOption
	if token != "" {
		extra = append(extra, grpc.WithPerRPCCredentials(bearerToken(token)))
	}
	conn, err := grpcx.Dial(addr, credentials.NewTLS(tlsx.ClientConfig(src)), extra...)
	require.NoError(t, err)
	return conn
}

type bearerToken string

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearerToken) RequireTransportSecurity() bool { return true }

func signer(t *testing.T, f *procFleet) crypto.Signer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.tls.dir, "token-signing-key.pem"))
	require.NoError(t, err)
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	require.NoError(t, err)
	return k.(crypto.Signer)
}

func mintToken(t *testing.T, f *procFleet, role string, tenants []uint64, subject string) string {
	t.Helper()
	tok, err := auth.Sign(signer(t, f), auth.Claims{Role: role, Tenants: tenants, RegisteredClaims: jwt.RegisteredClaims{
		Subject: subject, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}})
	require.NoError(t, err)
	return tok
}

func mintExpired(t *testing.T, f *procFleet) string {
	t.Helper()
	tok, err := auth.Sign(signer(t, f), auth.Claims{Role: "reader", Tenants: []uint64{2}, RegisteredClaims: jwt.RegisteredClaims{
		Subject: "late", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour))}})
	require.NoError(t, err)
	return tok
}

// ingestOne sends one forged batch (a committed row for tenant 1) and
// returns how the sorter answered.
func ingestOne(ctx context.Context, conn *grpc.ClientConn) error {
	st, err := sorterv1.NewSorterServiceClient(conn).Ingest(ctx)
	if err != nil {
		return err
	}
	err = st.Send(&sorterv1.IngestRequest{TenantId: 1, StoreId: 99, Seq: 1, Batches: []*sorterv1.RangeBatch{{RangeId: 1, RangeEpoch: 1,
		Events: []*sorterv1.Event{{Kind: sorterv1.Event_KIND_ROW, Row: &sorterv1.Row{Type: sorterv1.RowType_ROW_TYPE_COMMITTED,
			Op: sorterv1.RowOp_ROW_OP_PUT, Key: []byte("t\x80\x00\x00\x00\x00\x00\x00\x65_r\x80\x00\x00\x00\x00\x00\x00\x01"),
			Value: []byte("phantom"), StartTs: 1, CommitTs: 2}}}}}})
	if err != nil {
		_, rerr := st.Recv()
		return rerr
	}
	_, err = st.Recv()
	return err
}

// requireSlowHeadersCut opens connections that send half a request and
// checks the server closes them (it used to hold them indefinitely).
func requireSlowHeadersCut(t *testing.T, addr string) {
	t.Helper()
	var conns []net.Conn
	for range 20 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n"))
		require.NoError(t, err)
		conns = append(conns, c)
	}
	for _, c := range conns {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
		_, err := io.ReadAll(c)
		require.NoError(t, err, "the server should close the connection (EOF), not leave it hanging")
		c.Close()
	}
}

// servedSerial is the serial number of the certificate a server presents.
func servedSerial(t *testing.T, f *procFleet, addr string) string {
	t.Helper()
	ca := f.tls.files("admin")
	pem, err := os.ReadFile(ca.CAFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"h2"}})
	require.NoError(t, err)
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// rotate issues a new certificate for a member into its files (what
// cert-manager does on renewal).
func rotate(t *testing.T, f *procFleet, name, identity string) {
	t.Helper()
	caKeyPEM, err := os.ReadFile(filepath.Join(f.tls.dir, "ca-key.pem"))
	require.NoError(t, err)
	caCertPEM, err := os.ReadFile(filepath.Join(f.tls.dir, "ca.pem"))
	require.NoError(t, err)
	ca, err := tlsx.LoadCA(caCertPEM, caKeyPEM)
	require.NoError(t, err)
	leaf, err := ca.Issue(identity, []string{"127.0.0.1", "localhost"}, time.Hour)
	require.NoError(t, err)
	files := f.tls.files(name)
	require.NoError(t, tlsx.WriteFile(files.KeyFile, leaf.KeyPEM, 0o600))
	require.NoError(t, tlsx.WriteFile(files.CertFile, leaf.CertPEM, 0o644))
}

// checkClientLibrary pulls through the public client package (the way a
// CDC or TiFlash consumer does) with TLS and a reader token.
func checkClientLibrary(t *testing.T, f *procFleet, addr string) {
	t.Helper()
	caPEM, err := os.ReadFile(f.tls.files("admin").CAFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		tenants []uint64
		ok      bool
	}{{[]uint64{1}, true}, {[]uint64{2}, false}} {
		cli, err := client.Dial(addr, client.Options{TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			Token: mintToken(t, f, "reader", tc.tenants, "consumer"), RetryLimit: 2})
		require.NoError(t, err)
		st, err := cli.Pull(ctx, client.Tenant(1), 0)
		if err == nil {
			_, err = st.Next()
		}
		if tc.ok {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, client.ErrUnauthenticated)
		}
		require.NoError(t, cli.Close())
	}
}
