//go:build linux

package e2e

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/truth"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// TestUsageExactlyOnce: metering's totals match what was done, whatever was
// killed. The simulator pushes two tenants through a process fleet; the
// dispatcher (the owner of every stream's checkpoint, which carries the
// ingest counters) is killed with SIGKILL mid-run and restarted, so its
// successor re-reads files the first one had read past its checkpoint.
// Each tenant is pulled to the end and the api-server stopped (a graceful
// stop flushes its usage records). Then `tistream admin usage` must say:
//
//   - ingested rows (over both tenants) = the row events the simulator
//     says it wrote (its own count, printed at its end);
//   - ingested bytes, per tenant = the sizes of the tenant's store change
//     files in the buffer (kept by --gc-grace; listed by the test);
//   - served rows, per tenant = the row changes the pull received (which
//     verify checks against the truth);
//   - requests, pull time and stored bytes are there for both tenants.
func TestUsageExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	t.Setenv("TISTREAM_USAGE_FLUSH_INTERVAL", "1s") // the fleet's processes inherit it
	f := startProcFleet(t, procFleetOptions{Metas: 1, Sorters: 1, Dispatchers: 1, Extra: map[string][]string{
		"meta-server": {"--session-ttl", "3s", "--usage-sample-interval", "1s"},
		"sorter":      {"--snapshot-interval", "1s"},
		"dispatcher":  {"--lease-ttl", "3s", "--gc-grace", "1h"},
	}})
	cl := f.clients()
	meta := f.first("meta-server").grpcAddr
	truthPath := filepath.Join(f.dir, "truth.jsonl")
	sim := start(t, "sim", append([]string{"sim", "--store", f.bufferURL, "--meta", meta, "--truth", truthPath,
		"--tenants", "2", "--duration", "14s", "--rows-per-sec", "1500", "--initial-ranges", "2", "--quiet"}, cl.upstream...)...)

	// Kill the dispatcher mid-run, once it has checkpointed some files.
	d := f.first("dispatcher")
	deadline := time.Now().Add(90 * time.Second)
	for !checkpointed(f, 1) || !checkpointed(f, 2) {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint for both tenants within 90 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	f.kill(d)
	t.Logf("killed %s with SIGKILL", d.name)
	time.Sleep(time.Second)
	f.startMember(d)
	select {
	case <-sim.exited:
	case <-time.After(3 * time.Minute):
		t.Fatal("the simulator did not finish within 3 minutes")
	}
	if sim.err != nil {
		b, _ := os.ReadFile(sim.out)
		t.Fatalf("sim: %v\n%s", sim.err, tail(b, 4096))
	}

	end, _, _ := truthEnd(t, truthPath)
	pulledRows := map[uint64]uint64{}
	for _, tenant := range []uint64{1, 2} {
		ts := strconv.FormatUint(tenant, 10)
		pulled := filepath.Join(f.dir, "pulled-"+ts+".jsonl")
		run(t, 3*time.Minute, pulled, append([]string{"pull", "--api", f.first("api-server").grpcAddr, "--tenant", ts,
			"--until-resolved", strconv.FormatUint(end, 10), "--timeout", "150s"}, cl.admin...)...)
		run(t, time.Minute, "", "verify", "--truth", truthPath, "--pulled", pulled, "--tenant", ts)
		pulledRows[tenant] = countRows(t, pulled)
	}
	f.first("api-server").p.stop(t, 20*time.Second) // flushes its usage records
	// Every file is durable downstream once the pull ends, but the
	// checkpoints (which carry the ingest counters) follow the sorters'
	// durable acknowledgements: wait until they cover every notified file.
	deadline = time.Now().Add(2 * time.Minute)
	for !caughtUp(f, 1) || !caughtUp(f, 2) {
		if time.Now().After(deadline) {
			t.Fatal("the checkpoints did not cover every file within 2 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // a flush interval of the other processes

	// The independent records.
	simRows := simRowEvents(t, sim.out)
	ctx := context.Background()
	buffer, err := objstore.Open(ctx, f.bufferURL)
	if err != nil {
		t.Fatal(err)
	}
	var gotRows uint64
	for _, tenant := range []uint64{1, 2} {
		u := adminUsage(t, f, meta, tenant)
		tot := u.GetTotal()
		gotRows += tot.GetIngestedRows()
		fileBytes := storeFileBytes(ctx, t, buffer, tenant)
		t.Logf("tenant %d: ingested %d rows, %d bytes (store files: %d bytes); served %d rows (pulled %d), %d bytes; requests put %d get %d list %d delete %d; pull %.1fs; stored %v",
			tenant, tot.GetIngestedRows(), tot.GetIngestedBytes(), fileBytes, tot.GetServedRows(), pulledRows[tenant], tot.GetServedBytes(),
			tot.GetPutRequests(), tot.GetGetRequests(), tot.GetListRequests(), tot.GetDeleteRequests(), float64(tot.GetPullMillis())/1000, tot.GetStoredBytes())
		if tot.GetIngestedBytes() != fileBytes {
			t.Errorf("tenant %d: ingested bytes %d, want %d (the sizes of its store change files)", tenant, tot.GetIngestedBytes(), fileBytes)
		}
		if tot.GetServedRows() != pulledRows[tenant] {
			t.Errorf("tenant %d: served rows %d, want %d (what the pull received)", tenant, tot.GetServedRows(), pulledRows[tenant])
		}
		if tot.GetServedBytes() == 0 || tot.GetPullMillis() == 0 || tot.GetPutRequests() == 0 || tot.GetGetRequests() == 0 || tot.GetListRequests() == 0 {
			t.Errorf("tenant %d: served bytes, pull time and put, get and list requests must all be counted: %v", tenant, tot)
		}
		if tot.GetStoredBytes()["pool"] == 0 || tot.GetStoredBytes()["buffer"] == 0 {
			t.Errorf("tenant %d: stored bytes %v; want pool and buffer sampled", tenant, tot.GetStoredBytes())
		}
	}
	if gotRows != simRows {
		t.Errorf("ingested rows over both tenants: %d, want %d (the simulator's row events)", gotRows, simRows)
	}
}

// checkpointed reports whether a tenant's streams have a checkpoint.
func checkpointed(f *procFleet, tenant uint64) bool {
	tasks := f.tasks(tenant, 5*time.Second)
	if tasks == nil {
		return false
	}
	for _, s := range tasks.Streams {
		if s.Checkpoint.GetSeq() > 0 {
			return true
		}
	}
	return false
}

// caughtUp reports whether every stream of a tenant is checkpointed up to
// the last file notified.
func caughtUp(f *procFleet, tenant uint64) bool {
	tasks := f.tasks(tenant, 5*time.Second)
	if tasks == nil || len(tasks.Streams) == 0 {
		return false
	}
	for _, s := range tasks.Streams {
		if s.PendingFiles > 0 || s.Checkpoint.GetSeq() < s.Task.GetLatestSeq() {
			return false
		}
	}
	return true
}

// adminUsage runs `tistream admin usage --json` for the last two hours.
func adminUsage(t *testing.T, f *procFleet, meta string, tenant uint64) *metav1.GetUsageResponse {
	t.Helper()
	out := filepath.Join(f.dir, "usage-"+strconv.FormatUint(tenant, 10)+".json")
	run(t, time.Minute, out, append([]string{"admin", "usage", "--meta", meta, "--tenant", strconv.FormatUint(tenant, 10),
		"--from", "-2h", "--json"}, f.clients().admin...)...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	u := &metav1.GetUsageResponse{}
	if err := protojson.Unmarshal(b, u); err != nil {
		t.Fatalf("admin usage --json: %v\n%s", err, b)
	}
	// The table form works too.
	run(t, time.Minute, "", append([]string{"admin", "usage", "--meta", meta, "--tenant", strconv.FormatUint(tenant, 10), "--from", "-2h"},
		f.clients().admin...)...)
	return u
}

// countRows counts the row lines of a pulled stream.
func countRows(t *testing.T, path string) uint64 {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	r := truth.NewReader(fh, path)
	n := uint64(0)
	for {
		l, err := r.Next()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if l.Kind == truth.KindRow {
			n++
		}
	}
}

// simRowEvents reads the simulator's own count of the row events it wrote.
func simRowEvents(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(\d+) row events in files`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no row event count in the simulator's output:\n%s", b)
	}
	n, err := strconv.ParseUint(string(m[1]), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// storeFileBytes sums the sizes of a tenant's store change files.
func storeFileBytes(ctx context.Context, t *testing.T, buffer objstore.Store, tenant uint64) uint64 {
	t.Helper()
	objs, err := objstore.ListAll(ctx, buffer, layout.TenantBufferPrefix(1, tenant), "")
	if err != nil {
		t.Fatal(err)
	}
	n := uint64(0)
	for _, o := range objs {
		if _, err := layout.ParseStoreFileKey(o.Key); err == nil {
			n += uint64(o.Size)
		}
	}
	return n
}
