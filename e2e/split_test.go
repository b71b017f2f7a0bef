//go:build linux

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tistream/tistream/libs/tidbcodec"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// TestRangeSplitAndMergeLive splits a live range through the admin API
// while the workload runs, then merges the two halves back, and verifies
// every pull: the sorters hand state to the successors, the dispatchers
// reroute, and pullers follow the seals into the successors.
func TestRangeSplitAndMergeLive(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	f := startProcFleet(t, procFleetOptions{Metas: 1, Sorters: 2, Dispatchers: 2, Extra: map[string][]string{
		"meta-server": {"--schedule-interval", "500ms"},
		"sorter":      {"--snapshot-interval", "1s"},
	}})
	truthPath := filepath.Join(f.dir, "truth.jsonl")
	duration := 25 * time.Second
	sim := start(t, "sim", simArgs(f.bufferURL, f.first("meta-server").grpcAddr, truthPath, duration.String(), f.clients().upstream)...)
	began := time.Now()
	if _, ok := waitRecovered(f, began, recoveryBound); !ok {
		t.Fatal("the fleet never caught up")
	}
	time.Sleep(5 * time.Second) // let data flow through the range first
	conn := f.tls.dial(t, f.first("meta-server").grpcAddr, "admin")
	defer conn.Close()
	meta := metav1.NewMetaServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A range that starts at a table: split it inside that table.
	var victim *metav1.RangeTask
	for _, r := range f.tasks(1, 5*time.Second).GetRanges() {
		if r.Task.State != metav1.RangeTask_STATE_ACTIVE {
			continue
		}
		if _, err := tidbcodec.DecodeTableID(r.Task.StartKey); err == nil {
			victim = r.Task
			break
		}
	}
	if victim == nil {
		t.Fatal("no active range starts at a table")
	}
	table, _ := tidbcodec.DecodeTableID(victim.StartKey)
	key := tidbcodec.EncodeRecordKey(table, 500)
	if victim.EndKey != nil && bytes.Compare(key, victim.EndKey) >= 0 {
		t.Fatalf("split key %x is not inside range %d [%x, %x)", key, victim.RangeId, victim.StartKey, victim.EndKey)
	}
	splitAt := time.Now()
	split, err := meta.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 1, RangeId: victim.RangeId, SplitKey: key})
	if err != nil {
		t.Fatalf("split range %d at %x: %v", victim.RangeId, key, err)
	}
	if len(split.NewRangeIds) != 2 {
		t.Fatalf("split gave ranges %v, want two", split.NewRangeIds)
	}
	waitState(t, f, victim.RangeId, metav1.RangeTask_STATE_RETIRED)
	if d, ok := waitRecovered(f, splitAt, recoveryBound); !ok {
		t.Fatalf("not caught up %s after the split: %s", d, describeTasks(f.tasks(1, 5*time.Second)))
	} else {
		t.Logf("split range %d into %v; caught up %s after", victim.RangeId, split.NewRangeIds, d.Round(100*time.Millisecond))
	}

	mergeAt := time.Now()
	merged, err := meta.MergeRanges(ctx, &metav1.MergeRangesRequest{TenantId: 1, LeftRangeId: split.NewRangeIds[0], RightRangeId: split.NewRangeIds[1]})
	if err != nil {
		t.Fatalf("merge ranges %v: %v", split.NewRangeIds, err)
	}
	waitState(t, f, split.NewRangeIds[0], metav1.RangeTask_STATE_RETIRED)
	waitState(t, f, split.NewRangeIds[1], metav1.RangeTask_STATE_RETIRED)
	if d, ok := waitRecovered(f, mergeAt, recoveryBound); !ok {
		t.Fatalf("not caught up %s after the merge: %s", d, describeTasks(f.tasks(1, 5*time.Second)))
	} else {
		t.Logf("merged %v into %d; caught up %s after", split.NewRangeIds, merged.NewRangeId, d.Round(100*time.Millisecond))
	}
	if !sim.running() {
		t.Log("the workload ended before the merge completed; the pulls still cover both")
	}
	select {
	case <-sim.exited:
	case <-time.After(duration + 2*time.Minute):
		t.Fatal("the simulator did not finish")
	}
	if sim.err != nil {
		t.Fatalf("the simulator failed: %v", sim.err)
	}
	pullAndVerify(t, f.dir, truthPath, f.first("api-server").grpcAddr, f.clients().admin)
}

func waitState(t *testing.T, f *procFleet, rangeID uint64, want metav1.RangeTask_State) {
	t.Helper()
	deadline := time.Now().Add(recoveryBound)
	for time.Now().Before(deadline) {
		for _, r := range f.tasks(1, 5*time.Second).GetRanges() {
			if r.Task.RangeId == rangeID && r.Task.State == want {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("range %d did not reach %v within %s", rangeID, want, recoveryBound)
}

func describeTasks(tasks *metav1.ListTasksResponse) string {
	var b strings.Builder
	for _, r := range tasks.GetRanges() {
		fmt.Fprintf(&b, "\n  range %d %v [%x, %x) owner %s@%d parents %v successors %v watermark %d lag %.1fs",
			r.Task.RangeId, r.Task.State, r.Task.StartKey, r.Task.EndKey, r.Task.Owner, r.Task.Epoch, r.Task.ParentRangeIds,
			r.Task.SuccessorRangeIds, r.PublishedWatermark, r.LagSeconds)
	}
	for _, s := range tasks.GetStreams() {
		fmt.Fprintf(&b, "\n  store %d owner %s@%d latest %d checkpoint %d pending %d", s.Task.StoreId, s.Task.Owner, s.Task.Epoch,
			s.Task.LatestSeq, s.Checkpoint.GetSeq(), s.PendingFiles)
	}
	return b.String()
}
