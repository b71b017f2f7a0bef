package s3test

import (
	"context"
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
	Endpoint  string // http://127.0.0.1:PORT
	Bucket    string
	AccessKey string
	SecretKey string

	logPath string
}

// URL returns an s3:// URL for objstore.Open naming the server's bucket under
// prefix (which may be empty), with the credentials and endpoint inline.
func (s *Server) URL(prefix string) string {
	q := url.Values{}
	q.Set("endpoint", s.Endpoint)
	q.Set("region", Region)
	q.Set("access_key", s.AccessKey)
	q.Set("secret_key", s.SecretKey)
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
	for try := 1; ; try++ {
		err = s.start(t, bin, data)
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

// start launches versitygw on a free port and waits until it answers. On
// success the process is stopped by t.Cleanup; on error it is already gone.
func (s *Server) start(t testing.TB, bin, data string) error {
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
	cmd := exec.Command(bin,
		"--port", addr,
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", Region,
		"--health", healthPath,
		"posix", data)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Keep the server's own config sources out: a developer's VGW_* or
	// ROOT_* variables must not change what the tests run against.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.Endpoint = "http://" + addr
	if err := waitReady(s.Endpoint+healthPath, exited); err != nil {
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
func waitReady(healthURL string, exited <-chan error) error {
	client := &http.Client{Timeout: time.Second}
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
func findBinary() (string, error) {
	if root, err := repoRoot(); err == nil {
		p := filepath.Join(root, ".tools", "bin", binName)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(binName); err == nil {
		return p, nil
	}
	return "", errors.New("versitygw not found in <repo>/.tools/bin or $PATH")
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
