//go:build linux

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// TestAutoscaleSplitSpreadAndDrain: a tenant starts with one range that is
// hotter than the split bound; the autoscaler splits it by itself (at the
// key its sorter proposes) until the pieces are below the bound, and the
// pieces spread over the sorters. Then one sorter is drained (admin
// DrainWorker): its ranges move to the others, and it gets none back; a
// second one is stopped gracefully and drains to the last one first. The
// pulls, tenant and per table, are verified against the simulator's truth:
// nothing lost, duplicated or reordered through the splits and moves.
func TestAutoscaleSplitSpreadAndDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	f := startProcFleet(t, procFleetOptions{Metas: 1, Sorters: 3, Dispatchers: 2, Extra: map[string][]string{
		// 2,000 rows/s of 2PC transactions are ~4,000 row events/s: one
		// range splits into four of ~1,000 (below 1,500) in three splits.
		"meta-server": {"--schedule-interval", "500ms", "--autoscale-interval", "1s", "--split-rows-per-sec", "1500",
			"--merge-rows-per-sec", "0", "--max-ranges-per-tenant", "8", "--max-moves-per-minute", "60",
			"--balance-min-rows-per-sec", "200"},
		"sorter": {"--snapshot-interval", "1s", "--load-interval", "1s"},
	}})
	truthPath := filepath.Join(f.dir, "truth.jsonl")
	duration := 40 * time.Second
	args := simArgs(f.bufferURL, f.first("meta-server").grpcAddr, truthPath, duration.String(), f.clients().upstream)
	for i := range args {
		if args[i] == "--initial-ranges" {
			args[i+1] = "1"
		}
	}
	sim := start(t, "sim", args...)

	// The single range splits by itself, and the pieces spread.
	deadline := time.Now().Add(35 * time.Second)
	var tasks *metav1.ListTasksResponse
	for ; time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		tasks = f.tasks(1, 2*time.Second)
		active, retired, owners := countRanges(tasks)
		if active >= 3 && retired >= 1 && len(owners) >= 3 {
			break
		}
	}
	active, retired, owners := countRanges(tasks)
	if active < 3 || retired < 1 || len(owners) < 3 {
		t.Fatalf("the hot range did not split and spread by itself: %d active, %d retired, owners %v%s", active, retired, owners, describeTasks(tasks))
	}
	t.Logf("split by itself: %d active ranges, %d retired, owners %v", active, retired, owners)

	// Drain the sorter that owns the most ranges.
	victim, most := "", 0
	for id, n := range owners {
		if n > most || n == most && id < victim {
			victim, most = id, n
		}
	}
	conn := f.tls.dial(t, f.first("meta-server").grpcAddr, "admin")
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	resp, err := metav1.NewMetaServiceClient(conn).DrainWorker(ctx, &metav1.DrainWorkerRequest{WorkerId: victim})
	cancel()
	if err != nil {
		t.Fatalf("drain %s: %v", victim, err)
	}
	t.Logf("draining %s (%d tasks)", victim, resp.TasksOwned)
	drainedAt := time.Now()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		tasks = f.tasks(1, 2*time.Second)
		_, _, owners = countRanges(tasks)
		if owners[victim] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still owns %d ranges 30 s after the drain request:%s", victim, owners[victim], describeTasks(tasks))
		}
	}
	t.Logf("%s drained in %s; owners now %v", victim, time.Since(drainedAt).Round(100*time.Millisecond), owners)

	// A graceful stop drains too: the sorter with ranges that is stopped
	// waits until they have moved to the last one, then exits.
	var leaving *member
	for _, m := range f.ofKind("sorter") {
		if m.name != victim && owners[m.name] > 0 && (leaving == nil || m.name < leaving.name) {
			leaving = m
		}
	}
	stopAt := time.Now()
	leaving.p.stop(t, 30*time.Second)
	if out, _ := os.ReadFile(leaving.p.out); !strings.Contains(string(out), "msg=drained") {
		t.Errorf("%s did not drain before it stopped:\n%s", leaving.name, tail(out, 4096))
	}
	tasks = f.tasks(1, 5*time.Second)
	_, _, owners = countRanges(tasks)
	t.Logf("%s stopped gracefully in %s; owners now %v", leaving.name, time.Since(stopAt).Round(100*time.Millisecond), owners)

	select {
	case <-sim.exited:
	case <-time.After(duration + 2*time.Minute):
		t.Fatal("the simulator did not finish")
	}
	if sim.err != nil {
		t.Fatalf("the simulator failed: %v", sim.err)
	}
	// Still drained: nothing was assigned back to it meanwhile.
	if _, _, owners := countRanges(f.tasks(1, 5*time.Second)); owners[victim] != 0 {
		t.Errorf("%s got %d ranges back while draining", victim, owners[victim])
	}
	pullAndVerify(t, f.dir, truthPath, f.first("api-server").grpcAddr, f.clients().admin)
}

// countRanges counts the ACTIVE and RETIRED ranges, and the ACTIVE ones
// per owner.
func countRanges(tasks *metav1.ListTasksResponse) (active, retired int, owners map[string]int) {
	owners = map[string]int{}
	for _, r := range tasks.GetRanges() {
		switch r.Task.State {
		case metav1.RangeTask_STATE_ACTIVE:
			active++
			if r.Task.Owner != "" {
				owners[r.Task.Owner]++
			}
		case metav1.RangeTask_STATE_RETIRED:
			retired++
		}
	}
	return active, retired, owners
}
