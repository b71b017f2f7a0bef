package client_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// apiAddr is the api-server of the fleet TestMain starts for the examples:
// `tistream up` (built from this repository, in its own process, so the
// client module keeps depending on nothing of the servers), with a
// simulated tenant 1 pushed through it.
var apiAddr string

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "^$" {
		os.Exit(m.Run()) // benchmarks or fuzzing only: no examples, no fleet
	}
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "tistream-client-examples")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		stop, err := startFleet(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "client examples: start a fleet:", err)
			return 1
		}
		defer stop()
		return m.Run()
	}())
}

// startFleet builds tistream, runs `tistream up --insecure` and pushes five
// seconds of a simulated cluster through it.
func startFleet(dir string) (stop func(), err error) {
	bin := filepath.Join(dir, "tistream")
	build := exec.Command("go", "build", "-o", bin, "github.com/tistream/tistream/services/cmd/tistream")
	build.Dir = ".." // the repository root, in the workspace
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build tistream: %v\n%s", err, out)
	}
	logPath := filepath.Join(dir, "up.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	up := exec.Command(bin, "up", "--insecure", "--data-dir", filepath.Join(dir, "fleet"), "--etcd-port", "0", "--meta-port", "0",
		"--api-port", "0", "--dispatchers", "1", "--sorters", "1")
	up.Stdout, up.Stderr = logf, logf
	up.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := up.Start(); err != nil {
		return nil, err
	}
	stop = func() {
		_ = syscall.Kill(-up.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = up.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-up.Process.Pid, syscall.SIGKILL)
		}
		logf.Close()
	}
	addrs, err := waitUp(logPath, 90*time.Second)
	if err != nil {
		stop()
		return nil, err
	}
	apiAddr = addrs["api-server"]
	sim := exec.Command(bin, "sim", "--insecure", "--store", addrs["object store"], "--meta", addrs["meta-server"],
		"--truth", filepath.Join(dir, "truth.jsonl"), "--tenants", "1", "--duration", "5s", "--rows-per-sec", "500",
		"--ddl-every", "1s", "--quiet")
	if out, err := sim.CombinedOutput(); err != nil {
		stop()
		return nil, fmt.Errorf("tistream sim: %v\n%s", err, out)
	}
	return stop, nil
}

// waitUp reads the addresses `tistream up` prints.
func waitUp(logPath string, timeout time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), "pull a tenant:") {
			addrs := map[string]string{}
			sc := bufio.NewScanner(strings.NewReader(string(b)))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				switch {
				case len(f) >= 3 && f[0] == "object" && f[1] == "store":
					addrs["object store"] = f[2]
				case len(f) >= 2 && strings.HasPrefix(f[1], "grpc="):
					addrs[f[0]] = strings.TrimPrefix(f[1], "grpc=")
				}
			}
			if addrs["api-server"] == "" || addrs["meta-server"] == "" || addrs["object store"] == "" {
				return nil, fmt.Errorf("tistream up printed no addresses:\n%s", b)
			}
			return addrs, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(logPath)
	return nil, fmt.Errorf("tistream up did not come up within %s:\n%s", timeout, b)
}

// TestExamplesHaveAFleet guards the examples' premise.
func TestExamplesHaveAFleet(t *testing.T) {
	if apiAddr == "" {
		t.Fatal("no api-server")
	}
}
