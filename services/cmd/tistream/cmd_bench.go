package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tistream/tistream/libs/gcpace"
	"github.com/tistream/tistream/libs/offheap"
	"github.com/tistream/tistream/libs/sorter"
	"github.com/tistream/tistream/libs/sorter/sorterbench"
)

func init() {
	register(command{name: "bench", summary: "run the standard sorter workload through the ordering core and plain Pebble, and print a table", run: runBench})
}

// benchConfig is one line of the table: an implementation and its mode.
// benchModes are the modes a run compares with plain Pebble (a child also
// runs "pebble", the baseline itself).
var benchModes = []string{"committed", "pairs", "floor"}

type benchConfig struct {
	label string
	exe   string // the binary whose `bench --child` runs it
	mode  string // --modes of the child: pebble, committed, pairs or floor
	// before: another binary, which may not know this one's flags
	before bool
}

// runBench runs every (configuration, GOMAXPROCS) pair several times,
// alternating them within each round, each run in its own process so peak
// RSS and warm-up are per run, and prints the medians with every figure
// also as a multiple of plain Pebble's in the same run.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rows := fs.Int("rows", 1_000_000, "rows of the standard workload")
	runs := fs.Int("runs", 3, "runs per configuration")
	procs := fs.String("procs", "1,2", "GOMAXPROCS values, comma-separated")
	modes := fs.String("modes", "committed,pairs", "committed (1PC rows) and/or pairs (prewrite + commit through the matcher), and/or floor (the pool path alone: rows copied once into reused memory, published and read back, no ordering core; a bound, not a sorter); with --child also pebble (the baseline)")
	workers := fs.Int("workers", 0, "worker goroutines driving the ranges (default: four times GOMAXPROCS, at least 8)")
	budget := fs.Int64("memory-budget", 0, "memory-first buffer budget in bytes (default 512 MiB)")
	flush := fs.Duration("flush-interval", sorter.DefaultFlushInterval, "how often every range is published (default: the sorter's default flush_interval; not passed to --before's binary)")
	flushBytes := fs.Int64("flush-bytes", 0, fmt.Sprintf("a round comes sooner than --flush-interval once this many bytes of rows were fed since the last one (default: the sorter's --flush-bytes default, %d MiB; -1: the interval alone; not passed to --before's binary)", sorter.DefaultFlushBytes>>20))
	stall := fs.Int64("write-stall-bytes", 0, fmt.Sprintf("the feeder waits while the rows in memory pass this many bytes and a flush round is under way, as the sorter's ingest does (default: the sorter's --write-stall-bytes default, %d MiB; -1: never; not passed to --before's binary)", sorter.DefaultWriteStallBytes>>20))
	headroom := fs.Int64("gc-max-headroom", 0, "bytes the Go heap may grow past its live data before the next collection, as every service's --gc-max-headroom (package gcpace; 0 = the services' default, 128 MiB; -1 = GOGC alone; not passed to --before's binary)")
	hugeHeap := fs.Int64("huge-page-heap", 0, "bytes of each child's Go heap growth advised for huge pages at its start, as every service's --huge-page-heap, for every run, pebble's included (0 = the services' default, 1 GiB; -1 = off; not passed to --before's binary)")
	hugePages := fs.String("huge-pages", "auto", "transparent huge pages for each child's large buffers, as every service's --huge-pages: auto (measured at the child's start), on, off; pebble's runs too (its Go heap); not passed to --before's binary")
	settle := fs.Duration("settle", 4*time.Second, "pause before each child run, so each starts with memory the host has taken back (the memory a run frees is cheap to touch again for ~2 s: without the pause, a run right after a TiStream run measured ~25 % faster); 0: back to back")
	before := fs.String("before", "", "another tistream binary whose `bench --child` runs alternate with these (a before/after comparison)")
	dir := fs.String("dir", "", "scratch directory, created if missing: each run gets a temporary directory inside it (default: the system's temporary directory); with --child, the run's own directory")
	pin := fs.Bool("pin", true, "run each child on CPUs 0..GOMAXPROCS-1 with taskset when the machine has more (GOMAXPROCS alone lets system calls and cgo calls use other cores); --pin=false for GOMAXPROCS only")
	independent := fs.Bool("independent", true, "also run, at the largest GOMAXPROCS N of --procs when --procs has 1 too, N one-core children of each configuration (not --before's) at once, each pinned to a CPU of its own: what this machine gives N copies of the work that share nothing but the machine, to read the scaling line against")
	warm := fs.Bool("warm", false, "every child runs the workload once untimed before the timed run, in the same process (memory and page cache it touched are reused: a long-running process, not a fresh one); passed to --before's binary too, which must know it")
	child := fs.Bool("child", false, "run once in this process and print a JSON result (used by the parent)")
	cpuProfile := fs.String("cpuprofile", "", "with --child: write a CPU profile of the run")
	memProfile := fs.String("memprofile", "", "with --child: write a heap profile after the ingest phase (and FILE.end after the output phase); with --warm its allocation counts include the untimed run's")
	traceFile := fs.String("trace", "", "with --child: write an execution trace of the run (go tool trace FILE): where goroutines waited and the processors were idle")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := checkBenchFlags(*rows, *runs, *procs, *modes, *child, *settle, *flush, *workers, *budget); err != nil {
		fmt.Fprintf(stderr, "tistream bench: %v\n", err)
		return 2
	}
	if !*child && (*cpuProfile != "" || *memProfile != "" || *traceFile != "") {
		fmt.Fprintln(stderr, "tistream bench: --cpuprofile, --memprofile and --trace record one child's run: give them with --child")
		return 2
	}
	pageMode, err := offheap.ParsePageMode(*hugePages)
	if err != nil {
		fmt.Fprintf(stderr, "tistream bench: --huge-pages: %v\n", err)
		return 2
	}
	if *child {
		offheap.SetPageMode(pageMode)
		offheap.HugeHeap(offheap.HugeHeapSetting(*hugeHeap)) // first: it wants a heap with no free space of its own
		if *headroom >= 0 {
			_, release := gcpace.Acquire(gcpace.Options{MaxHeadroom: *headroom})
			defer release()
		}
		return benchChild(ctx, sorterbench.Options{Rows: *rows, Pairs: *modes == "pairs", Dir: *dir, Seed: 1, Workers: *workers,
			MemoryBudget: *budget, FlushEvery: *flush, FlushBytes: *flushBytes, WriteStallBytes: *stall}, *modes, *warm,
			benchProfiles{cpu: *cpuProfile, mem: *memProfile, trace: *traceFile}, stdout, stderr)
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "tistream bench: %v\n", err)
		return 1
	}
	if *dir != "" {
		// Created now, not found missing after the first run's settle pause.
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			fmt.Fprintf(stderr, "tistream bench: --dir: %v\n", err)
			return 1
		}
	}
	configs := []benchConfig{{label: "pebble", exe: exe, mode: "pebble"}}
	for _, m := range strings.Split(*modes, ",") {
		if !slices.Contains(benchModes, m) {
			fmt.Fprintf(stderr, "tistream bench: unknown mode %q (%s)\n", m, strings.Join(benchModes, ", "))
			return 2
		}
		configs = append(configs, benchConfig{label: m, exe: exe, mode: m})
		if *before != "" && m != "floor" { // a probe of this binary's pool path, not a sorter to compare
			configs = append(configs, benchConfig{label: m + " (before)", exe: *before, mode: m, before: true})
		}
	}
	// The settings passed to this binary's children (not to --before's,
	// which may not know them).
	settings := []string{"--flush-interval", flush.String()}
	var both []string // passed to --before's children too
	if *warm {
		both = append(both, "--warm")
	}
	if *workers > 0 {
		settings = append(settings, "--workers", strconv.Itoa(*workers))
	}
	if *budget > 0 {
		settings = append(settings, "--memory-budget", strconv.FormatInt(*budget, 10))
	}
	if *headroom != 0 {
		settings = append(settings, "--gc-max-headroom", strconv.FormatInt(*headroom, 10))
	}
	if *hugeHeap != 0 {
		settings = append(settings, "--huge-page-heap", strconv.FormatInt(*hugeHeap, 10))
	}
	if pageMode != offheap.PagesAuto {
		settings = append(settings, "--huge-pages", pageMode.String())
	}
	if *flushBytes != 0 {
		settings = append(settings, "--flush-bytes", strconv.FormatInt(*flushBytes, 10))
	}
	if *stall != 0 {
		settings = append(settings, "--write-stall-bytes", strconv.FormatInt(*stall, 10))
	}
	procList := strings.Split(*procs, ",")
	copies := 0 // independent one-core children run at once, 0: none
	if *independent {
		copies = independentCopies(procList)
	}
	results := map[string][]sorterbench.Result{} // label + procs -> runs; label + "/alone": every independent child
	for i := 0; i < *runs; i++ {
		for _, p := range procList {
			// Each round starts with another configuration, so none always
			// follows the same one (what a run left behind, page cache or
			// memory the host still backs, favours the next).
			for j := range configs {
				c := configs[(i+j)%len(configs)]
				if !settleFor(ctx, *settle) {
					return 1
				}
				var cpus []string
				if *pin {
					cpus = pinCommand(p)
				}
				r, err := benchRun(ctx, c, p, cpus, *rows, settings, both, *dir, stderr)
				if err != nil {
					fmt.Fprintf(stderr, "tistream bench: run %d of %s with GOMAXPROCS=%s: %v\n", i+1, c.label, p, err)
					return 1
				}
				results[c.label+"/"+p] = append(results[c.label+"/"+p], r)
			}
			if strconv.Itoa(copies) != p {
				continue
			}
			for j := range configs {
				c := configs[(i+j)%len(configs)]
				if c.before {
					continue
				}
				if !settleFor(ctx, *settle) {
					return 1
				}
				rs, err := benchIndependent(ctx, c, copies, *pin, *rows, settings, both, *dir, stderr)
				if err != nil {
					fmt.Fprintf(stderr, "tistream bench: run %d of %s as %d independent one-core children: %v\n", i+1, c.label, copies, err)
					return 1
				}
				results[c.label+"/alone"] = append(results[c.label+"/alone"], rs...)
			}
		}
	}
	fmt.Fprintf(stdout, "standard sorter workload: %d rows x %d B over %d tables. ingest = apply, match, sort and flush to a local-disk pool (fsync'd)\n", *rows, sorterbench.RowBytes, sorterbench.Tables)
	fmt.Fprintf(stdout, "every %v%s (one group publication of every range; the sorter's defaults: %v, %d MiB);\n",
		*flush, flushBytesLabel(*flushBytes), sorter.DefaultFlushInterval, sorter.DefaultFlushBytes>>20)
	fmt.Fprintf(stdout, "output = every table read back in order from the pool. pebble = the same rows into one plain Pebble instance (WAL off,\n")
	fmt.Fprintf(stdout, "1,000-row batches, commit order), then read back. %d runs of each, alternating, each round starting with the next\n", *runs)
	fmt.Fprintf(stdout, "configuration, %v of pause before each run (--settle); medians [min-max]; x pebble = median\n", *settle)
	fmt.Fprintf(stdout, "rows/s over pebble's median at the same GOMAXPROCS in this run; rows/CPU-s divides by the process's CPU time in the\n")
	fmt.Fprintf(stdout, "phase (* the whole child process: an older binary reports no phases), robust to other load; cores = CPU / wall;\n")
	fmt.Fprintf(stdout, "allocs and B per row are Go heap allocations; RSS is the peak. Page size of large buffers (--huge-pages %s, the\n", pageMode)
	fmt.Fprintf(stdout, "services' setting; pebble's runs too): %s; with huge pages a child also advises %d MiB of its heap's growth\n", pageCounts(results), offheap.HugeHeapSetting(*hugeHeap)>>20)
	fmt.Fprintf(stdout, "(--huge-page-heap); %s.\n", pinNote(procList, *pin))
	if *warm {
		fmt.Fprintf(stdout, "--warm: every child (pebble's too) ran the workload once untimed first, in the same process, and deleted its files:\n")
		fmt.Fprintf(stdout, "these are a long-running process's figures, its memory and page cache touched before; RSS is the peak of both runs.\n")
	}
	fmt.Fprintf(stdout, "%-20s %5s %-7s %26s %8s %7s %9s %6s %10s %7s %8s\n", "config", "procs", "phase", "rows/s med [min-max]", "x pebble", "MB/s", "rows/CPU-s", "cores", "allocs/row", "B/row", "RSS MiB")
	for _, p := range procList {
		base := results["pebble/"+p]
		for _, c := range configs {
			printPhases(stdout, c.label, p, results[c.label+"/"+p], base)
		}
	}
	if len(procList) > 1 {
		lo, hi := procList[0], procList[len(procList)-1]
		fmt.Fprintf(stdout, "scaling, end-to-end median rows/s at GOMAXPROCS=%s over GOMAXPROCS=%s:", hi, lo)
		for _, c := range configs {
			a, b := results[c.label+"/"+lo], results[c.label+"/"+hi]
			fmt.Fprintf(stdout, "  %s %.2fx", c.label, median(b, e2eRate)/median(a, e2eRate))
			if alone := results[c.label+"/alone"]; len(alone) > 0 && lo == "1" && hi == strconv.Itoa(copies) {
				fmt.Fprintf(stdout, " (%d copies %.2fx)", copies, float64(copies)*median(alone, e2eRate)/median(a, e2eRate))
			}
		}
		fmt.Fprintln(stdout)
	}
	if copies > 0 {
		fmt.Fprintf(stdout, "copies: %d independent one-core children of a configuration at once (--independent), each pinned to a CPU of its own,\n", copies)
		fmt.Fprintf(stdout, "sharing nothing but the machine (caches, memory bandwidth, disk, the host): what this machine gives %d copies of the\n", copies)
		fmt.Fprintf(stdout, "work, to read the scaling of one process against; %d x their median rows/s over the median of one alone at GOMAXPROCS=1:\n", copies)
		for _, c := range configs {
			if !c.before {
				printIndependent(stdout, c.label, copies, results[c.label+"/alone"], results[c.label+"/1"])
			}
		}
	}
	return 0
}

// independentCopies is how many independent one-core children measure the
// machine's scaling: the largest GOMAXPROCS of the list when the list has
// 1 too and the machine has that many CPUs, else 0 (none).
func independentCopies(procList []string) int {
	n := 0
	one := false
	for _, p := range procList {
		v, err := strconv.Atoi(p)
		if err != nil {
			return 0
		}
		one = one || v == 1
		n = max(n, v)
	}
	if !one || n < 2 || n > runtime.NumCPU() {
		return 0
	}
	return n
}

// benchIndependent runs n one-core children of c at once, child k pinned to
// CPU k if pinned (and taskset is there), and returns their results.
func benchIndependent(ctx context.Context, c benchConfig, n int, pinned bool, rows int, settings, both []string, dir string, stderr io.Writer) ([]sorterbench.Result, error) {
	results := make([]sorterbench.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for k := 0; k < n; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cpu []string
			if pinned {
				cpu = pinCPU(k)
			}
			results[k], errs[k] = benchRun(ctx, c, "1", cpu, rows, settings, both, dir, stderr)
		}()
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// printIndependent prints a configuration's line of the independent
// copies: their rows/s each, and n times that over one child alone, by
// phase. Each child times its own phases; started together and doing the
// same work, their phases overlap nearly exactly.
func printIndependent(w io.Writer, label string, n int, alone, one []sorterbench.Result) {
	if len(alone) == 0 || len(one) == 0 {
		return
	}
	fmt.Fprintf(w, "  %-18s", label)
	for _, ph := range []struct {
		name string
		rate func(sorterbench.Result) float64
	}{{"ingest", ingestRate}, {"output", outputRate}, {"e2e", e2eRate}} {
		lo, med, hi := spread(alone, ph.rate)
		fmt.Fprintf(w, "  %s %.0fk each [%.0fk-%.0fk] %.2fx", ph.name, med/1e3, lo/1e3, hi/1e3, float64(n)*med/median(one, ph.rate))
	}
	// CPU a row, copies against one alone: a copy slowed by the machine
	// (caches, memory, the host) pays more of it.
	perCPU := func(r sorterbench.Result) float64 {
		if cpu := r.IngestCPUSec + r.OutputCPUSec; cpu > 0 {
			return float64(r.Rows) / cpu
		}
		return 0
	}
	if a, b := median(alone, perCPU), median(one, perCPU); a > 0 && b > 0 {
		fmt.Fprintf(w, "  e2e rows/CPU-s %.0fk each, %.0fk alone", a/1e3, b/1e3)
	}
	fmt.Fprintln(w)
}

// benchProfiles are a child's profile and trace files ("": none).
type benchProfiles struct{ cpu, mem, trace string }

func benchChild(ctx context.Context, opts sorterbench.Options, mode string, warm bool, prof benchProfiles, stdout, stderr io.Writer) int {
	run := sorterbench.Run
	switch mode {
	case "pebble":
		run = sorterbench.RunBaseline
	case "floor":
		run = sorterbench.RunFloor
	}
	if warm {
		if err := warmUp(ctx, run, opts); err != nil {
			fmt.Fprintf(stderr, "tistream bench: the untimed run before the timed one (--warm): %v\n", err)
			return 1
		}
	}
	stop, ok := startCPUProfile(prof.cpu, "bench", stderr)
	if !ok {
		return 2
	}
	defer stop()
	stopTrace, ok := startTrace(prof.trace, "bench", stderr)
	if !ok {
		return 2
	}
	defer stopTrace()
	if memProfile := prof.mem; memProfile != "" {
		write := func(path string) func() {
			return func() {
				runtime.GC() // the profile then counts every allocation up to here
				writeHeapProfile(path, "bench", stderr)
			}
		}
		opts.AfterIngest, opts.AfterOutput = write(memProfile), write(memProfile+".end")
	}
	res, err := run(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "tistream bench: %v\n", err)
		return 1
	}
	res.Warm = warm
	res.Pages = "small"
	if offheap.Pages().Huge {
		res.Pages = "huge"
	}
	_ = json.NewEncoder(stdout).Encode(res)
	return 0
}

// pageCounts says which page size this binary's children took, over all
// their runs ("huge pages in 3 runs, small in 27").
func pageCounts(results map[string][]sorterbench.Result) string {
	n := map[string]int{}
	for _, rs := range results {
		for _, r := range rs {
			if r.Pages != "" {
				n[r.Pages]++
			}
		}
	}
	var parts []string
	for _, k := range []string{"small", "huge"} {
		if n[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s pages in %d runs", k, n[k]))
		}
	}
	if len(parts) == 0 {
		return "not reported"
	}
	return strings.Join(parts, ", ")
}

// checkBenchFlags rejects settings the runs would otherwise take silently
// for something else: GOMAXPROCS=0 or =x is the machine's core count
// under another label, no runs print a table of NaN, and a row count that
// is not whole transactions was rounded down.
func checkBenchFlags(rows, runs int, procs, modes string, child bool, settle, flush time.Duration, workers int, budget int64) error {
	switch {
	case rows <= 0 || rows%sorterbench.TxnRows != 0:
		return fmt.Errorf("--rows %d: want a positive multiple of %d (the workload's transactions have %d rows)", rows, sorterbench.TxnRows, sorterbench.TxnRows)
	case runs < 1:
		return fmt.Errorf("--runs %d: want at least 1", runs)
	case settle < 0:
		return fmt.Errorf("--settle %v: want 0 (back to back) or more", settle)
	case flush <= 0:
		return fmt.Errorf("--flush-interval %v: want more than 0", flush)
	case workers < 0:
		return fmt.Errorf("--workers %d: want 0 (the default) or more", workers)
	case budget < 0:
		return fmt.Errorf("--memory-budget %d: want 0 (the default) or more", budget)
	}
	if child {
		if modes != "pebble" && !slices.Contains(benchModes, modes) {
			return fmt.Errorf("--modes %q with --child: want one of pebble, %s", modes, strings.Join(benchModes, ", "))
		}
		return nil
	}
	seen := map[int]bool{}
	for _, p := range strings.Split(procs, ",") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return fmt.Errorf("--procs %q: %q is not a positive GOMAXPROCS", procs, p)
		}
		if seen[n] {
			return fmt.Errorf("--procs %q: %d is given twice", procs, n)
		}
		seen[n] = true
	}
	return nil
}

// warmUp runs the workload once in a directory of its own inside
// opts.Dir (the run's directory, empty) and deletes it, so the timed run
// that follows finds the process's memory, and the page cache the deleted
// files held, touched before: what a long-running sorter sees in its
// second round and after. The timed run is no less checked for it: it
// reads back its own rows from its own directory.
func warmUp(ctx context.Context, run func(context.Context, sorterbench.Options) (sorterbench.Result, error), opts sorterbench.Options) error {
	if opts.Dir == "" {
		return fmt.Errorf("a scratch directory (--dir) is required")
	}
	opts.Dir = filepath.Join(opts.Dir, "warm-up")
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return err
	}
	_, err := run(ctx, opts)
	if rmErr := os.RemoveAll(opts.Dir); err == nil {
		err = rmErr
	}
	return err
}

// flushBytesLabel says what a --flush-bytes setting adds to the interval.
func flushBytesLabel(v int64) string {
	switch {
	case v < 0:
		return ""
	case v == 0:
		v = sorter.DefaultFlushBytes
	}
	return fmt.Sprintf(" or once %d MiB of rows were fed, whichever first", v>>20)
}

// benchRun runs one configuration once in a child process, under the
// pin prefix if there is one (pinCommand, pinCPU).
func benchRun(ctx context.Context, c benchConfig, procs string, pin []string, rows int, settings, both []string, dir string, stderr io.Writer) (sorterbench.Result, error) {
	scratch, err := os.MkdirTemp(dir, "tistream-bench-")
	if err != nil {
		return sorterbench.Result{}, err
	}
	defer os.RemoveAll(scratch)
	args := append([]string{"bench", "--child", "--rows", strconv.Itoa(rows), "--modes", c.mode, "--dir", scratch}, both...)
	if !c.before {
		args = append(args, settings...)
	}
	cmd := exec.CommandContext(ctx, c.exe, args...)
	if pin != nil {
		cmd = exec.CommandContext(ctx, pin[0], append(pin[1:], append([]string{c.exe}, args...)...)...)
	}
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+procs)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return sorterbench.Result{}, err
	}
	var r sorterbench.Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return r, fmt.Errorf("child output %q: %w", out.String(), err)
	}
	if slices.Contains(both, "--warm") && !r.Warm {
		return r, fmt.Errorf("%s did not run the untimed run first (--warm)", c.exe)
	}
	r.ProcessCPUSec = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return r, nil
}

// pinCommand is the taskset prefix that runs a child on CPUs 0..procs-1
// when the machine has more, or nil (taskset missing, or procs covers every
// CPU). GOMAXPROCS bounds the threads running Go code only: system calls
// and cgo calls (libzstd's compression, libs/formats/container) run on
// other threads, so a child at GOMAXPROCS=1 could use a second core.
// Pinned, "1 core" means one core for every configuration, Pebble too.
func pinCommand(procs string) []string {
	n, err := strconv.Atoi(procs)
	if err != nil || n >= runtime.NumCPU() {
		return nil
	}
	return taskset(fmt.Sprintf("0-%d", n-1))
}

// pinCPU is the taskset prefix that runs a child on CPU k alone, or nil
// when taskset is missing.
func pinCPU(k int) []string { return taskset(strconv.Itoa(k)) }

// taskset is the prefix that runs a command on the CPUs of list, or nil
// when taskset is missing.
func taskset(list string) []string {
	path, err := exec.LookPath("taskset")
	if err != nil {
		return nil
	}
	return []string{path, "--cpu-list", list}
}

// settleFor waits d before a child run (--settle); false if ctx ended.
func settleFor(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// pinNote says how the children are pinned, for the table's header.
func pinNote(procList []string, pin bool) string {
	var pinned []string
	if !pin {
		procList = nil
	}
	for _, p := range procList {
		if pinCommand(p) != nil {
			pinned = append(pinned, p)
		}
	}
	if len(pinned) == 0 {
		return "children not pinned to CPUs (GOMAXPROCS only)"
	}
	return fmt.Sprintf("children at GOMAXPROCS=%s pinned to as many CPUs (taskset)", strings.Join(pinned, ","))
}

// A phase's figures from one run.
var (
	ingestRate = func(r sorterbench.Result) float64 { return float64(r.Rows) / r.IngestSec }
	outputRate = func(r sorterbench.Result) float64 { return float64(r.Rows) / r.OutputSec }
	e2eRate    = func(r sorterbench.Result) float64 { return float64(r.Rows) / (r.IngestSec + r.OutputSec) }
)

func median(rs []sorterbench.Result, f func(sorterbench.Result) float64) float64 {
	_, med, _ := spread(rs, f)
	return med
}

func spread(rs []sorterbench.Result, f func(sorterbench.Result) float64) (lo, med, hi float64) {
	if len(rs) == 0 {
		return 0, 0, 0
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	med = v[len(v)/2]
	if len(v)%2 == 0 { // the independent children come in pairs
		med = (v[len(v)/2-1] + med) / 2
	}
	return v[0], med, v[len(v)-1]
}

func printPhases(w io.Writer, label, procs string, rs, base []sorterbench.Result) {
	type phase struct {
		name          string
		rate          func(sorterbench.Result) float64
		sec, cpu      func(sorterbench.Result) float64
		allocs, bytes func(sorterbench.Result) float64
	}
	phases := []phase{
		{"ingest", ingestRate, func(r sorterbench.Result) float64 { return r.IngestSec }, func(r sorterbench.Result) float64 { return r.IngestCPUSec },
			func(r sorterbench.Result) float64 { return float64(r.IngestAllocs) }, func(r sorterbench.Result) float64 { return float64(r.IngestAllocBytes) }},
		{"output", outputRate, func(r sorterbench.Result) float64 { return r.OutputSec }, func(r sorterbench.Result) float64 { return r.OutputCPUSec },
			func(r sorterbench.Result) float64 { return float64(r.OutputAllocs) }, func(r sorterbench.Result) float64 { return float64(r.OutputAllocBytes) }},
		{"e2e", e2eRate, func(r sorterbench.Result) float64 { return r.IngestSec + r.OutputSec },
			func(r sorterbench.Result) float64 { return r.IngestCPUSec + r.OutputCPUSec },
			func(r sorterbench.Result) float64 { return float64(r.IngestAllocs + r.OutputAllocs) },
			func(r sorterbench.Result) float64 { return float64(r.IngestAllocBytes + r.OutputAllocBytes) }},
	}
	for _, ph := range phases {
		lo, med, hi := spread(rs, ph.rate)
		ratio := med / median(base, ph.rate)
		perRow := func(f func(sorterbench.Result) float64) float64 {
			return median(rs, func(r sorterbench.Result) float64 { return f(r) / float64(r.Rows) })
		}
		allocs, bytesPerRow, cores, perCPU := "-", "-", "-", "-"
		if median(rs, ph.cpu) > 0 {
			allocs = fmt.Sprintf("%.2f", perRow(ph.allocs))
			bytesPerRow = fmt.Sprintf("%.0f", perRow(ph.bytes))
			cores = fmt.Sprintf("%.2f", median(rs, func(r sorterbench.Result) float64 { return ph.cpu(r) / ph.sec(r) }))
			perCPU = fmt.Sprintf("%.0fk", median(rs, func(r sorterbench.Result) float64 { return float64(r.Rows) / ph.cpu(r) })/1e3)
		} else if ph.name == "e2e" {
			// An older binary reports no CPU: the whole child process's.
			perCPU = fmt.Sprintf("%.0fk*", median(rs, func(r sorterbench.Result) float64 { return float64(r.Rows) / r.ProcessCPUSec })/1e3)
		}
		rss := median(rs, func(r sorterbench.Result) float64 { return r.PeakRSSMiB })
		fmt.Fprintf(w, "%-20s %5s %-7s %8.0fk [%6.0fk-%6.0fk] %7.2fx %7.1f %9s %6s %10s %7s %8.0f\n",
			label, procs, ph.name, med/1e3, lo/1e3, hi/1e3, ratio, med*sorterbench.RowBytes/1e6, perCPU, cores, allocs, bytesPerRow, rss)
	}
}
