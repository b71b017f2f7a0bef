//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The TiDB upstream test needs the tistream-tidb binary, built from its own
// module (e2e/tidb, GOWORK=off: TiDB's pinned grpc, etcd and kvproto stay
// out of this one): `make tidb` builds it and runs these tests with
// TISTREAM_TIDB_BIN set. TISTREAM_REQUIRE_TIDB=1 turns a missing binary into
// a failure instead of a skip.
const (
	tidbBinEnv     = "TISTREAM_TIDB_BIN"
	tidbRequireEnv = "TISTREAM_REQUIRE_TIDB"
	tidbSoakEnv    = "TISTREAM_TIDB_DURATION"
)

func tidbBin(t *testing.T) string {
	bin := os.Getenv(tidbBinEnv)
	if bin == "" {
		if os.Getenv(tidbRequireEnv) == "1" {
			t.Fatalf("%s is not set (make tidb builds tistream-tidb and sets it)", tidbBinEnv)
		}
		t.Skipf("%s is not set: the TiDB upstream tests run under make tidb", tidbBinEnv)
	}
	return bin
}

// TestTiDBUpstream makes a real TiDB the upstream: an embedded TiDB on
// unistore with three stores, its capture piped into `tistream upstream`
// into a fleet of separate processes, the bank, DDL, split, big, long and
// crashed-client workloads over the MySQL protocol, then the tenant and
// several tables pulled through the api-server and each image compared
// with TiDB's own MVCC at six resolved ts, key by key; `tistream verify`
// checks the pulls of the tables created during the run against the
// capture's own record of what committed.
func TestTiDBUpstream(t *testing.T) {
	tidbUpstream(t, false)
}

// TestTiDBUpstreamSorterKilled is the same with a sorter killed (-9) in
// the middle of the workload and started again after its lease expired.
func TestTiDBUpstreamSorterKilled(t *testing.T) {
	tidbUpstream(t, true)
}

// tidbDuration is how long the workloads run: TISTREAM_TIDB_DURATION, or
// 20 s.
func tidbDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(tidbSoakEnv)); err == nil && d > 0 {
		return d
	}
	return 20 * time.Second
}

// tidbFleet is an embedded TiDB whose capture is piped into `tistream
// upstream`, feeding a fleet of processes; tenant 1 is registered.
type tidbFleet struct {
	f                  *procFleet
	cl                 clientCreds
	api                string // the api-server's gRPC address
	mysqlAddr, httpURL string // TiDB's MySQL protocol and tistream-tidb's HTTP API
	lines              string // a copy of the capture's lines
	serve, up          *proc
	lease              time.Duration
}

// startTiDBFleet starts a fleet (one meta-server and dispatcher, sorters
// sorters), tistream-tidb serve | tistream upstream into it, and waits
// until the tenant is registered.
func startTiDBFleet(t *testing.T, bin string, sorters int) *tidbFleet {
	lease := 3 * time.Second
	f := startProcFleet(t, procFleetOptions{Metas: 1, Sorters: sorters, Dispatchers: 1, Extra: map[string][]string{
		"meta-server": {"--schedule-interval", "500ms"},
		"sorter":      {"--lease-ttl", lease.String(), "--snapshot-interval", "1s"},
		"dispatcher":  {"--lease-ttl", lease.String()},
	}})
	tf := &tidbFleet{f: f, cl: f.clients(), api: f.first("api-server").grpcAddr, lease: lease}
	meta := f.first("meta-server").grpcAddr
	var httpAddr string
	tf.mysqlAddr, httpAddr = freeAddr(t), freeAddr(t)
	_, port, _ := strings.Cut(tf.mysqlAddr, ":")
	tf.lines = filepath.Join(f.dir, "lines.jsonl")
	tf.serve, tf.up = startPiped(t, f.dir, [2]string{"tidb-serve", "upstream"},
		exec.Command(bin, "serve", "--data-dir", filepath.Join(f.dir, "tidb"), "--port", port, "--http", httpAddr,
			"--lines", "-", "--lines-copy", tf.lines, "--flush-interval", "500ms", "--chaos-every", "1s", "--resolve-locks-after", "5s"),
		exec.Command(tistreamBin, append([]string{"upstream", "--store", f.bufferURL, "--meta", meta, "--initial-ranges", "2"}, tf.cl.upstream...)...))
	tf.httpURL = "http://" + httpAddr
	waitHTTP(t, tf.serve, tf.httpURL+"/stream", 3*time.Minute)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if ts := f.tasks(1, 2*time.Second); ts != nil && len(ts.Ranges) > 0 {
			return tf // registered by tistream upstream after the schema snapshot
		}
		if time.Now().After(deadline) {
			t.Fatal("tenant 1 was not registered within a minute of the TiDB stream's start")
		}
	}
}

// tso is a fresh TSO of the running TiDB.
func (tf *tidbFleet) tso(t *testing.T) uint64 {
	ts, err := strconv.ParseUint(getText(t, tf.httpURL+"/tso"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// checkCapture requires that the capture wrote no commit at or below a
// resolved ts it had published, and stops the pipe.
func (tf *tidbFleet) checkCapture(t *testing.T) {
	var st map[string]any
	getJSON(t, tf.httpURL+"/stats", &st)
	t.Logf("capture: %v", st)
	if v, _ := st["Violations"].(float64); v != 0 {
		t.Errorf("the capture wrote %v commits at or below a published resolved ts", v)
	}
	stopPiped(t, tf.serve, tf.up)
}

func tidbUpstream(t *testing.T, killSorter bool) {
	bin := tidbBin(t)
	duration := tidbDuration()
	tf := startTiDBFleet(t, bin, 2)
	f, cl, api, mysqlAddr, httpURL, lines := tf.f, tf.cl, tf.api, tf.mysqlAddr, tf.httpURL, tf.lines

	// The tenant is pulled while the workload runs, so the image is
	// checked at resolved ts from the whole run.
	pulled := filepath.Join(f.dir, "pulled.jsonl")
	pull := startTo(t, "pull-tenant", pulled, tistreamBin, append([]string{"pull", "--api", api, "--tenant", "1"}, cl.admin...)...)

	report := filepath.Join(f.dir, "workload.json")
	wl := startTo(t, "workload", filepath.Join(f.dir, "workload.out"), bin, "workload", "--mysql", mysqlAddr, "--http", httpURL,
		"--duration", duration.String(), "--long-txn", "30s", "--big-rows", "100000", "--report", report)
	if killSorter {
		time.Sleep(duration / 2)
		m := f.member("sorter-1")
		f.kill(m)
		t.Logf("killed %s (-9) in the middle of the workload", m.name)
		time.Sleep(tf.lease + 2*time.Second)
		f.startMember(m)
	}
	<-wl.exited
	out, _ := os.ReadFile(filepath.Join(f.dir, "workload.out"))
	if wl.err != nil {
		t.Fatalf("workload: %v\n%s", wl.err, tail(out, 4096))
	}
	t.Logf("workload:\n%s", out)
	var rep struct{ BankTotal int64 }
	if b, err := os.ReadFile(report); err != nil || json.Unmarshal(b, &rep) != nil || rep.BankTotal == 0 {
		t.Fatalf("workload report %s: %v", report, err)
	}

	// Everything committed up to now must reach the pull.
	end := getText(t, httpURL+"/tso")
	endTs, _ := strconv.ParseUint(end, 10, 64)
	waitPulled(t, pull, pulled, endTs, 3*time.Minute)
	pull.stop(t, 10*time.Second)
	sum := fmt.Sprintf("bank.accounts.balance=%d", rep.BankTotal)
	runBin(t, bin, 5*time.Minute, "check", "--http", httpURL, "--mysql", mysqlAddr, "--pulled", pulled, "--points", "8", "--sum", sum)

	// Per table, from its creation: the bank, the big transaction's
	// table, the one DDL ran on, the crashed clients'; each pulled on its
	// own, checked against TiDB and verified against the capture's record
	// of what committed.
	var tables []struct {
		DB, Name string
		ID       int64
	}
	getJSON(t, httpURL+"/tables?ts="+end, &tables)
	created := createdAt(t, pulled)
	for _, tb := range tables {
		name := tb.DB + "." + tb.Name
		if name != "bank.accounts" && name != "big.t" && name != "ddl1.live" && name != "crash.t" {
			continue
		}
		id := strconv.FormatInt(tb.ID, 10)
		from := strconv.FormatUint(created[tb.ID], 10)
		if created[tb.ID] == 0 {
			t.Fatalf("the pull has no DDL creating %s (table %s)", name, id)
		}
		p := filepath.Join(f.dir, "pulled-"+id+".jsonl")
		run(t, 2*time.Minute, p, append([]string{"pull", "--api", api, "--tenant", "1", "--table", id, "--from", from,
			"--until-resolved", end, "--timeout", "110s"}, cl.admin...)...)
		runBin(t, bin, 2*time.Minute, "check", "--http", httpURL, "--mysql", mysqlAddr, "--pulled", p, "--tables", id, "--points", "5")
		truthPath := filepath.Join(f.dir, "truth-"+id+".jsonl")
		runBin(t, bin, time.Minute, "truth", "--lines", lines, "--out", truthPath, "--tables", id, "--from", from, "--until", end)
		run(t, time.Minute, "", "verify", "--truth", truthPath, "--pulled", p, "--tenant", "1", "--table", id, "--from", from)
	}
	tf.checkCapture(t)
}

// startTo starts a process whose stdout goes to a file of its own (a
// pulled stream, say) and stderr to a log printed when the test fails.
func startTo(t *testing.T, name, stdout, bin string, args ...string) *proc {
	t.Helper()
	o, err := os.Create(stdout)
	if err != nil {
		t.Fatal(err)
	}
	logPath := stdout + ".log"
	e, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = o, e
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return watch(t, name, cmd, logPath, 4096, o, e)
}

// waitPulled waits until the pulled stream in path carries a resolved ts
// at or above ts.
func waitPulled(t *testing.T, p *proc, path string, ts uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last uint64
	for {
		b, _ := os.ReadFile(path)
		for _, l := range strings.Split(string(b), "\n") {
			var r struct {
				Type string
				Ts   uint64
			}
			if strings.Contains(l, `"resolved"`) && json.Unmarshal([]byte(l), &r) == nil && r.Type == "resolved" {
				last = max(last, r.Ts)
			}
		}
		if last >= ts {
			return
		}
		if !p.running() {
			t.Fatalf("the pull exited before resolved ts %d (last %d): %v", ts, last, p.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pull did not reach resolved ts %d within %s (last %d)", ts, timeout, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// createdAt maps each table a pulled stream saw created to the commit ts
// of its creation.
func createdAt(t *testing.T, path string) map[int64]uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int64]uint64)
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, `"ddl"`) {
			continue
		}
		var d struct {
			Type     string `json:"type"`
			TableID  int64  `json:"table_id"`
			CommitTs uint64 `json:"commit_ts"`
			Action   string `json:"action"`
		}
		if json.Unmarshal([]byte(l), &d) == nil && d.Type == "ddl" && strings.HasPrefix(d.Action, "create_table") && out[d.TableID] == 0 {
			out[d.TableID] = d.CommitTs
		}
	}
	return out
}

// startPiped starts producer | consumer, each in its own process group,
// with their stderr (and the consumer's stdout) in log files printed when
// the test fails.
func startPiped(t *testing.T, dir string, names [2]string, producer, consumer *exec.Cmd) (*proc, *proc) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	producer.Stdout, consumer.Stdin = w, r
	ps := []*proc{}
	for i, c := range []*exec.Cmd{producer, consumer} {
		name := names[i]
		out := filepath.Join(dir, name+".log")
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		c.Stderr = f
		if c.Stdout == nil {
			c.Stdout = f
		}
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		p := watch(t, name, c, out, 6144, f)
		ps = append(ps, p)
	}
	r.Close() // the consumer holds its own copies
	w.Close()
	return ps[0], ps[1]
}

// watch follows a started process: closes its files when it exits, stops
// it when the test ends, and prints the end of its log if the test failed.
func watch(t *testing.T, name string, cmd *exec.Cmd, logPath string, show int, files ...*os.File) *proc {
	p := &proc{name: name, cmd: cmd, out: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		for _, f := range files {
			f.Close()
		}
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(t, 30*time.Second)
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("---- %s output, last %d bytes:\n%s", name, show, tail(b, show))
		}
	})
	return p
}

// stopPiped stops the producer (a last cut, then EOF) and waits for the
// consumer to upload what is left and exit cleanly.
func stopPiped(t *testing.T, producer, consumer *proc) {
	t.Helper()
	producer.stop(t, 60*time.Second)
	select {
	case <-consumer.exited:
		if consumer.err != nil {
			t.Errorf("upstream exited with %v after the producer stopped", consumer.err)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("upstream did not exit within 60 s of the producer's end")
	}
}

// runBin runs another binary (tistream-tidb) to completion, failing the
// test with its output.
func runBin(t *testing.T, bin string, timeout time.Duration, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s %s: no result within %s\n%s", filepath.Base(bin), args[0], timeout, tail(out, 8192))
	}
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, tail(out, 8192))
	}
	t.Logf("%s %s:\n%s", filepath.Base(bin), args[0], tail(out, 4096))
}

func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return strings.TrimSpace(string(b))
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(getText(t, url)), v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
