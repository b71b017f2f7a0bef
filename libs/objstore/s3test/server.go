package s3test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tistream/tistream/libs/tlsx"
)

const (
	// RequireEnv, set to "1", turns a missing versitygw into a test failure.
	RequireEnv = "TISTREAM_REQUIRE_S3"
	// Region is the region the server is started with and URLs name.
	Region = "us-east-1"

	binName      = "versitygw"
	healthPath   = "/health"
	readyTimeout = 20 * time.Second
	stopTimeout  = 10 * time.Second
	// startTries bounds restarts when the free port we picked is taken by
	// someone else before versitygw binds it.
	startTries = 3
)

// Server is a running versitygw with one empty bucket.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT, or https:// with Options.TLS
	Bucket    string
	AccessKey string
	SecretKey string
	// CredentialsFile holds AccessKey and SecretKey in the AWS shared
	// credentials format ([default]), for the credentials_file parameter.
	CredentialsFile string
	// CA signed the server's certificate and CAFile holds it in PEM (for
	// the ca_file parameter); nil and "" without Options.TLS.
	CA     *tlsx.CA
	CAFile string

	logPath string
}

// Options change how Start runs the server.
type Options struct {
	// TLS serves https with a certificate for 127.0.0.1 signed by a
	// throw-away ECDSA CA made for the server (tlsx.NewCA; Server.CA,
	// Server.CAFile).
	TLS bool
}

// URL returns an s3:// URL for objstore.Open naming the server's bucket under
// prefix (which may be empty), with the endpoint, the credentials file and,
// with TLS, the CA file. No secret is in the URL.
func (s *Server) URL(prefix string) string {
	q := url.Values{}
	q.Set("endpoint", s.Endpoint)
	q.Set("region", Region)
	q.Set("credentials_file", s.CredentialsFile)
	if s.CAFile != "" {
		q.Set("ca_file", s.CAFile)
	}
	u := url.URL{Scheme: "s3", Host: s.Bucket, Path: "/" + prefix, RawQuery: q.Encode()}
	return u.String()
}

// Log returns what the server printed so far, for failure messages.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	const keep = 8 << 10
	if len(b) > keep {
		b = append([]byte("...\n"), b[len(b)-keep:]...)
	}
	return string(b)
}

// Start runs a fresh server for the test and stops it in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	bin, err := findBinary()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("s3test: %v (%s=1, so the S3 tests may not be skipped; run scripts/install-tools.sh)", err, RequireEnv)
		}
		t.Skipf("s3test: %v; run scripts/install-tools.sh to run the S3 tests", err)
	}
	dir := t.TempDir()
	s := &Server{
		Bucket:    "tistream-test",
		AccessKey: "tistreamtestkey",
		SecretKey: "tistream-test-secret-1234",
		logPath:   filepath.Join(dir, "versitygw.log"),
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	s.CredentialsFile = filepath.Join(dir, "credentials")
	creds := fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", s.AccessKey, s.SecretKey)
	if err := os.WriteFile(s.CredentialsFile, []byte(creds), 0o600); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	var tlsFiles []string
	if o.TLS {
		if tlsFiles, err = s.writeTLS(dir); err != nil {
			t.Fatalf("s3test: %v", err)
		}
	}
	for try := 1; ; try++ {
		err = s.start(t, bin, data, tlsFiles)
		if err == nil {
			break
		}
		if try == startTries {
			t.Fatalf("s3test: start %s: %v\nserver output:\n%s", bin, err, s.Log())
		}
		t.Logf("s3test: start %s (try %d of %d): %v; retrying on another port", bin, try, startTries, err)
	}
	if err := s.createBucket(); err != nil {
		t.Fatalf("s3test: %v\nserver output:\n%s", err, s.Log())
	}
	return s
}

// writeTLS makes the CA and the server's certificate and key, and returns
// versitygw's --cert and --key arguments.
func (s *Server) writeTLS(dir string) ([]string, error) {
	ca, err := tlsx.NewCA("s3test CA", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Issue("s3test/versitygw", []string{"127.0.0.1", "localhost"}, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	s.CA, s.CAFile = ca, filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(s.CAFile, ca.CertPEM, 0o600); err != nil {
		return nil, err
	}
	f, err := tlsx.WriteLeaf(dir, "server", leaf, s.CAFile)
	if err != nil {
		return nil, err
	}
	return []string{"--cert", f.CertFile, "--key", f.KeyFile}, nil
}

// httpClient reaches the server (with TLS, trusting its CA), each request
// taking at most timeout (0 = no limit).
func (s *Server) httpClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if s.CA != nil {
		roots := x509.NewCertPool()
		roots.AddCert(s.CA.Cert)
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Timeout: timeout, Transport: tr}
}

// start launches versitygw on a free port and waits until it answers. On
// success the process is stopped by t.Cleanup; on error it is already gone.
func (s *Server) start(t testing.TB, bin, data string, tlsArgs []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy of the descriptor
	args := append([]string{"--port", addr, "--region", Region, "--health", healthPath}, tlsArgs...)
	cmd := exec.Command(bin, append(args, "posix", data)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Keep the server's own config sources out: a developer's VGW_* or
	// ROOT_* variables must not change what the tests run against. The
	// root credentials go in the environment, not the process list.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"ROOT_ACCESS_KEY_ID=" + s.AccessKey, "ROOT_SECRET_ACCESS_KEY=" + s.SecretKey}
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.Endpoint = "http://" + addr
	if len(tlsArgs) > 0 {
		s.Endpoint = "https://" + addr
	}
	if err := waitReady(s.httpClient(time.Second), s.Endpoint+healthPath, exited); err != nil {
		stop(cmd, exited)
		return err
	}
	t.Cleanup(func() {
		stop(cmd, exited)
		if t.Failed() {
			t.Logf("s3test: versitygw output:\n%s", s.Log())
		}
	})
	return nil
}

// waitReady polls the health endpoint until it answers 200, the process
// exits, or readyTimeout passes.
func waitReady(client *http.Client, healthURL string, exited <-chan error) error {
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(healthURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %s (last: %v)", readyTimeout, errOrStatus(err, resp))
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("exited before becoming ready: %v", werr)
		case <-tick.C:
		}
	}
}

func errOrStatus(err error, resp *http.Response) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// stop ends the server's process group and waits for it to exit.
func stop(cmd *exec.Cmd, exited <-chan error) {
	terminate(cmd)
	select {
	case <-exited:
		return
	case <-time.After(stopTimeout):
	}
	kill(cmd)
	<-exited
}

// createBucket makes the test bucket through the S3 API, so the bucket is
// set up exactly as a client-created one (owner, ACL) would be.
func (s *Server) createBucket() error {
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		HTTPClient:   s.httpClient(0),
	})
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &s.Bucket}); err != nil {
		return fmt.Errorf("create bucket %q at %s: %w", s.Bucket, s.Endpoint, err)
	}
	return nil
}

// freePort asks the kernel for a free port on 127.0.0.1. Another process may
// take it before versitygw binds it; Start retries on another port then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// findBinary prefers the pinned build in <repo>/.tools/bin over whatever
// versitygw $PATH has, so the tests run against the version the docs name.
func findBinary() (string, error) { return FindTool(binName) }

// FindTool finds a test server built by scripts/install-tools.sh: the
// pinned build in <repo>/.tools/bin, else name on $PATH.
func FindTool(name string) (string, error) {
	if root, err := repoRoot(); err == nil {
		p := filepath.Join(root, ".tools", "bin", name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", errors.New(name + " not found in <repo>/.tools/bin or $PATH")
}

// repoRoot walks up from the working directory to the directory holding
// go.work.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 { // deeper than any real checkout; keeps the loop bounded
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("no go.work above the working directory")
}
