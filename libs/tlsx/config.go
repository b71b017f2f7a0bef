package tlsx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
)

// ServerConfig is a server's TLS configuration from s: its certificate,
// and client certificates verified against s's CAs — required (the fleet's
// internal services: every caller is a member) or verified when given (the
// public API, whose clients may authenticate with a token instead). The
// files are looked at again on every handshake (at most every few seconds),
// so rotated certificates are served without a restart.
func ServerConfig(s *Source, requireClientCert bool) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if requireClientCert {
		auth = tls.RequireAndVerifyClientCert
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert := s.Certificate()
			if cert == nil {
				return nil, errors.New("tls: no server certificate")
			}
			return &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"},
				Certificates: []tls.Certificate{*cert}, ClientCAs: s.Pool(), ClientAuth: auth}, nil
		},
	}
}

// ClientConfig is a client's TLS configuration from s: the server's
// certificate is verified against s's current CAs for the name dialled
// (DNS name or IP address), and s's certificate, if it has one, is
// presented. Verification is done by hand (VerifyConnection) rather than
// with RootCAs so that a rotated CA bundle applies to new connections at
// once.
func ClientConfig(s *Source) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c := s.Certificate(); c != nil {
				return c, nil
			}
			return &tls.Certificate{}, nil // none: the server decides
		},
		InsecureSkipVerify: true, // verified in VerifyConnection, against the current pool
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyServer(cs, s.Pool())
		},
	}
}

func verifyServer(cs tls.ConnectionState, pool *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	name := cs.ServerName
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: name,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return fmt.Errorf("tls: server certificate for %q: %w", name, err)
	}
	return nil
}
