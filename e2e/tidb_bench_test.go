//go:build linux

package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTiDBSysbench measures the capture: sysbench against the embedded
// TiDB without the capture, then with it feeding a fleet of processes
// while the tenant is pulled live and every row's lag from its TiDB commit
// to the puller is measured; then the pulled image is checked against
// TiDB. It runs under `make bench-tidb` (TISTREAM_TIDB_BENCH=1) and prints
// the figures docs/benchmarks.md quotes.
func TestTiDBSysbench(t *testing.T) {
	if os.Getenv("TISTREAM_TIDB_BENCH") != "1" {
		t.Skip("TISTREAM_TIDB_BENCH=1 runs the TiDB benchmark (make bench-tidb)")
	}
	bin := tidbBin(t)
	d := "30s"
	if v := os.Getenv("TISTREAM_TIDB_BENCH_DURATION"); v != "" {
		d = v
	}
	dir := t.TempDir()

	// Without the capture.
	mysqlAddr, httpAddr := freeAddr(t), freeAddr(t)
	_, port, _ := strings.Cut(mysqlAddr, ":")
	base := startTo(t, "tidb-no-capture", filepath.Join(dir, "base.out"), bin, "serve", "--data-dir", filepath.Join(dir, "base"),
		"--port", port, "--http", httpAddr, "--no-capture")
	waitTCP(t, base, mysqlAddr, 3*time.Minute)
	without := benchOut(t, bin, "bench", "--mysql", mysqlAddr, "--duration", d)
	base.stop(t, 30*time.Second)

	// With the capture, into a fleet, pulled live.
	f := startProcFleet(t, procFleetOptions{Metas: 1, Sorters: 2, Dispatchers: 1})
	cl := f.clients()
	mysqlAddr, httpAddr = freeAddr(t), freeAddr(t)
	_, port, _ = strings.Cut(mysqlAddr, ":")
	serve, up := startPiped(t, f.dir, [2]string{"tidb-serve", "upstream"},
		exec.Command(bin, "serve", "--data-dir", filepath.Join(f.dir, "tidb"), "--port", port, "--http", httpAddr,
			"--lines", "-", "--flush-interval", "500ms", "--chaos-every", "2s"),
		exec.Command(tistreamBin, append([]string{"upstream", "--store", f.bufferURL, "--meta", f.first("meta-server").grpcAddr,
			"--initial-ranges", "2"}, cl.upstream...)...))
	httpURL := "http://" + httpAddr
	waitHTTP(t, serve, httpURL+"/stream", 3*time.Minute)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if ts := f.tasks(1, 2*time.Second); ts != nil && len(ts.Ranges) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tenant 1 was not registered within a minute")
		}
	}
	pulled := filepath.Join(dir, "pulled.jsonl")
	lagOut := filepath.Join(dir, "lag.out")
	pull, lag := startPiped(t, dir, [2]string{"pull-tenant", "lag"},
		exec.Command(tistreamBin, append([]string{"pull", "--api", f.first("api-server").grpcAddr, "--tenant", "1"}, cl.admin...)...),
		exec.Command("sh", "-c", "tee "+pulled+" | "+bin+" lag --skip 5s > "+lagOut))
	with := benchOut(t, bin, "bench", "--mysql", mysqlAddr, "--duration", d)
	end := getText(t, httpURL+"/tso")
	endTs, _ := strconv.ParseUint(end, 10, 64)
	waitPulled(t, pull, pulled, endTs, 3*time.Minute)
	stopPiped(t, pull, lag)
	lagLine, _ := os.ReadFile(lagOut)
	runBin(t, bin, 5*time.Minute, "check", "--http", httpURL, "--mysql", mysqlAddr, "--pulled", pulled, "--points", "5")
	stopPiped(t, serve, up)
	t.Logf("sysbench without the capture:\n%s", without)
	t.Logf("sysbench with the capture into the fleet:\n%s", with)
	t.Logf("commit-to-puller %s", lagLine)
}

// benchOut runs tistream-tidb bench and returns its figures.
func benchOut(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, tail(out, 4096))
	}
	return string(out)
}

// waitTCP waits until addr accepts connections.
func waitTCP(t *testing.T, p *proc, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if c, err := netDial(addr); err == nil {
			c.Close()
			return
		}
		if !p.running() {
			t.Fatalf("%s exited: %v", p.name, p.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not accepting on %s after %s", p.name, addr, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func netDial(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, time.Second) }
