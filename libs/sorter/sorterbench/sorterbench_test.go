package sorterbench_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sorter/sorterbench"
)

// A small run of every mode reads back exactly the rows it wrote, in order
// per table (Run checks both), through the worker pool, with flushes during
// the ingest; with a tiny memory budget the ranges spill to Pebble and the
// result is the same; with a tiny write stall the feeder waits for the
// rounds and the result is the same too.
func TestRunSmall(t *testing.T) {
	cases := []struct {
		name   string
		opts   sorterbench.Options
		spills bool
		stalls bool
	}{
		{"committed", sorterbench.Options{}, false, false},
		{"pairs", sorterbench.Options{Pairs: true}, false, false},
		{"committed-tiny-budget", sorterbench.Options{MemoryBudget: 64 << 10}, true, false},
		{"pairs-one-worker", sorterbench.Options{Pairs: true, Workers: 1}, false, false},
		{"committed-stalled", sorterbench.Options{WriteStallBytes: 1}, false, true},
	}
	// 150,000 rows: at GOMAXPROCS=1 the feeder fed 30,000 rows faster
	// than the first round's stages got through the workers' queues (~60
	// ms), so in 7 of 150 runs no round but the last one came during the
	// ingest; 150,000 rows take 200 ms or more, several rounds.
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := c.opts
			o.Rows, o.BatchRows, o.FlushEvery, o.Dir, o.Seed = 150_000, 1_000, time.Millisecond, t.TempDir(), 3
			res, err := sorterbench.Run(context.Background(), o)
			require.NoError(t, err)
			require.Equal(t, 150_000, res.Rows)
			require.Greater(t, res.Flushes, int64(sorterbench.Tables), "flushes during the ingest")
			require.Equal(t, c.spills, res.Spills > 0)
			if c.stalls {
				require.Positive(t, res.Stalls, "the feeder waited for rounds")
			}
		})
	}
	res, err := sorterbench.RunBaseline(context.Background(), sorterbench.Options{Rows: 30_000, Dir: t.TempDir()})
	require.NoError(t, err)
	require.Equal(t, "pebble", res.Mode)
}

// The floor (the pool path alone) reads back every row it wrote, in order
// per table (output checks both), over several publications; with rounds
// asked for more often than they are published it skips none and
// publishes no watermark twice.
func TestRunFloorSmall(t *testing.T) {
	for _, every := range []time.Duration{time.Millisecond, time.Hour} {
		res, err := sorterbench.RunFloor(context.Background(), sorterbench.Options{Rows: 150_000, BatchRows: 1_000,
			FlushEvery: every, FlushBytes: 1 << 20, Dir: t.TempDir(), Seed: 3})
		require.NoError(t, err)
		require.Equal(t, "floor", res.Mode)
		require.Equal(t, 150_000, res.Rows)
		require.Greater(t, res.Files, 2, "rounds during the ingest")
	}
}
