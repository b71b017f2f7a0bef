package metaserver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/tidbcodec"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// The leader's autoscaler splits a range whose sorter reports few rows but
// over the CPU or memory bound, at the proposed key; one reporting a pull
// fan-out or a load under every bound stays; ListTasks shows the owner's
// report.
func TestAutoscaleSplitsOnCPUAndMemory(t *testing.T) {
	cases := []struct {
		name   string
		load   *metav1.RangeLoad
		second bool // a second, idle sorter
		split  bool
	}{
		{"over the CPU bound", &metav1.RangeLoad{RowsPerSec: 100, CpuShare: 0.9, MemoryBytes: 1 << 20, PoolBytesPerSec: 5000}, false, true},
		{"over the memory bound", &metav1.RangeLoad{RowsPerSec: 100, CpuShare: 0.01, MemoryBytes: 300 << 20}, false, true},
		{"under every bound", &metav1.RangeLoad{RowsPerSec: 19_000, CpuShare: 0.4, MemoryBytes: 200 << 20}, true, false},
		// Over the rows bound: split only when another sorter could take half.
		{"over the rows bound, one sorter", &metav1.RangeLoad{RowsPerSec: 30_000, CpuShare: 0.05, MemoryBytes: 1 << 20}, false, false},
		{"over the rows bound, an idle second sorter", &metav1.RangeLoad{RowsPerSec: 30_000, CpuShare: 0.05, MemoryBytes: 1 << 20}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			_, c := env.leader(func(c *Config) {
				c.AutoscaleInterval = 50 * time.Millisecond
				c.SplitCPUShare, c.SplitMemoryBytes = 0.5, 256<<20
			})
			ctx := context.Background()
			env.register(c, 1, 1, 101, 102, 103, 104)
			reg := env.sorter("s1")
			require.Eventually(t, func() bool { return env.owners(1)[1] == "s1@1" }, waitFor, pollEvery)
			if tc.second {
				env.sorter("s2")
			}
			w1, err := pool.CreateRange(ctx, env.group("s1"), pool.RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: tso(1000)}, 1)
			require.NoError(t, err)
			_, err = w1.Flush(ctx, tso(1500), nil)
			require.NoError(t, err)

			k := tidbcodec.TablePrefix(103)
			rl := tc.load
			rl.TenantId, rl.RangeId, rl.Epoch, rl.SplitKey = 1, 1, 1, k
			require.NoError(t, reg.Update(ctx, func(w *metav1.WorkerInfo) {
				w.Ranges, w.LoadIntervalMs, w.ProcessCpuShare, w.RssBytes = []*metav1.RangeLoad{rl}, 1000, 1.2, 1<<30
			}))

			list, err := c.ListTasks(ctx, &metav1.ListTasksRequest{TenantId: 1})
			require.NoError(t, err)
			require.Len(t, list.Ranges, 1)
			require.NotNil(t, list.Ranges[0].Load)
			require.Equal(t, rl.CpuShare, list.Ranges[0].Load.CpuShare)
			require.Equal(t, rl.MemoryBytes, list.Ranges[0].Load.MemoryBytes)
			require.Equal(t, rl.PoolBytesPerSec, list.Ranges[0].Load.PoolBytesPerSec)

			if !tc.split {
				time.Sleep(500 * time.Millisecond) // ten rounds
				require.Equal(t, metav1.RangeTask_STATE_ACTIVE, env.ranges(1)[1].State)
				require.Len(t, env.ranges(1), 1)
				return
			}
			require.Eventually(t, func() bool { return env.ranges(1)[1].State == metav1.RangeTask_STATE_SEALING }, waitFor, pollEvery)
			ranges := env.ranges(1)
			require.Equal(t, []uint64{2, 3}, ranges[1].SuccessorRangeIds)
			require.Equal(t, k, ranges[2].EndKey)
			require.Equal(t, k, ranges[3].StartKey)
		})
	}
}
