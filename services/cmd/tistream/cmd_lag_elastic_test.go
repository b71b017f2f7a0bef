package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestElasticFlags: the service flags reach the fleet's configuration, and
// wrong ones are refused by name before a fleet starts.
func TestElasticFlags(t *testing.T) {
	apply, err := serviceFlags("--split-rows-per-sec=5000 --autoscale-interval=2s", "--load-interval=1s")
	require.NoError(t, err)
	fc := defaultFleetConfig()
	require.NoError(t, apply(&fc))
	require.Equal(t, 5000.0, fc.MetaServer.SplitRowsPerSec)
	require.Equal(t, 2*time.Second, fc.MetaServer.AutoscaleInterval)
	require.Equal(t, time.Second, fc.Sorter.LoadInterval)

	_, err = serviceFlags("--no-such-flag=1", "")
	require.ErrorContains(t, err, "--meta-flags")
	_, err = serviceFlags("", "--load-interval=x")
	require.ErrorContains(t, err, "--sorter-flags")
	_, err = serviceFlags("stray", "")
	require.ErrorContains(t, err, "unexpected argument")

	e := elasticOptions{StopN: 2}
	require.ErrorContains(t, e.check(2), "--stop-sorters")
	e = elasticOptions{StopN: 1}
	require.ErrorContains(t, e.check(2), "--stop-sorters-at")
	e = elasticOptions{StopN: 1, StopAt: time.Second}
	require.NoError(t, e.check(2))
	require.Equal(t, 5*time.Second, e.Window, "a scale-down prints a timeline")
}

// TestRowDigest: the digest ignores order and sees a missing, repeated or
// altered row.
func TestRowDigest(t *testing.T) {
	var a, b rowDigest
	a.add(1, []byte("k1"), 10, 11, "put", []byte("v"))
	a.add(2, []byte("k2"), 12, 13, "delete", nil)
	b.add(2, []byte("k2"), 12, 13, "delete", nil)
	b.add(1, []byte("k1"), 10, 11, "put", []byte("v"))
	require.Equal(t, a.snapshot(), b.snapshot())
	b.add(1, []byte("k1"), 10, 11, "put", []byte("v")) // repeated
	require.NotEqual(t, a.snapshot(), b.snapshot())
	var d rowDigest
	d.add(1, []byte("k1"), 10, 11, "put", []byte("w"))
	d.add(2, []byte("k2"), 12, 13, "delete", nil)
	require.NotEqual(t, a.snapshot(), d.snapshot())
}

// TestLagScaleDown runs the lag benchmark with 2 sorters and a hot table,
// gracefully stops one in the middle (it drains), and checks the pulled
// rows against the simulator's truth (--verify) and the printed phases.
// No timing assertions.
func TestLagScaleDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	o := testLagOptions(t, 2, 4, 8*time.Second)
	o.Sim.HotTableShare = 0.8
	o.Elastic = elasticOptions{StopN: 1, StopAt: 4 * time.Second, Verify: true, SorterFlags: "--load-interval=1s"}
	require.NoError(t, o.Elastic.check(o.Sorters))
	r := runTestLag(t, o) // fails if the pulled rows are not the truth's
	require.Equal(t, r.Sim.RowsCommitted, r.RowsPulled)
	require.Equal(t, r.Sim.RowsCommitted, r.Elastic.digest.snapshot().n)
	require.NoError(t, r.Elastic.stopErr)
	require.False(t, r.Elastic.stopEnd.IsZero(), "sorter-2 stopped")
	// The counters include what the stopped sorter did before it stopped.
	require.GreaterOrEqual(t, r.Metrics["tistream_sorter_rows_flushed_total"], float64(r.Sim.RowsCommitted), "sorter rows flushed vs rows committed")
	var out bytes.Buffer
	r.Elastic.print(&out, r.Start, r.Warm, r.SimEnd)
	for _, s := range []string{"timeline", "before (after the warm-up)", "during", "after", "sorter-2 rows/s"} {
		require.Contains(t, out.String(), s)
	}
	require.Equal(t, 1, strings.Count(out.String(), "scale-down: 1 sorter(s) stopped"))
}
