package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/sorter/sorterbench"
)

// warmUp runs the workload in a directory of its own, empty, inside the
// run's, and leaves nothing there for the timed run.
func TestWarmUpRunsInItsOwnDirectory(t *testing.T) {
	dir := t.TempDir()
	calls := 0
	run := func(_ context.Context, o sorterbench.Options) (sorterbench.Result, error) {
		calls++
		require.Equal(t, filepath.Join(dir, "warm-up"), o.Dir)
		entries, err := os.ReadDir(o.Dir)
		require.NoError(t, err, "it exists")
		require.Empty(t, entries)
		require.NoError(t, os.WriteFile(filepath.Join(o.Dir, "f"), []byte("x"), 0o644))
		return sorterbench.Result{}, nil
	}
	require.NoError(t, warmUp(context.Background(), run, sorterbench.Options{Dir: dir}))
	require.Equal(t, 1, calls)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "its files are gone")

	failing := func(context.Context, sorterbench.Options) (sorterbench.Result, error) {
		return sorterbench.Result{}, errors.New("boom")
	}
	require.ErrorContains(t, warmUp(context.Background(), failing, sorterbench.Options{Dir: dir}), "boom")
	_, err = os.Stat(filepath.Join(dir, "warm-up"))
	require.True(t, os.IsNotExist(err), "removed after a failure too")
	require.ErrorContains(t, warmUp(context.Background(), run, sorterbench.Options{}), "--dir")
}

// A child with --warm runs the baseline and TiStream (whose Run checks
// that every row read back), leaves no untimed run's files behind and
// says it was warm.
func TestBenchChildWarm(t *testing.T) {
	for _, mode := range []string{"pebble", "committed", "floor"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			var out, errs bytes.Buffer
			code := runBench(context.Background(), []string{"--child", "--warm", "--rows", "20000", "--modes", mode,
				"--dir", dir, "--huge-page-heap", "-1", "--gc-max-headroom", "-1"}, &out, &errs)
			require.Zero(t, code, errs.String())
			var r sorterbench.Result
			require.NoError(t, json.Unmarshal(out.Bytes(), &r), out.String())
			require.Equal(t, mode, r.Mode)
			require.Equal(t, 20000, r.Rows)
			require.True(t, r.Warm)
			require.Positive(t, r.IngestSec)
			_, err := os.Stat(filepath.Join(dir, "warm-up"))
			require.True(t, os.IsNotExist(err), "the untimed run's files are gone")
		})
	}
	// A relative directory not made yet: the warm-up makes it, and the
	// pool's file:// URL does not take its first element for a host.
	t.Run("relative", func(t *testing.T) {
		t.Chdir(t.TempDir())
		var out, errs bytes.Buffer
		code := runBench(context.Background(), []string{"--child", "--warm", "--rows", "20000", "--modes", "committed",
			"--dir", "scratch/run", "--huge-page-heap", "-1", "--gc-max-headroom", "-1"}, &out, &errs)
		require.Zero(t, code, errs.String())
		var r sorterbench.Result
		require.NoError(t, json.Unmarshal(out.Bytes(), &r), out.String())
		require.Equal(t, 20000, r.Rows)
		_, err := os.Stat(filepath.Join("scratch", "run", "pool"))
		require.NoError(t, err, "the pool is in the relative directory")
	})
	var out, errs bytes.Buffer
	require.Equal(t, 1, runBench(context.Background(), []string{"--child", "--warm", "--rows", "20000", "--modes", "committed"}, &out, &errs))
	require.True(t, strings.Contains(errs.String(), "--dir"), errs.String())
}

// A child writes the CPU profile and the execution trace it is asked for;
// a trace it cannot write is an error naming the flag, before any run.
func TestBenchChildProfileAndTrace(t *testing.T) {
	dir := t.TempDir()
	prof, tr := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "run.trace")
	var out, errs bytes.Buffer
	code := runBench(context.Background(), []string{"--child", "--rows", "20000", "--modes", "committed", "--dir", filepath.Join(dir, "run"),
		"--huge-page-heap", "-1", "--gc-max-headroom", "-1", "--cpuprofile", prof, "--trace", tr}, &out, &errs)
	require.Zero(t, code, errs.String())
	b, err := os.ReadFile(tr)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(b, []byte("go 1.")), "an execution trace starts with its version header: %q", b[:min(len(b), 16)])
	st, err := os.Stat(prof)
	require.NoError(t, err)
	require.Positive(t, st.Size())

	out.Reset()
	errs.Reset()
	code = runBench(context.Background(), []string{"--child", "--rows", "20000", "--modes", "committed", "--dir", filepath.Join(dir, "run2"),
		"--huge-page-heap", "-1", "--gc-max-headroom", "-1", "--trace", filepath.Join(dir, "missing", "run.trace")}, &out, &errs)
	require.Equal(t, 2, code)
	require.Contains(t, errs.String(), "--trace")
	require.Empty(t, out.String(), "no run without its trace")
}

// Settings a run would take for something else are refused before any
// child runs, each naming the flag.
func TestBenchRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--procs", "0"}, `--procs "0"`},
		{[]string{"--procs", "1,x"}, `"x" is not a positive GOMAXPROCS`},
		{[]string{"--procs", "2,2"}, "2 is given twice"},
		{[]string{"--runs", "0"}, "--runs 0"},
		{[]string{"--rows", "-5"}, "--rows -5"},
		{[]string{"--rows", "15"}, "multiple of 10"},
		{[]string{"--settle", "-1s"}, "--settle -1s"},
		{[]string{"--flush-interval", "0s"}, "--flush-interval 0s"},
		{[]string{"--workers", "-1"}, "--workers -1"},
		{[]string{"--memory-budget", "-1"}, "--memory-budget -1"},
		{[]string{"--modes", "committed,bogus"}, `unknown mode "bogus"`},
		{[]string{"--child", "--modes", "committed,pairs", "--dir", "d"}, "with --child: want one of"},
		{[]string{"--trace", "t"}, "give them with --child"},
		{[]string{"--cpuprofile", "p"}, "give them with --child"},
	} {
		var out, errs bytes.Buffer
		require.Equal(t, 2, runBench(context.Background(), tc.args, &out, &errs), "%v", tc.args)
		require.Contains(t, errs.String(), tc.want, "%v", tc.args)
		require.Empty(t, out.String(), "%v: no table", tc.args)
	}
}

// The independent copies run at the largest GOMAXPROCS of the list, and
// only when the list has 1 (the figure they are a multiple of) and the
// machine has that many CPUs.
func TestIndependentCopies(t *testing.T) {
	n := runtime.NumCPU()
	require.Equal(t, 0, independentCopies([]string{"1"}), "nothing to scale to")
	require.Equal(t, 0, independentCopies([]string{"2", "4"}), "no one-core figure")
	require.Equal(t, 0, independentCopies([]string{"1", strconv.Itoa(n + 1)}), "more copies than CPUs")
	if n >= 2 {
		require.Equal(t, 2, independentCopies([]string{"2", "1"}))
		require.Equal(t, n, independentCopies([]string{"1", "2", strconv.Itoa(n)}))
	}
	if pin := pinCPU(1); pin != nil { // nil: no taskset here
		require.Equal(t, []string{"--cpu-list", "1"}, pin[1:])
	}
}

// A configuration's line of independent copies: each child's rate, and
// the copies' count times it over one alone, by phase; the median of an
// even count is the mean of the middle two.
func TestPrintIndependent(t *testing.T) {
	res := func(ingest, output float64) sorterbench.Result {
		return sorterbench.Result{Rows: 1_000_000, IngestSec: ingest, OutputSec: output, IngestCPUSec: ingest, OutputCPUSec: output / 2}
	}
	one := []sorterbench.Result{res(1, 0.25), res(1.2, 0.3), res(0.8, 0.2)} // median 1M/s ingest, 4M/s output, 800k/s e2e
	alone := []sorterbench.Result{res(1.25, 0.25), res(1.25, 0.25), res(1, 0.2), res(2, 0.5)}
	var out bytes.Buffer
	printIndependent(&out, "committed", 2, alone, one)
	require.Equal(t, "  committed           ingest 800k each [500k-1000k] 1.60x  output 4000k each [2000k-5000k] 2.00x  e2e 667k each [400k-833k] 1.67x  e2e rows/CPU-s 727k each, 889k alone\n", out.String())
	out.Reset()
	one[0].IngestCPUSec, one[0].OutputCPUSec = 0, 0 // an older binary's: no CPU figure, none printed
	one[1].IngestCPUSec, one[1].OutputCPUSec = 0, 0
	printIndependent(&out, "committed", 2, alone, one)
	require.NotContains(t, out.String(), "CPU")
	out.Reset()
	printIndependent(&out, "committed", 2, nil, one)
	require.Empty(t, out.String(), "no line without independent runs")
}

// The parent of a bench run, whole: its children (this test binary as
// the command) run every configuration at each GOMAXPROCS and, when the
// machine has two CPUs, two independent one-core copies of each at once;
// the table has a line for every phase of every configuration and the
// copies' lines and figures.
func TestBenchParentRunsChildrenAndCopies(t *testing.T) {
	t.Setenv(asCommand, "1")
	var out, errs bytes.Buffer
	code := runBench(context.Background(), []string{"--rows", "20000", "--runs", "1", "--procs", "1,2", "--modes", "committed",
		"--settle", "0", "--dir", t.TempDir(), "--huge-page-heap", "-1"}, &out, &errs)
	require.Zero(t, code, errs.String())
	table := out.String()
	for _, procs := range []string{"1", "2"} {
		for _, config := range []string{"pebble", "committed"} {
			for _, phase := range []string{"ingest", "output", "e2e"} {
				require.Regexp(t, `(?m)^`+config+` +`+procs+` `+phase+` +\d+k `, table)
			}
		}
	}
	require.Regexp(t, `scaling, end-to-end median rows/s at GOMAXPROCS=2 over GOMAXPROCS=1: +pebble \d+\.\d\dx`, table)
	if runtime.NumCPU() < 2 {
		require.NotContains(t, table, "copies")
		return
	}
	require.Regexp(t, `committed \d+\.\d\dx \(2 copies \d+\.\d\dx\)`, table)
	for _, config := range []string{"pebble", "committed"} {
		require.Regexp(t, `(?m)^  `+config+` +ingest \d+k each \[\d+k-\d+k\] \d+\.\d\dx  output .* e2e \d+k each .*e2e rows/CPU-s \d+k each, \d+k alone$`, table)
	}

	// --independent=false: no copies.
	out.Reset()
	code = runBench(context.Background(), []string{"--rows", "20000", "--runs", "1", "--procs", "1,2", "--modes", "committed",
		"--settle", "0", "--dir", t.TempDir(), "--huge-page-heap", "-1", "--independent=false"}, &out, &errs)
	require.Zero(t, code, errs.String())
	require.NotContains(t, out.String(), "copies")
}
