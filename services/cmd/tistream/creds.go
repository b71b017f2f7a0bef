package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/tlsx"
)

// clientCreds are a command's credentials for calling a fleet (pull,
// admin, sim --meta, sink): a credentials directory as `tistream up` and
// `tistream certs` write them (ca.pem, cert.pem, key.pem and optionally
// token: a bearer token), or the files one by one, or --insecure for a
// plaintext development fleet.
type clientCreds struct {
	dir, ca, cert, key, tokenFile string
	insecure                      bool
}

// credentialsEnv names a credentials directory when --credentials is not
// given.
const credentialsEnv = "TISTREAM_CREDENTIALS"

func (c *clientCreds) register(fs *flag.FlagSet) {
	fs.StringVar(&c.dir, "credentials", os.Getenv(credentialsEnv), "credentials directory: ca.pem, cert.pem, key.pem and/or token (tistream up prints one; default $"+credentialsEnv+")")
	fs.StringVar(&c.ca, "tls-ca", "", "PEM CA bundle that signs the fleet's certificates (overrides the directory's)")
	fs.StringVar(&c.cert, "tls-cert", "", "PEM client certificate (overrides the directory's)")
	fs.StringVar(&c.key, "tls-key", "", "PEM key of --tls-cert")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding a bearer token (tistream token) (overrides the directory's)")
	fs.BoolVar(&c.insecure, "insecure", false, "plaintext, no credentials: only for a fleet run with --insecure")
}

// files resolves the directory and the single flags into what to load.
func (c *clientCreds) files() (tlsx.Files, string) {
	f := tlsx.Files{CAFile: c.ca, CertFile: c.cert, KeyFile: c.key}
	tok := c.tokenFile
	if c.dir != "" {
		pick := func(cur *string, name string) {
			if p := filepath.Join(c.dir, name); *cur == "" && exists(p) {
				*cur = p
			}
		}
		pick(&f.CAFile, "ca.pem")
		pick(&f.CertFile, "cert.pem")
		pick(&f.KeyFile, "key.pem")
		pick(&tok, "token")
	}
	return f, tok
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// dial connects to addr with the credentials.
func (c *clientCreds) dial(addr string) (*grpc.ClientConn, error) {
	opts, err := c.dialOptions()
	if err != nil {
		return nil, err
	}
	return grpcx.Dial(addr, opts.creds, opts.extra...)
}

// dialMeta connects to a meta-server member with the credentials,
// following the leader: any member serves (a standby forwards), and the
// connection moves to the leader when a member redirects or names it
// (grpcx.LeaderConn).
func (c *clientCreds) dialMeta(addr string) (*grpcx.LeaderConn, error) {
	opts, err := c.dialOptions()
	if err != nil {
		return nil, err
	}
	return grpcx.DialLeader(addr, opts.creds, opts.extra...)
}

type dialOpts struct {
	creds credentials.TransportCredentials
	extra []grpc.DialOption
}

func (c *clientCreds) dialOptions() (dialOpts, error) {
	if c.insecure {
		return dialOpts{creds: insecure.NewCredentials()}, nil
	}
	f, tokFile := c.files()
	if f.CAFile == "" {
		return dialOpts{}, errors.New("no credentials: give --credentials DIR (tistream up prints one), --tls-ca with --tls-cert/--tls-key or --token-file, or --insecure for a plaintext fleet")
	}
	src, err := tlsx.NewSource(f, nil)
	if err != nil {
		return dialOpts{}, err
	}
	o := dialOpts{creds: credentials.NewTLS(tlsx.ClientConfig(src))}
	if tokFile != "" {
		b, err := os.ReadFile(tokFile)
		if err != nil {
			return dialOpts{}, fmt.Errorf("--token-file: %w", err)
		}
		o.extra = append(o.extra, grpc.WithPerRPCCredentials(bearer(strings.TrimSpace(string(b)))))
	}
	if f.CertFile == "" && tokFile == "" {
		return dialOpts{}, errors.New("credentials name a CA but neither a certificate nor a token to present")
	}
	return o, nil
}

// bearer sends a token with every call (over TLS only).
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// flag renders the credentials as command-line flags (for printed
// commands).
func (c *clientCreds) flag() string {
	switch {
	case c.insecure:
		return " --insecure"
	case c.dir != "":
		return " --credentials " + c.dir
	}
	return ""
}
