// Package tlsx gives TiStream's servers and clients their TLS settings from
// certificate files that an operator (or cert-manager) can replace at any
// time: a certificate and key, and a CA bundle, each re-read when the files
// change, so certificates rotate without a restart. It also makes throw-away
// CAs and certificates for `tistream up` and the tests.
package tlsx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Files names the PEM files of one identity and the CAs it trusts.
type Files struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	CAFile   string `yaml:"ca_file"`
}

// IsZero reports whether no file is set.
func (f Files) IsZero() bool { return f.CertFile == "" && f.KeyFile == "" && f.CAFile == "" }

// Validate names what is missing: all three files are needed.
func (f Files) Validate(flagPrefix string) error {
	var errs []error
	if f.CertFile == "" {
		errs = append(errs, fmt.Errorf("--%stls-cert is required", flagPrefix))
	}
	if f.KeyFile == "" {
		errs = append(errs, fmt.Errorf("--%stls-key is required", flagPrefix))
	}
	if f.CAFile == "" {
		errs = append(errs, fmt.Errorf("--%stls-ca is required", flagPrefix))
	}
	return errors.Join(errs...)
}

// checkEvery bounds how often the files are looked at (a stat each): a
// rotation is picked up within this time.
const checkEvery = 2 * time.Second

// Source serves the current certificate and CA pool from Files, re-reading
// them when their size or modification time changes. A file that is being
// replaced (unreadable, or a key that does not match) keeps the previous
// material in use and is logged; it is tried again at the next check.
type Source struct {
	files Files
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	leaf    *x509.Certificate
	pool    *x509.CertPool
	stamp   string // what the files looked like when loaded
	checked time.Time
	loads   int
}

// NewSource loads the files once; a failure here is an error (a service
// must not start without its certificate). A client may give only CAFile
// (it then presents no certificate).
func NewSource(files Files, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{files: files, log: log, now: time.Now}
	stamp, err := s.stampFiles()
	if err != nil {
		return nil, err
	}
	if err := s.load(stamp); err != nil {
		return nil, err
	}
	return s, nil
}

// Files are the files the source reads.
func (s *Source) Files() Files { return s.files }

// Loads counts the loads so far (1 after NewSource): a rotation adds one.
func (s *Source) Loads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads
}

// Certificate is the current certificate.
func (s *Source) Certificate() *tls.Certificate {
	s.refresh()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert
}

// Leaf is the current certificate, parsed.
func (s *Source) Leaf() *x509.Certificate {
	s.refresh()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leaf
}

// Pool is the current CA pool.
func (s *Source) Pool() *x509.CertPool {
	s.refresh()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pool
}

func (s *Source) stampFiles() (string, error) {
	var stamp string
	for _, p := range []string{s.files.CertFile, s.files.KeyFile, s.files.CAFile} {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		stamp += fmt.Sprintf("%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return stamp, nil
}

// refresh reloads the files when they changed, at most every checkEvery.
func (s *Source) refresh() {
	s.mu.Lock()
	now := s.now()
	due := now.Sub(s.checked) >= checkEvery
	if due {
		s.checked = now
	}
	old := s.stamp
	s.mu.Unlock()
	if !due {
		return
	}
	stamp, err := s.stampFiles()
	if err != nil {
		s.log.Warn("tls files unreadable; keeping the certificates in use", "err", err)
		return
	}
	if stamp == old {
		return
	}
	if err := s.load(stamp); err != nil {
		s.log.Warn("tls files changed but do not load; keeping the certificates in use", "err", err)
		return
	}
	s.log.Info("tls certificates reloaded", "cert_file", s.files.CertFile, "ca_file", s.files.CAFile)
}

func (s *Source) load(stamp string) error {
	var cert *tls.Certificate
	var leaf *x509.Certificate
	if s.files.CertFile != "" || s.files.KeyFile != "" {
		c, err := tls.LoadX509KeyPair(s.files.CertFile, s.files.KeyFile)
		if err != nil {
			return fmt.Errorf("tls: load %s and %s: %w", s.files.CertFile, s.files.KeyFile, err)
		}
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return fmt.Errorf("tls: parse %s: %w", s.files.CertFile, err)
		}
		c.Leaf = leaf
		cert = &c
	}
	if s.files.CAFile == "" {
		return errors.New("tls: a CA file is required")
	}
	pem, err := os.ReadFile(s.files.CAFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("tls: %s holds no PEM certificate", s.files.CAFile)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cert, s.leaf, s.pool, s.stamp = cert, leaf, pool, stamp
	s.loads++
	return nil
}
