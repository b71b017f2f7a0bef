package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tistream/tistream/libs/auth"
	"github.com/tistream/tistream/libs/svc"
	"github.com/tistream/tistream/libs/tlsx"
)

// fleetCA is the throw-away CA of a fleet run in one process (tistream up,
// the benchmarks): every member, etcd and the clients get a certificate
// from it under <data-dir>/tls, so the zero-setup default runs with
// security on, as a real fleet does.
type fleetCA struct {
	dir   string
	ca    *tlsx.CA
	hosts []string
	// tokenKeys verifies bearer tokens; tokenSigner signs them
	// (`tistream token --key`).
	tokenKeys, tokenSigner string
}

const fleetCertValidity = 90 * 24 * time.Hour

// newFleetCA makes the CA and the token signing key under dir/tls.
func newFleetCA(dir string, hosts []string) (*fleetCA, error) {
	tdir := filepath.Join(dir, "tls")
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return nil, err
	}
	ca, err := tlsx.NewCA("TiStream fleet CA", fleetCertValidity)
	if err != nil {
		return nil, err
	}
	if err := tlsx.WriteFile(filepath.Join(tdir, "ca.pem"), ca.CertPEM, 0o644); err != nil {
		return nil, err
	}
	// The CA's key stays with the fleet's files so an operator (and the
	// rotation test) can issue more certificates from it.
	caKey, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	if err := tlsx.WriteFile(filepath.Join(tdir, "ca-key.pem"), caKey, 0o600); err != nil {
		return nil, err
	}
	f := &fleetCA{dir: tdir, ca: ca, hosts: hosts,
		tokenKeys: filepath.Join(tdir, "token-keys.pem"), tokenSigner: filepath.Join(tdir, "token-signing-key.pem")}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	if err := tlsx.WriteFile(f.tokenKeys, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return nil, err
	}
	if err := tlsx.WriteFile(f.tokenSigner, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return nil, err
	}
	return f, nil
}

// issue writes a credentials directory <tls>/<name>: ca.pem, cert.pem,
// key.pem of identity (see tlsx.IdentityURI), the layout `--credentials`
// reads.
func (f *fleetCA) issue(name, identity string) (tlsx.Files, error) {
	leaf, err := f.ca.Issue(identity, f.hosts, fleetCertValidity)
	if err != nil {
		return tlsx.Files{}, err
	}
	return f.write(name, leaf)
}

// write writes the credentials directory <tls>/<name> of a certificate.
func (f *fleetCA) write(name string, leaf *tlsx.Leaf) (tlsx.Files, error) {
	d := filepath.Join(f.dir, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return tlsx.Files{}, err
	}
	caFile := filepath.Join(d, "ca.pem")
	if err := tlsx.WriteFile(caFile, f.ca.CertPEM, 0o644); err != nil {
		return tlsx.Files{}, err
	}
	files := tlsx.Files{CertFile: filepath.Join(d, "cert.pem"), KeyFile: filepath.Join(d, "key.pem"), CAFile: caFile}
	if err := tlsx.WriteFile(files.KeyFile, leaf.KeyPEM, 0o600); err != nil {
		return tlsx.Files{}, err
	}
	if err := tlsx.WriteFile(files.CertFile, leaf.CertPEM, 0o644); err != nil {
		return tlsx.Files{}, err
	}
	return files, nil
}

// member secures one service: its certificate, and for the services
// clients call with tokens, the keys that verify them.
func (f *fleetCA) member(c *svc.Common, name string, role auth.Role) error {
	files, err := f.issue(name, string(role)+"/"+name)
	if err != nil {
		return fmt.Errorf("certificate of %s: %w", name, err)
	}
	c.Security = svc.Security{TLS: files}
	if role == auth.RoleAPIServer || role == auth.RoleMetaServer {
		c.Security.TokenKeysFile = f.tokenKeys
	}
	return nil
}

// client writes the credentials directory of a client identity and
// returns it as command credentials.
func (f *fleetCA) client(name, identity string) (*clientCreds, error) {
	if _, err := f.issue(name, identity); err != nil {
		return nil, err
	}
	return &clientCreds{dir: filepath.Join(f.dir, name)}, nil
}
