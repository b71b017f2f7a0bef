package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"

	"github.com/tistream/tistream/libs/sorter/sorterbench"
)

func init() {
	register(command{name: "bench", summary: "run the standard sorter workload through the ordering core and print a table", run: runBench})
}

// runBench runs every (mode, GOMAXPROCS) combination several times, each run
// in its own process so peak RSS and warm-up are per run, and prints
// min/median/max of each phase.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rows := fs.Int("rows", 1_000_000, "rows of the standard workload")
	runs := fs.Int("runs", 3, "runs per configuration")
	procs := fs.String("procs", "1,2", "GOMAXPROCS values, comma-separated")
	modes := fs.String("modes", "committed,pairs", "committed (1PC rows) and/or pairs (prewrite + commit through the matcher)")
	dir := fs.String("dir", "", "scratch directory (default: a temporary one)")
	child := fs.Bool("child", false, "run once in this process and print a JSON result (used by the parent)")
	cpuProfile := fs.String("cpuprofile", "", "with --child: write a CPU profile of the run")
	memProfile := fs.String("memprofile", "", "with --child: write a heap profile after the ingest phase")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *child {
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				fmt.Fprintf(stderr, "tistream bench: %v\n", err)
				return 2
			}
			defer f.Close()
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
		opts := sorterbench.Options{Rows: *rows, Pairs: *modes == "pairs", Dir: *dir, Seed: 1}
		if *memProfile != "" {
			opts.AfterIngest = func() {
				if f, err := os.Create(*memProfile); err == nil {
					_ = pprof.WriteHeapProfile(f)
					f.Close()
				}
			}
		}
		res, err := sorterbench.Run(ctx, opts)
		if err != nil {
			fmt.Fprintf(stderr, "tistream bench: %v\n", err)
			return 1
		}
		_ = json.NewEncoder(stdout).Encode(res)
		return 0
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "tistream bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "standard sorter workload: %d rows x 275 B over 64 tables, ingest (apply + sort + flush to a local-disk pool) then output (every table read back in order)\n", *rows)
	fmt.Fprintf(stdout, "%-16s %5s %-8s %26s %26s %26s %18s\n", "mode", "procs", "phase", "rows/s min/med/max", "MB/s min/med/max", "end-to-end rows/s", "peak RSS MiB")
	for _, mode := range strings.Split(*modes, ",") {
		for _, p := range strings.Split(*procs, ",") {
			var results []sorterbench.Result
			for i := 0; i < *runs; i++ {
				scratch, err := os.MkdirTemp(*dir, "tistream-bench-")
				if err != nil {
					fmt.Fprintf(stderr, "tistream bench: %v\n", err)
					return 1
				}
				cmd := exec.CommandContext(ctx, exe, "bench", "--child", "--rows", strconv.Itoa(*rows), "--modes", mode, "--dir", scratch)
				cmd.Env = append(os.Environ(), "GOMAXPROCS="+p)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, stderr
				err = cmd.Run()
				os.RemoveAll(scratch)
				if err != nil {
					fmt.Fprintf(stderr, "tistream bench: run %d of %s with GOMAXPROCS=%s: %v\n", i+1, mode, p, err)
					return 1
				}
				var r sorterbench.Result
				if err := json.Unmarshal(out.Bytes(), &r); err != nil {
					fmt.Fprintf(stderr, "tistream bench: child output %q: %v\n", out.String(), err)
					return 1
				}
				results = append(results, r)
			}
			printPhases(stdout, mode, p, results)
		}
	}
	return 0
}

func printPhases(w io.Writer, mode, procs string, rs []sorterbench.Result) {
	rate := func(f func(sorterbench.Result) float64) (lo, med, hi float64) {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = float64(r.Rows) / f(r)
		}
		slices.Sort(v)
		return v[0], v[len(v)/2], v[len(v)-1]
	}
	rss := make([]float64, len(rs))
	for i, r := range rs {
		rss[i] = r.PeakRSSMiB
	}
	slices.Sort(rss)
	e2eLo, e2eMed, e2eHi := rate(func(r sorterbench.Result) float64 { return r.IngestSec + r.OutputSec })
	for _, ph := range []struct {
		name string
		f    func(sorterbench.Result) float64
	}{{"ingest", func(r sorterbench.Result) float64 { return r.IngestSec }}, {"output", func(r sorterbench.Result) float64 { return r.OutputSec }}} {
		lo, med, hi := rate(ph.f)
		mb := float64(sorterbench.RowBytes) / 1e6
		fmt.Fprintf(w, "%-16s %5s %-8s %8.0fk/%6.0fk/%6.0fk %8.1f/%7.1f/%7.1f %8.0fk/%6.0fk/%6.0fk %6.0f/%5.0f/%5.0f\n",
			mode, procs, ph.name, lo/1e3, med/1e3, hi/1e3, lo*mb, med*mb, hi*mb, e2eLo/1e3, e2eMed/1e3, e2eHi/1e3, rss[0], rss[len(rss)/2], rss[len(rss)-1])
	}
}
