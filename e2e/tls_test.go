//go:build linux

package e2e

import (
	"crypto/tls"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tistream/tistream/libs/tlsx"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/tistream/tistream/libs/grpcx"
)

// fleetTLS is a process fleet's CA and credentials, made with `tistream
// certs` as an operator would: a credentials directory per member and per
// client identity under dir/tls, and the token keys.
type fleetTLS struct {
	dir string // .../tls
}

func newFleetTLS(t *testing.T, dir string, identities []string) *fleetTLS {
	t.Helper()
	run(t, time.Minute, "", "certs", "--dir", dir, "--hosts", "127.0.0.1,localhost",
		"--identities", strings.Join(append(identities, "etcd/etcd", "admin/admin", "upstream/upstream"), ","))
	return &fleetTLS{dir: filepath.Join(dir, "tls")}
}

func (x *fleetTLS) files(name string) tlsx.Files {
	d := filepath.Join(x.dir, name)
	return tlsx.Files{CertFile: filepath.Join(d, "cert.pem"), KeyFile: filepath.Join(d, "key.pem"), CAFile: filepath.Join(d, "ca.pem")}
}

// serverFlags are a member's --tls-* flags (and the token keys where
// clients may come with tokens).
func (x *fleetTLS) serverFlags(name, kind string) []string {
	f := x.files(name)
	out := []string{"--tls-cert", f.CertFile, "--tls-key", f.KeyFile, "--tls-ca", f.CAFile}
	if kind == "meta-server" || kind == "api-server" {
		out = append(out, "--token-keys", filepath.Join(x.dir, "token-keys.pem"))
	}
	return out
}

// clientFlags are a command's credentials flags.
func (x *fleetTLS) clientFlags(name string) []string {
	return []string{"--credentials", filepath.Join(x.dir, name)}
}

// dial connects to a member as the named client identity.
func (x *fleetTLS) dial(t *testing.T, addr, name string) *grpc.ClientConn {
	t.Helper()
	src, err := tlsx.NewSource(x.files(name), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpcx.Dial(addr, credentials.NewTLS(tlsx.ClientConfig(src)))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// httpClient is an HTTPS client presenting the named identity (etcd's
// /health needs a client certificate).
func (x *fleetTLS) httpClient(t *testing.T, name string) *http.Client {
	t.Helper()
	src, err := tlsx.NewSource(x.files(name), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tlsx.ClientConfig(src)
	cfg.MinVersion = tls.VersionTLS12
	return &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}
