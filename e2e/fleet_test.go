//go:build linux

// Package e2e runs whole fleets: the five services as separate processes of
// the tistream binary (or as one `tistream up`), a real etcd, a real
// S3-compatible server, the simulator pushing through the meta-server, a
// pull through the api-server, and the pulled stream checked against the
// simulator's truth file.
package e2e

import (
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tistream/tistream/libs/truth"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// workload is the body every fleet test shares: simulate a cluster into the
// fleet in real time, pull the tenant and then every table through the
// api-server until the resolved ts reaches the truth's end, and verify each
// stream against the truth (no row lost, duplicated, reordered or changed;
// resolved promises kept; DDLs in place). Then check through the admin API
// that the ranges were spread over at least `sorters` sorters.
func workload(t *testing.T, dir, bufferURL, metaAddr, apiAddr string, sorters int, cl clientCreds, simExtra ...string) {
	truthPath := filepath.Join(dir, "truth.jsonl")
	run(t, 3*time.Minute, "", append(simArgs(bufferURL, metaAddr, truthPath, "8s", cl.upstream), simExtra...)...)
	pullAndVerify(t, dir, truthPath, apiAddr, cl.admin)
	checkSpread(t, dir, metaAddr, sorters, cl.admin)
}

// clientCreds are the credentials flags of a fleet's clients: the
// simulator pushes as an upstream, pulls and admin calls are an admin's.
type clientCreds struct{ upstream, admin []string }

// clients are a process fleet's client credentials.
func (f *procFleet) clients() clientCreds {
	return clientCreds{upstream: f.tls.clientFlags("upstream"), admin: f.tls.clientFlags("admin")}
}

// simArgs is the simulated workload every fleet test pushes: one tenant,
// 2,000 rows/s in real time, four initial ranges.
func simArgs(bufferURL, metaAddr, truthPath, duration string, creds []string) []string {
	return append([]string{"sim", "--store", bufferURL, "--meta", metaAddr, "--truth", truthPath,
		"--tenants", "1", "--duration", duration, "--rows-per-sec", "2000", "--initial-ranges", "4", "--quiet"}, creds...)
}

// pullAndVerify pulls the tenant and then every table through the
// api-server until the resolved ts reaches the truth's end, and verifies
// each stream against the truth.
func pullAndVerify(t *testing.T, dir, truthPath, apiAddr string, creds []string) {
	end, tables, created := truthEnd(t, truthPath)
	until := strconv.FormatUint(end, 10)
	pulled := filepath.Join(dir, "pulled.jsonl")
	run(t, 3*time.Minute, pulled, append([]string{"pull", "--api", apiAddr, "--tenant", "1", "--until-resolved", until, "--timeout", "150s"}, creds...)...)
	run(t, time.Minute, "", "verify", "--truth", truthPath, "--pulled", pulled, "--tenant", "1")
	for _, id := range tables {
		// A table created during the run is pulled from its creation.
		table, from := strconv.FormatInt(id, 10), strconv.FormatUint(created[id], 10)
		pulled := filepath.Join(dir, "pulled-"+table+".jsonl")
		run(t, 2*time.Minute, pulled, append([]string{"pull", "--api", apiAddr, "--tenant", "1", "--table", table, "--from", from,
			"--until-resolved", until, "--timeout", "90s"}, creds...)...)
		run(t, time.Minute, "", "verify", "--truth", truthPath, "--pulled", pulled, "--tenant", "1", "--table", table, "--from", from)
	}
}

// checkSpread checks through the admin API that every active range and
// every store stream has an owner, that the ranges are spread over at
// least `sorters` sorters, and that every stream has a checkpoint.
func checkSpread(t *testing.T, dir, metaAddr string, sorters int, creds []string) {
	tasksPath := filepath.Join(dir, "tasks.json")
	run(t, time.Minute, tasksPath, append([]string{"admin", "tasks", "--meta", metaAddr, "--tenant", "1", "--json"}, creds...)...)
	b, err := os.ReadFile(tasksPath)
	if err != nil {
		t.Fatal(err)
	}
	var tasks metav1.ListTasksResponse
	if err := protojson.Unmarshal(b, &tasks); err != nil {
		t.Fatalf("admin tasks --json: %v\n%s", err, b)
	}
	owners := map[string]int{}
	for _, r := range tasks.Ranges {
		if r.Task.State == metav1.RangeTask_STATE_ACTIVE {
			if r.Task.Owner == "" {
				t.Errorf("active range %d has no owner", r.Task.RangeId)
			}
			owners[r.Task.Owner]++
		}
	}
	if len(owners) < sorters {
		t.Errorf("active ranges are owned by %v; want them spread over %d sorters", owners, sorters)
	}
	for _, s := range tasks.Streams {
		if s.Task.Owner == "" || s.Checkpoint.GetSeq() == 0 {
			t.Errorf("store %d stream: owner %q, checkpoint %v; want an owner and a checkpoint", s.Task.StoreId, s.Task.Owner, s.Checkpoint)
		}
	}
}

// truthEnd is the resolved ts of the truth file's end line (every row
// committed at or before it is in the file), the tables with rows, and the
// commit ts of the tables created during the run.
func truthEnd(t *testing.T, path string) (uint64, []int64, map[int64]uint64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := truth.NewReader(f, path)
	var end uint64
	rows := 0
	tables := map[int64]bool{}
	created := map[int64]uint64{}
	for {
		l, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch l.Kind {
		case truth.KindEnd:
			end = l.End.ResolvedTs
		case truth.KindRow:
			rows++
			tables[l.Row.TableID] = true
		case truth.KindDDL:
			// A truncate creates its table anew under a new id.
			if l.DDL.Action == "create_table" || l.DDL.Action == "truncate_table" {
				created[l.DDL.TableID] = l.DDL.CommitTs
			}
		}
	}
	if end == 0 || rows == 0 {
		t.Fatalf("truth %s has %d rows and end resolved ts %d: the simulator wrote nothing to check", path, rows, end)
	}
	t.Logf("truth: %d rows in %d tables up to resolved ts %d", rows, len(tables), end)
	return end, slices.Sorted(maps.Keys(tables)), created
}

// TestFleetAsProcesses: a real etcd, versitygw, one meta-server, one schema
// registry, two sorters, two dispatchers and an api-server, each its own
// process started with `tistream run`.
func TestFleetAsProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	f := startProcFleet(t, procFleetOptions{Metas: 1, Sorters: 2, Dispatchers: 2})
	workload(t, f.dir, f.bufferURL, f.first("meta-server").grpcAddr, f.first("api-server").grpcAddr, 2, f.clients(), upstreamChaos...)
}

// upstreamChaos makes the simulated upstream do what an independent one
// found the core wrong on (issue 15): stores crash and their incarnations
// are taken over (partial, full, cascaded), crashed stores restart, lock
// refreshes, pipelined DML generations across leaders, rolled-back merges.
// Through the fleet, the takeover ENDs and generations also cross the
// dispatcher-to-sorter wire.
var upstreamChaos = []string{"--crash-every", "2s", "--crash-down", "2s", "--heartbeat-every", "300ms",
	"--pipelined-every", "1s", "--rollback-merge-ratio", "0.2"}

// TestFleetUp: the same workload against `tistream up`, the embedded
// default (embedded etcd, local-disk object store, every service in one
// process).
func TestFleetUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	dir := t.TempDir()
	p := start(t, "up", "up", "--data-dir", filepath.Join(dir, "fleet"), "--etcd-port", "0", "--meta-port", "0",
		"--api-port", "0", "--dispatchers", "2", "--sorters", "2")
	addrs := waitUp(t, p, 90*time.Second)
	tlsDir := filepath.Join(dir, "fleet", "tls") // tistream up's throw-away CA
	workload(t, dir, addrs["object store"], addrs["meta-server"], addrs["api-server"], 2,
		clientCreds{upstream: []string{"--credentials", filepath.Join(tlsDir, "upstream")}, admin: []string{"--credentials", filepath.Join(tlsDir, "admin")}})
}

// waitUp waits for `tistream up` to print its addresses and returns them by
// name: the gRPC address of each service, the URL of the object store.
func waitUp(t *testing.T, p *proc, timeout time.Duration) map[string]string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(p.out)
		if strings.Contains(string(b), "pull a tenant:") {
			addrs := map[string]string{}
			for _, line := range strings.Split(string(b), "\n") {
				f := strings.Fields(line)
				switch {
				case len(f) >= 2 && f[0] == "object" && f[1] == "store":
					addrs["object store"] = f[2]
				case len(f) >= 2 && strings.HasPrefix(f[1], "grpc="):
					addrs[f[0]] = strings.TrimPrefix(f[1], "grpc=")
				}
			}
			for _, k := range []string{"object store", "meta-server", "api-server"} {
				if addrs[k] == "" {
					t.Fatalf("tistream up printed no %s address:\n%s", k, b)
				}
			}
			return addrs
		}
		if !p.running() {
			t.Fatalf("tistream up exited: %v\n%s", p.err, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("tistream up did not come up within %s:\n%s", timeout, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
