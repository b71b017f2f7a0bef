//go:build linux

package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tistreamBin is built once by TestMain.
var tistreamBin string

func TestMain(m *testing.M) {
	// Every process the tests start overwrites the memory it hands back for
	// reuse (docs/operations.md, TISTREAM_DEBUG_POISON): a reference kept
	// past its release then reads garbage, and the checks against the
	// truth fail, instead of reading by chance what it expects.
	os.Setenv("TISTREAM_DEBUG_POISON", "1")
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "tistream-e2e-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		tistreamBin = filepath.Join(dir, "tistream")
		build := exec.Command("go", "build", "-o", tistreamBin, "github.com/tistream/tistream/services/cmd/tistream")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: build tistream:", err)
			return 1
		}
		return m.Run()
	}())
}

// proc is one tistream process started by a test, stopped (SIGTERM, then
// SIGKILL after a grace period) when the test ends. Its output goes to a
// file that is printed when the test fails.
type proc struct {
	name   string
	cmd    *exec.Cmd
	out    string
	exited chan struct{}
	err    error
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tistreamBin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group (stopped as a whole), killed if the test
	// binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(t, 20*time.Second)
		b, _ := os.ReadFile(out)
		if t.Failed() {
			t.Logf("---- %s (%s) output, last 4 KiB:\n%s", name, strings.Join(args, " "), tail(b, 4096))
		}
		keepLog(t, name, b)
	})
	return p
}

func (p *proc) stop(t *testing.T, grace time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		t.Errorf("%s did not stop within %s of SIGTERM; killed", p.name, grace)
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// keepLog copies a process's whole log into
// $TISTREAM_E2E_KEEP_LOGS/<test>/<name>.log when that is set (debugging:
// the test's temporary directory is removed with it, and a failed test
// prints only the last 4 KiB, which rarely hold the start of a fault).
func keepLog(t *testing.T, name string, b []byte) {
	dir := os.Getenv("TISTREAM_E2E_KEEP_LOGS")
	if dir == "" {
		return
	}
	dir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("keep log of %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".log"), b, 0o644); err != nil {
		t.Logf("keep log of %s: %v", name, err)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// run runs a tistream command to completion within timeout, with stdout
// to a file, and fails the test with its output if it fails.
func run(t *testing.T, timeout time.Duration, stdout string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tistreamBin, args...)
	var errBuf strings.Builder
	cmd.Stderr = &errBuf
	if stdout != "" {
		f, err := os.Create(stdout)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdout = f
	} else {
		cmd.Stdout = &errBuf
	}
	if err := cmd.Run(); err != nil {
		t.Fatalf("tistream %s: %v (ctx: %v)\n%s", strings.Join(args, " "), err, ctx.Err(), tail([]byte(errBuf.String()), 8192))
	}
	t.Logf("tistream %s:\n%s", args[0], tail([]byte(errBuf.String()), 2048))
}

// freeAddr returns a 127.0.0.1 address with a port free at the time of the
// call and never handed out before in this test binary: the kernel may give
// a just-closed port to the next listener, and two services of one fleet
// must not be told the same port.
func freeAddr(t *testing.T) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for try := 0; try < 100; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if !portsGiven[addr] {
			portsGiven[addr] = true
			return addr
		}
	}
	t.Fatal("no fresh free port in 100 tries")
	return ""
}

var (
	portsMu    sync.Mutex
	portsGiven = map[string]bool{}
)

// waitReady polls a service's /readyz until it answers 200, the process
// exits, or the timeout passes.
func waitReady(t *testing.T, p *proc, httpAddr string, timeout time.Duration) {
	t.Helper()
	waitHTTP(t, p, "http://"+httpAddr+"/readyz", timeout)
}

// waitHTTP polls url until it answers 200, the process exits, or the
// timeout passes.
func waitHTTP(t *testing.T, p *proc, url string, timeout time.Duration) {
	t.Helper()
	waitHTTPWith(t, p, &http.Client{Timeout: time.Second}, url, timeout)
}

// waitHTTPWith is waitHTTP with a client of the caller's (TLS).
func waitHTTPWith(t *testing.T, p *proc, client *http.Client, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if !p.running() {
			t.Fatalf("%s exited before it was ready: %v", p.name, p.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s after %s (last: %v)", p.name, url, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
