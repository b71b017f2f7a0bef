package objstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// credentialsFileRefresh is how long credentials read from a credentials
// file are used before the file is read again (a rotated secret takes
// effect within this long).
const credentialsFileRefresh = 5 * time.Minute

// credentialsProfile is the profile of a credentials file that is used
// when none is named.
const credentialsProfile = "default"

// fileCredentials provides the credentials of one profile of an AWS shared
// credentials file ([default] when profile is ""), reading the file again
// whenever the SDK's cache asks (every credentialsFileRefresh). If a later
// read fails, the last good credentials stay in use for a short while, so a
// file being replaced does not fail requests.
type fileCredentials struct {
	path    string
	profile string

	mu   sync.Mutex
	last aws.Credentials
}

// Retrieve implements aws.CredentialsProvider.
func (f *fileCredentials) Retrieve(context.Context) (aws.Credentials, error) {
	c, err := readCredentialsFile(f.path, f.profile)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		if f.last.HasKeys() {
			c = f.last
			c.Expires = time.Now().Add(30 * time.Second)
			return c, nil
		}
		return aws.Credentials{}, err
	}
	c.Source = "tistream credentials_file"
	c.CanExpire, c.Expires = true, time.Now().Add(credentialsFileRefresh)
	f.last = c
	return c, nil
}

// readCredentialsFile parses one profile ("" = default) of an AWS shared
// credentials file. Its errors name the file, the profile and what is
// wrong, never a line of its content (which may hold the secret).
func readCredentialsFile(path, profile string) (aws.Credentials, error) {
	if profile == "" {
		profile = credentialsProfile
	}
	// The SDK treats an unreadable file as empty; read it first so that a
	// missing file or a permission problem is reported as such.
	if _, err := os.ReadFile(path); err != nil {
		return aws.Credentials{}, fmt.Errorf("s3 credentials file: %w", err) // the *PathError names the path
	}
	want := fmt.Sprintf("want [%s] with aws_access_key_id and aws_secret_access_key (the AWS shared credentials format)", profile)
	sc, err := config.LoadSharedConfigProfile(context.Background(), profile, func(o *config.LoadSharedConfigOptions) {
		o.CredentialsFiles = []string{path}
		o.ConfigFiles = []string{} // not ~/.aws/config
	})
	var noProfile config.SharedConfigProfileNotExistError
	switch {
	case errors.As(err, &noProfile):
		return aws.Credentials{}, fmt.Errorf("s3 credentials file %s has no [%s] profile; %s", path, profile, want)
	case err != nil:
		return aws.Credentials{}, fmt.Errorf("s3 credentials file %s cannot be parsed; %s", path, want)
	case !sc.Credentials.HasKeys():
		return aws.Credentials{}, fmt.Errorf("s3 credentials file %s: profile [%s] has no static key; %s", path, profile, want)
	}
	return sc.Credentials, nil
}

// OpenProfile opens the store rawURL names, like Open, except that an
// s3:// store signs its requests with the credentials of profile in the AWS
// shared credentials file credsFile (read again every
// credentialsFileRefresh, like credentials_file). Such a URL must not name a
// credentials_file of its own. With profile "" it is Open. file:// and mem://
// stores have no credentials: the profile does not apply to them.
func OpenProfile(ctx context.Context, rawURL, credsFile, profile string) (Store, error) {
	u, err := url.Parse(rawURL)
	if profile == "" || err != nil || u.Scheme != "s3" {
		return Open(ctx, rawURL)
	}
	if credsFile == "" {
		return nil, fmt.Errorf("s3 credentials profile %q: no credentials file is configured to hold it", profile)
	}
	cfg, err := parseS3URL(u)
	if err != nil {
		return nil, err
	}
	if cfg.CredentialsFile != "" {
		return nil, fmt.Errorf("s3 URL names its own credentials_file and a credentials profile %q is given too: give one of them", profile)
	}
	cfg.CredentialsFile, cfg.CredentialsProfile = credsFile, profile
	return NewS3(ctx, cfg)
}

// loadCAFile reads a PEM bundle into a certificate pool.
func loadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("s3 CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("s3 CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// isCertificateError reports a TLS handshake that failed because the
// server's certificate was not trusted (unknown authority, wrong name,
// expired): retrying cannot help, and the operator needs to be told.
func isCertificateError(err error) bool {
	var verr *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verr) || errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid)
}
