package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tistream/tistream/libs/auth"
)

func init() {
	register(command{name: "token", summary: "mint a bearer token for a reader, upstream or admin (signed with a private key)", run: runToken})
	register(command{name: "certs", summary: "make a CA and certificates for a fleet and its clients (for tests and small setups)", run: runCerts})
}

// runToken mints a token: `tistream token --key signing-key.pem --role
// reader --tenants 1,2 --subject alice --ttl 24h`.
func runToken(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key", "", "PEM private key (Ed25519 or ECDSA P-256/P-384) whose public key the servers' --token-keys hold")
	role := fs.String("role", "reader", "reader, upstream or admin")
	tenants := fs.String("tenants", "", "comma-separated tenant ids (readers and upstreams)")
	subject := fs.String("subject", "", "who holds the token (for the audit log)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "tistream token: "+format+"\n", a...)
		return code
	}
	if *keyFile == "" || *subject == "" {
		return fail(2, "--key and --subject are required")
	}
	key, err := readSigner(*keyFile)
	if err != nil {
		return fail(1, "%v", err)
	}
	c := auth.Claims{Role: *role, RegisteredClaims: jwt.RegisteredClaims{Subject: *subject,
		IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(*ttl))}}
	if *tenants != "" {
		for _, p := range strings.Split(*tenants, ",") {
			t, err := strconv.ParseUint(strings.TrimSpace(p), 10, 64)
			if err != nil || t == 0 {
				return fail(2, "--tenants: %q is not a tenant id", p)
			}
			c.Tenants = append(c.Tenants, t)
		}
	}
	if _, err := auth.ParseRole(*role); err != nil {
		return fail(2, "--role: %v", err)
	}
	tok, err := auth.Sign(key, c)
	if err != nil {
		return fail(1, "%v", err)
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

func readSigner(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s holds no PEM key", path)
	}
	var k any
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("%s: a %s, want a PRIVATE KEY", path, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: a %T cannot sign", path, k)
	}
	return s, nil
}

// runCerts makes a fleet's CA, certificates and token keys:
// `tistream certs --dir DIR --hosts 127.0.0.1,localhost --identities
// meta-server/m1,sorter/s1,...`. Each identity gets a credentials
// directory DIR/<name> (ca.pem, cert.pem, key.pem), the layout services'
// --tls-* flags and clients' --credentials take.
func runCerts(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "tistream-tls", "where to write")
	hosts := fs.String("hosts", "127.0.0.1,localhost", "DNS names and IPs every certificate is valid for as a server")
	ids := fs.String("identities", "meta-server/meta-server,dispatcher/dispatcher,sorter/sorter,schema-registry/schema-registry,api-server/api-server,etcd/etcd,admin/admin,upstream/upstream",
		"comma-separated identities: <role>/<name>, or reader/<tenants>/<name>")
	validity := fs.Duration("validity", fleetCertValidity, "how long the certificates are valid")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ca, err := newFleetCA(*dir, strings.Split(*hosts, ","))
	if err != nil {
		fmt.Fprintf(stderr, "tistream certs: %v\n", err)
		return 1
	}
	for _, id := range strings.Split(*ids, ",") {
		parts := strings.Split(id, "/")
		// etcd's server certificate names no TiStream role.
		if _, err := auth.ParseRole(parts[0]); (err != nil && parts[0] != "etcd") || len(parts) < 2 {
			fmt.Fprintf(stderr, "tistream certs: identity %q: want <role>/<name> (roles: a service's, upstream, reader, admin, or etcd)\n", id)
			return 2
		}
		leaf, err := ca.ca.Issue(id, ca.hosts, *validity)
		if err == nil {
			_, err = ca.write(parts[len(parts)-1], leaf)
		}
		if err != nil {
			fmt.Fprintf(stderr, "tistream certs: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "wrote a CA, %d credentials directories and token keys (%s, %s) under %s\n",
		len(strings.Split(*ids, ",")), ca.tokenKeys, ca.tokenSigner, ca.dir)
	return 0
}
