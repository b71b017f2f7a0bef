package tlsx

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// credentials writes a CA and one identity's files.
func credentials(t testing.TB, ca *CA, dir, identity string) Files {
	t.Helper()
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, WriteFile(caFile, ca.CertPEM, 0o644))
	leaf, err := ca.Issue(identity, []string{"127.0.0.1", "localhost"}, time.Hour)
	require.NoError(t, err)
	f, err := WriteLeaf(dir, "id", leaf, caFile)
	require.NoError(t, err)
	return f
}

// handshake runs one TLS handshake between a server of srv and a client
// of cli, and returns the server's view of the client and the certificate
// the client saw.
func handshake(t *testing.T, srv, cli *Source, requireClient bool) (tls.ConnectionState, error) {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(srv, requireClient))
	require.NoError(t, err)
	defer lis.Close()
	got := make(chan tls.ConnectionState, 1)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if tc.Handshake() == nil {
			got <- tc.ConnectionState()
		}
		close(got)
	}()
	cfg := ClientConfig(cli)
	cfg.ServerName = "127.0.0.1"
	c, err := tls.Dial("tcp", lis.Addr().String(), cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	_, _ = c.Write([]byte("x")) // completes the server side of TLS 1.3
	st, ok := <-got
	if !ok {
		return tls.ConnectionState{}, net.ErrClosed
	}
	return st, nil
}

func TestMutualTLS(t *testing.T) {
	ca, err := NewCA("fleet", time.Hour)
	require.NoError(t, err)
	srv, err := NewSource(credentials(t, ca, t.TempDir(), "sorter/s1"), nil)
	require.NoError(t, err)
	cli, err := NewSource(credentials(t, ca, t.TempDir(), "dispatcher/d1"), nil)
	require.NoError(t, err)
	st, err := handshake(t, srv, cli, true)
	require.NoError(t, err)
	require.Len(t, st.VerifiedChains, 1, "the server verified the client's certificate")
	require.Equal(t, "spiffe://tistream/dispatcher/d1", st.VerifiedChains[0][0].URIs[0].String())

	// A client of another CA is refused by the server, and refuses a
	// server of another CA.
	other, err := NewCA("other", time.Hour)
	require.NoError(t, err)
	stranger, err := NewSource(credentials(t, other, t.TempDir(), "dispatcher/d2"), nil)
	require.NoError(t, err)
	_, err = handshake(t, srv, stranger, true)
	require.Error(t, err)
	// Only a CA, no certificate: fine when the server does not require one.
	caOnly, err := NewSource(Files{CAFile: srv.Files().CAFile}, nil)
	require.NoError(t, err)
	_, err = handshake(t, srv, caOnly, false)
	require.NoError(t, err)
}

// A certificate replaced in its files is served without a restart; files
// caught half-written keep the previous one in use.
func TestRotation(t *testing.T) {
	ca, err := NewCA("fleet", time.Hour)
	require.NoError(t, err)
	dir := t.TempDir()
	files := credentials(t, ca, dir, "api-server/a")
	src, err := NewSource(files, nil)
	require.NoError(t, err)
	now := time.Now()
	src.now = func() time.Time { return now }
	first := src.Leaf().SerialNumber
	// A key that does not match (the cert is not written yet): kept.
	leaf, err := ca.Issue("api-server/a", []string{"127.0.0.1"}, time.Hour)
	require.NoError(t, err)
	require.NoError(t, WriteFile(files.KeyFile, leaf.KeyPEM, 0o600))
	now = now.Add(checkEvery)
	require.Equal(t, first, src.Leaf().SerialNumber)
	require.NotNil(t, src.Certificate())
	// The certificate follows: the new pair is served.
	require.NoError(t, WriteFile(files.CertFile, leaf.CertPEM, 0o644))
	now = now.Add(checkEvery)
	require.NotEqual(t, first, src.Leaf().SerialNumber)
	require.Equal(t, 2, src.Loads())
	// A missing file keeps what is in use.
	require.NoError(t, os.Remove(files.CAFile))
	now = now.Add(checkEvery)
	require.NotNil(t, src.Pool())
}
