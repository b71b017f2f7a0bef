package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/replay"
)

func init() {
	register(command{name: "replay", summary: "run the ordering core offline over a data change buffer into a committed data pool", run: runReplay})
}

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storeURL := fs.String("store", "", "data change buffer to read (file:///dir, s3://bucket/prefix?endpoint=...)")
	poolURL := fs.String("pool", "", "committed data pool to write (must not hold the tenants yet)")
	cluster := fs.Uint64("cluster", 1, "upstream cluster id")
	tenants := fs.String("tenant", "", "tenant ids, comma-separated (default: every tenant of the cluster)")
	ranges := fs.Int("ranges", 1, "ranges per tenant, split at table boundaries")
	workDir := fs.String("work-dir", "", "directory for the sorter's Pebble buffers (default: a temporary directory, removed at the end)")
	bufferMemory := fs.Int64("buffer-memory", 0, "bytes of sorted rows kept in memory before the largest ranges move to Pebble (default 512 MiB)")
	random := fs.Bool("random-order", false, "interleave the stores' files in a seeded random order instead of round-robin")
	seed := fs.Uint64("seed", 1, "seed for --random-order and --restore-chance")
	restore := fs.Float64("restore-chance", 0, "after each file, the chance to crash a random range and restore it from a stale snapshot")
	quiet := fs.Bool("quiet", false, "no progress lines")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file at the end")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tistream replay --store URL --pool URL [--tenant T] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *storeURL == "" || *poolURL == "" {
		fmt.Fprintln(stderr, "tistream replay: --store and --pool are required")
		return 2
	}
	if *restore < 0 || *restore > 1 {
		fmt.Fprintln(stderr, "tistream replay: --restore-chance must be between 0 and 1")
		return 2
	}
	cfg := replay.Config{Cluster: *cluster, Ranges: *ranges, Random: *random, Seed: *seed, RestoreChance: *restore, WorkDir: *workDir,
		BufferMemory: *bufferMemory}
	for _, t := range strings.Split(*tenants, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		id, err := strconv.ParseUint(t, 10, 64)
		if err != nil {
			fmt.Fprintf(stderr, "tistream replay: --tenant %q: %v\n", t, err)
			return 2
		}
		cfg.Tenants = append(cfg.Tenants, id)
	}
	var err error
	if cfg.Buffer, err = objstore.Open(ctx, *storeURL); err != nil {
		fmt.Fprintf(stderr, "tistream replay: --store: %v\n", err)
		return 1
	}
	if cfg.Pool, err = objstore.Open(ctx, *poolURL); err != nil {
		fmt.Fprintf(stderr, "tistream replay: --pool: %v\n", err)
		return 1
	}
	if cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "tistream-replay-")
		if err != nil {
			fmt.Fprintf(stderr, "tistream replay: %v\n", err)
			return 1
		}
		defer os.RemoveAll(dir)
		cfg.WorkDir = dir
	}
	if !*quiet {
		last := time.Now()
		cfg.Progress = func(s replay.Summary) {
			if time.Since(last) >= 5*time.Second {
				last = time.Now()
				fmt.Fprintf(stderr, "replay: %d files, %.1f MiB read\n", s.Files, float64(s.Bytes)/(1<<20))
			}
		}
	}
	stop, ok := startCPUProfile(*cpuProfile, "replay", stderr)
	if !ok {
		return 2
	}
	defer stop()
	if *memProfile != "" {
		cfg.AfterTenant = func() {
			f, err := os.Create(*memProfile)
			if err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
	}
	sum, err := replay.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "tistream replay: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "replayed %d files (%.1f MiB) of %d tenants into %d ranges in %s\n",
		sum.Files, float64(sum.Bytes)/(1<<20), sum.Tenants, sum.Ranges, sum.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(stdout, "rows: %d events applied, %d committed rows flushed in %d range flushes (%d group publications); %d late commits dropped\n",
		sum.Rows, sum.RowsFlushed, sum.Flushes, sum.Publications, sum.LateCommits)
	if sum.Restores > 0 {
		fmt.Fprintf(stdout, "chaos: %d ranges restored from stale snapshots, %d files redelivered\n", sum.Restores, sum.Redelivered)
	}
	for t, wm := range sum.Watermarks {
		fmt.Fprintf(stdout, "tenant %d: published watermark %d\n", t, wm)
	}
	return 0
}
