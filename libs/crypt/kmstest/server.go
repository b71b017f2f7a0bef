package kmstest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/objstore/s3test"
)

const (
	// RequireEnv, set to "1", turns a missing local-kms into a test failure.
	RequireEnv = "TISTREAM_REQUIRE_KMS"
	// Region is the region the server runs in.
	Region = "us-east-1"

	binName      = "tistream-localkms"
	readyTimeout = 20 * time.Second
)

// started is the line the launcher prints once it listens on 127.0.0.1.
var started = regexp.MustCompile(`listening on 127\.0\.0\.1:([0-9]+)`)

// Server is a running local-kms.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	KMS      *crypt.AWSKMS
	logPath  string
}

// Start runs a fresh server for the test and stops it in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := s3test.FindTool(binName)
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("kmstest: %v (%s=1, so the KMS tests may not be skipped; run scripts/install-tools.sh)", err, RequireEnv)
		}
		t.Skipf("kmstest: %v; run scripts/install-tools.sh to run the AWS KMS tests", err)
	}
	dir := t.TempDir()
	s := &Server{logPath: filepath.Join(dir, "local-kms.log")}
	logf, err := os.Create(s.logPath)
	if err != nil {
		t.Fatalf("kmstest: %v", err)
	}
	defer logf.Close()
	// scripts/localkms: local-kms on a loopback address only, a port the
	// kernel picks, our region and a fresh database.
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-region", Region, "-data", filepath.Join(dir, "data"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{}
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("kmstest: start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("kmstest: local-kms output:\n%s", s.log())
		}
	})
	port, err := s.waitPort(exited)
	if err != nil {
		t.Fatalf("kmstest: %v\nserver output:\n%s", err, s.log())
	}
	s.Endpoint = "http://127.0.0.1:" + port
	s.KMS, err = crypt.NewAWSKMS(context.Background(), crypt.AWSConfig{Region: Region, Endpoint: s.Endpoint,
		AccessKey: "kmstest", SecretKey: "kmstest-secret"})
	if err != nil {
		t.Fatalf("kmstest: %v", err)
	}
	return s
}

// waitPort polls the log for the listening line.
func (s *Server) waitPort(exited <-chan error) (string, error) {
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if f, err := os.Open(s.logPath); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if m := started.FindStringSubmatch(sc.Text()); m != nil {
					f.Close()
					return m[1], nil
				}
			}
			f.Close()
		}
		select {
		case err := <-exited:
			return "", fmt.Errorf("local-kms exited before listening: %v", err)
		case <-tick.C:
		}
	}
	return "", fmt.Errorf("local-kms did not listen within %s", readyTimeout)
}

func (s *Server) log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// CreateKey makes a symmetric key and returns its reference, aws-kms:ID.
func (s *Server) CreateKey(t testing.TB) string {
	t.Helper()
	out, err := s.KMS.Client().CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("kmstest: create key: %v", err)
	}
	return crypt.AWSScheme + ":" + aws.ToString(out.KeyMetadata.KeyId)
}

// SetDisabled disables or enables the key of ref.
func (s *Server) SetDisabled(t testing.TB, ref string, disabled bool) {
	t.Helper()
	id := ref[len(crypt.AWSScheme)+1:]
	var err error
	if disabled {
		_, err = s.KMS.Client().DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: &id})
	} else {
		_, err = s.KMS.Client().EnableKey(context.Background(), &kms.EnableKeyInput{KeyId: &id})
	}
	if err != nil {
		t.Fatalf("kmstest: set %s disabled=%v: %v", ref, disabled, err)
	}
}
