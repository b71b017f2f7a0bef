//go:build linux

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// TestPausedSorterIsFenced pauses (SIGSTOP) a sorter that owns ranges
// until its lease has expired and its ranges have moved to the other
// sorter and been published there, then lets it run again: whatever it
// still had to flush must not reach readers. Checked three ways: every
// range log's owner epochs never go down along the log (the pool refuses a
// fenced owner's entry), the woken sorter reports its lost lease, and the
// pulled streams verify against the truth (nothing lost or doubled).
func TestPausedSorterIsFenced(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	lease := 3 * time.Second
	f := startProcFleet(t, procFleetOptions{Metas: 1, Sorters: 2, Dispatchers: 1, Extra: map[string][]string{
		"meta-server": {"--schedule-interval", "500ms"},
		"sorter":      {"--lease-ttl", lease.String(), "--snapshot-interval", "1s", "--flush-interval", "200ms"},
		"dispatcher":  {"--lease-ttl", lease.String()},
	}})
	truthPath := filepath.Join(f.dir, "truth.jsonl")
	duration := 25 * time.Second
	sim := start(t, "sim", simArgs(f.bufferURL, f.first("meta-server").grpcAddr, truthPath, duration.String(), f.clients().upstream)...)
	began := time.Now()
	if _, ok := waitRecovered(f, began, recoveryBound); !ok {
		t.Fatal("the fleet never caught up")
	}
	victim := f.member("sorter-1")
	owned := rangesOwnedBy(f.tasks(1, 5*time.Second), victim.name)
	if len(owned) == 0 {
		victim = f.member("sorter-2")
		owned = rangesOwnedBy(f.tasks(1, 5*time.Second), victim.name)
	}
	if len(owned) == 0 {
		t.Fatal("no sorter owns a range")
	}
	t.Logf("pausing %s, which owns ranges %v", victim.name, owned)
	f.pause(victim)
	pausedAt := time.Now()
	// Wait until every range it owned is owned elsewhere and published past
	// the pause.
	deadline := time.Now().Add(recoveryBound)
	for {
		tasks := f.tasks(1, 2*time.Second)
		if tasks != nil && len(rangesOwnedBy(tasks, victim.name)) == 0 && recovered(tasks, pausedAt) {
			break
		}
		if time.Now().After(deadline) {
			f.resume(victim)
			t.Fatalf("%s's ranges did not move within %s", victim.name, recoveryBound)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("ranges moved and caught up %s after the pause; resuming %s", time.Since(pausedAt).Round(100*time.Millisecond), victim.name)
	f.resume(victim)
	// The woken sorter finds its lease gone and drops its ranges.
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(metrics(t, victim.httpAddr), "tistream_sorter_lease_losses_total 1") {
		if time.Now().After(deadline) {
			t.Fatalf("%s never reported its lost lease:\n%s", victim.name, metrics(t, victim.httpAddr))
		}
		time.Sleep(200 * time.Millisecond)
	}
	select {
	case <-sim.exited:
	case <-time.After(duration + 2*time.Minute):
		t.Fatal("the simulator did not finish")
	}
	if sim.err != nil {
		t.Fatalf("the simulator failed: %v", sim.err)
	}
	checkEpochsNeverGoDown(t, f, 1)
	pullAndVerify(t, f.dir, truthPath, f.first("api-server").grpcAddr, f.clients().admin)
}

func rangesOwnedBy(tasks *metav1.ListTasksResponse, owner string) []uint64 {
	var ids []uint64
	for _, r := range tasks.GetRanges() {
		if r.Task.State == metav1.RangeTask_STATE_ACTIVE && r.Task.Owner == owner {
			ids = append(ids, r.Task.RangeId)
		}
	}
	return ids
}

// metrics is a member's /metrics exposition, or the error text when it
// could not be fetched (a check for a metric line then fails).
func metrics(t *testing.T, httpAddr string) string {
	s, err := fetchMetrics(httpAddr)
	if s == "" && err != nil {
		return err.Error()
	}
	return s
}

// fetchMetrics reads a member's /metrics: what it read, and an error when
// the request, the read or the status failed.
func fetchMetrics(httpAddr string) (string, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET /metrics of %s: %s", httpAddr, resp.Status)
	}
	return string(b), err
}

// checkEpochsNeverGoDown reads every range log of the tenant from the pool
// and checks that the owner epoch never decreases along a log.
func checkEpochsNeverGoDown(t *testing.T, f *procFleet, tenant uint64) {
	t.Helper()
	ctx := context.Background()
	store, err := objstore.Open(ctx, f.poolURL)
	if err != nil {
		t.Fatal(err)
	}
	m, err := pool.LoadManifest(ctx, store, tenant)
	if err != nil {
		t.Fatal(err)
	}
	entries := 0
	takeovers := 0
	for _, d := range m.Ranges {
		var last uint64
		for seq := uint64(1); ; seq++ {
			e, err := pool.GetEntry(ctx, store, tenant, d.RangeId, seq)
			if err != nil {
				break // past the head (or never opened)
			}
			entries++
			if e.OwnerEpoch < last {
				t.Errorf("range %d entry %d by %s has epoch %d after epoch %d: a fenced owner published", d.RangeId, seq, e.Owner, e.OwnerEpoch, last)
			}
			if e.OwnerEpoch > last && last != 0 {
				takeovers++
			}
			last = e.OwnerEpoch
		}
	}
	t.Logf("range logs: %d entries, %d owner changes, epochs never go down", entries, takeovers)
	if takeovers == 0 {
		t.Error("no range log shows an owner change: the pause moved nothing")
	}
}
