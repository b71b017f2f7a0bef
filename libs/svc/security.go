package svc

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tistream/tistream/libs/auth"
	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/tlsx"
)

// Security are a service's TLS and authentication settings
// (docs/security.md). By default every server speaks TLS, fleet members
// authenticate each other with certificates, and every call is authorized
// by libs/auth's policy; Insecure turns all of it off for development.
type Security struct {
	TLS tlsx.Files `yaml:"tls"`
	// TokenKeysFile holds the PEM public keys that verify bearer tokens
	// (readers and admins of the public API, upstreams and admins of the
	// meta-server); empty = only certificates are accepted.
	TokenKeysFile string `yaml:"token_keys_file"`
	// Insecure serves plaintext and authorizes nothing: anyone who reaches
	// a port can read every tenant and forge data. Development only.
	Insecure bool `yaml:"insecure"`
}

// RegisterFlags binds the settings to flags named prefix+name.
func (s *Security) RegisterFlags(fs *flag.FlagSet, prefix string) {
	fs.StringVar(&s.TLS.CertFile, prefix+"tls-cert", s.TLS.CertFile, "PEM certificate of this service (served, and presented to the services it calls); re-read when it changes")
	fs.StringVar(&s.TLS.KeyFile, prefix+"tls-key", s.TLS.KeyFile, "PEM private key of --tls-cert")
	fs.StringVar(&s.TLS.CAFile, prefix+"tls-ca", s.TLS.CAFile, "PEM bundle of the CAs that sign the fleet's certificates (peers are verified against it)")
	fs.StringVar(&s.TokenKeysFile, prefix+"token-keys", s.TokenKeysFile, "PEM public keys (Ed25519 or ECDSA) that verify bearer tokens; empty = certificates only")
	fs.BoolVar(&s.Insecure, prefix+"insecure", s.Insecure, "plaintext and no authentication: anyone who reaches a port can read and forge everything (development only)")
}

// Validate names what is missing.
func (s *Security) Validate(prefix string) error {
	if s.Insecure {
		return nil
	}
	if err := s.TLS.Validate(prefix); err != nil {
		return fmt.Errorf("%w (or --%sinsecure for a plaintext development setup)", err, prefix)
	}
	return nil
}

// securedServer builds a server's TLS credentials and authorization
// interceptors. public servers (the api-server, the meta-server) accept
// callers without a client certificate, who must then send a bearer token.
func securedServer(sec Security, public bool, log *slog.Logger, reg prometheus.Registerer) (grpcx.ServerOptions, error) {
	if sec.Insecure {
		log.Warn("serving plaintext without authentication (--insecure)")
		return grpcx.ServerOptions{}, nil
	}
	src, err := tlsx.NewSource(sec.TLS, log)
	if err != nil {
		return grpcx.ServerOptions{}, err
	}
	if src.Certificate() == nil {
		return grpcx.ServerOptions{}, errors.New("tls: a server needs --tls-cert and --tls-key")
	}
	var tokens *auth.Verifier
	if sec.TokenKeysFile != "" {
		if tokens, err = auth.NewVerifier(sec.TokenKeysFile); err != nil {
			return grpcx.ServerOptions{}, err
		}
	}
	g := auth.NewGuard(tokens, log, reg)
	return grpcx.ServerOptions{
		Creds: credentials.NewTLS(tlsx.ServerConfig(src, !public)),
		Unary: []grpc.UnaryServerInterceptor{g.Unary}, Stream: []grpc.StreamServerInterceptor{g.Stream},
	}, nil
}

// ClientCredentials are what a service presents when it calls another
// (its own certificate, verifying the callee against the CAs), or
// plaintext when insecure.
func ClientCredentials(sec Security, log *slog.Logger) (credentials.TransportCredentials, error) {
	if sec.Insecure {
		return insecure.NewCredentials(), nil
	}
	src, err := tlsx.NewSource(sec.TLS, log)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(tlsx.ClientConfig(src)), nil
}
