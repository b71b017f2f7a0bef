package main

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/sim"
)

// TestLagBench runs the lag benchmark briefly at a low rate: it completes,
// every row the simulator committed arrives exactly once in count, and the
// percentiles are ordered. No timing assertions.
func TestLagBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	o := testLagOptions(t, 1, 2, 6*time.Second)
	o.TablePulls = 2
	r := runTestLag(t, o)
	require.Positive(t, r.Sim.RowsCommitted)
	require.Equal(t, r.Sim.RowsCommitted, r.RowsPulled, "rows pulled vs rows the simulator committed")
	require.NotEmpty(t, r.Rows.ms)
	for _, d := range []*lagDist{&r.Rows, &r.Buffer, &r.Pool, &r.Puller} {
		require.NotEmpty(t, d.ms)
		require.LessOrEqual(t, d.q(.5), d.q(.9))
		require.LessOrEqual(t, d.q(.9), d.q(.99))
		require.LessOrEqual(t, d.q(.99), d.q(1))
	}
	var out bytes.Buffer
	printLag(&out, o, r)
	require.Contains(t, out.String(), "end-to-end row lag")
	require.Contains(t, out.String(), "dispatcher(s) read")
	// The table pulls reached the end with rows of their own table only.
	require.Len(t, r.Tables, 2)
	for id, tl := range r.Tables {
		require.NoError(t, tl.Err, "table %d", id)
		require.Positive(t, tl.Rows, "table %d", id)
		require.Zero(t, tl.Other, "table %d pull sent rows of other tables", id)
	}
	out.Reset()
	printTableLags(&out, r.Tables)
	require.Contains(t, out.String(), "table pull p50")
	checkLagRequests(t, r)
}

// testLagOptions is a short, slow lag run (300 rows/s) for the tests.
func testLagOptions(t *testing.T, sorters int, ranges uint32, d time.Duration) lagOptions {
	o := lagOptions{Sim: sim.DefaultConfig(), Dispatchers: 1, Sorters: sorters, InitialRanges: ranges, DataDir: t.TempDir(),
		Warmup: time.Second, Sample: 50 * time.Millisecond, Timeout: time.Minute, LogLevel: "info"}
	o.Sim.Duration = d
	o.Sim.RowsPerSec = 300
	return o
}

// runTestLag runs lagBench within two minutes and requires it to succeed.
func runTestLag(t *testing.T, o lagOptions) *lagResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := lagBench(ctx, o, io.Discard)
	require.NoError(t, err)
	return r
}

func TestLagDistQuantile(t *testing.T) {
	var d lagDist
	for i := 100; i >= 1; i-- {
		d.add(float64(i))
	}
	d.sort()
	require.Equal(t, 50.0, d.q(.5))
	require.Equal(t, 99.0, d.q(.99))
	require.Equal(t, 100.0, d.q(1))
	require.Equal(t, 1.0, d.q(0))
	var empty lagDist
	require.True(t, empty.q(.5) != empty.q(.5)) // NaN
}

func TestRangeLogKey(t *testing.T) {
	require.True(t, rangeLogKey("committed_data_pool/tenant-1/range-3/log/00000000000000000001"))
	require.False(t, rangeLogKey("committed_data_pool/tenant-1/range-3/data/00000000000000000001-00000000000000000001"))
	require.False(t, rangeLogKey("committed_data_pool/tenant-1/range-3/head"))
	require.False(t, rangeLogKey("data_change_buffer/cluster-1/tenant-1/store-1/00000000000000000001-00000000000000000002"))
}

// TestDrainBench runs the drain (backlog) mode at a tiny size: it completes,
// the rows pulled back equal the rows the simulator committed, and the
// sorter flushed at least as many. No timing assertions.
func TestDrainBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	o := lagOptions{Sim: sim.DefaultConfig(), Dispatchers: 1, Sorters: 1, InitialRanges: 2, DataDir: t.TempDir(), LogLevel: "info"}
	o.Sim.RowsPerSec = 10000
	d := drainOptions{BacklogRows: 20000, Idle: 100 * time.Millisecond, Timeout: time.Minute, Pull: true}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := drainBench(ctx, o, d, io.Discard)
	require.NoError(t, err)
	require.Positive(t, r.Sim.RowsCommitted)
	require.True(t, r.Pulled)
	require.Equal(t, r.Sim.RowsCommitted, r.RowsPull, "rows pulled vs rows the simulator committed")
	// The sorter also flushes rows the truth does not count (DDL's meta rows).
	require.GreaterOrEqual(t, r.Metrics["tistream_sorter_rows_flushed_total"], float64(r.Sim.RowsCommitted), "sorter rows flushed vs rows committed")
	require.Equal(t, float64(r.Sim.RowEvents), r.Metrics["tistream_dispatcher_rows_read_total"], "dispatcher row events read vs row events written")
	require.NoError(t, drainCheck(r))
	require.Positive(t, r.Drain)
	var out bytes.Buffer
	printDrain(&out, o, d, r)
	require.Contains(t, out.String(), "drained in")
	require.Contains(t, out.String(), "CPU per million committed rows")
}

func TestBacklogDuration(t *testing.T) {
	require.Equal(t, 100*time.Second, backlogDuration(1_000_000, 10000))
	require.Equal(t, 100*time.Millisecond, backlogDuration(1, 10000))
}

// The drain's counters are read again until the sorters' flushed rows
// show the drain (their commit step follows the publication the drain is
// seen in), within a bound; counters read before the drain are taken off.
func TestScrapeAfterDrain(t *testing.T) {
	reg := prometheus.NewRegistry()
	flushed := prometheus.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_rows_flushed_total"})
	reg.MustRegister(flushed)
	f := &fleet{members: []member{{name: "sorter-1", reg: reg}}}
	flushed.Add(7)
	before := map[string]float64{}
	require.NoError(t, scrapeCounters(f, before))
	require.Equal(t, 7.0, before["tistream_sorter_rows_flushed_total"])

	go func() {
		time.Sleep(50 * time.Millisecond)
		flushed.Add(100) // the commit step, late
	}()
	got := map[string]float64{}
	start := time.Now()
	require.NoError(t, scrapeAfterDrain(context.Background(), f, before, got, 100, 10*time.Second))
	require.Equal(t, 100.0, got["tistream_sorter_rows_flushed_total"])
	require.Less(t, time.Since(start), 5*time.Second, "it stops once the rows are there")

	// Never enough: it gives up after the bound and reports what it read.
	start = time.Now()
	require.NoError(t, scrapeAfterDrain(context.Background(), f, before, got, 1000, 100*time.Millisecond))
	require.Equal(t, 100.0, got["tistream_sorter_rows_flushed_total"])
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
}
