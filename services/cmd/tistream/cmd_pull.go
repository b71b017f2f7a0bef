package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pull"
	"github.com/tistream/tistream/libs/truth"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

func init() {
	register(command{name: "pull", summary: "pull a table, database or tenant change stream as JSON Lines", run: runPull})
}

func runPull(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pull", flag.ContinueOnError)
	var cc clientCreds
	cc.register(fs)
	fs.SetOutput(stderr)
	poolURL := fs.String("pool", "", "committed data pool to read (file:///dir, s3://...)")
	apiAddr := fs.String("api", "", "pull from a running fleet's api-server at this gRPC address instead of a pool")
	until := fs.Uint64("until-resolved", 0, "with --api: stop once the resolved ts reaches this ts")
	timeout := fs.Duration("timeout", 0, "with --api: give up after this long, keeping what arrived, and exit 1 (0 = never)")
	tenant := fs.Uint64("tenant", 0, "tenant id")
	table := fs.Int64("table", 0, "pull one table by id")
	db := fs.String("db", "", "pull one database by name")
	from := fs.Uint64("from", 0, "start ts: rows with commit_ts >= from")
	follow := fs.Bool("follow", false, "keep following new data until interrupted")
	poll := fs.Duration("poll-interval", 200*time.Millisecond, "how often to look for new data with --follow")
	format := fs.String("format", "jsonl", "output format (jsonl)")
	cpuProfile := fs.String("cpuprofile", "", "with --pool: write a CPU profile of the pull to this file")
	memProfile := fs.String("memprofile", "", "with --pool: write a heap profile to this file once the pull has caught up")
	decode := fs.Bool("decode", false, "with --api: write rows decoded (column names and values, old values) instead of TiDB's bytes")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tistream pull (--pool URL | --api ADDR) --tenant T [--table ID | --db NAME] [--from TS] [--follow | --until-resolved TS]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case (*poolURL == "") == (*apiAddr == ""):
		fmt.Fprintln(stderr, "tistream pull: give --pool (read a pool directly) or --api (pull from a fleet)")
		return 2
	case *tenant == 0:
		fmt.Fprintln(stderr, "tistream pull: --tenant is required")
		return 2
	case *table != 0 && *db != "":
		fmt.Fprintln(stderr, "tistream pull: give --table or --db, not both")
		return 2
	case *decode && *apiAddr == "":
		fmt.Fprintln(stderr, "tistream pull: --decode needs --api")
		return 2
	case *format != "jsonl":
		fmt.Fprintf(stderr, "tistream pull: --format %q is not supported (jsonl)\n", *format)
		return 2
	}
	if *apiAddr != "" {
		// Rows, DDLs and resolved events go to stdout as they arrive; the
		// summary (how far, and why it stopped) to stderr.
		p := &apiPull{addr: *apiAddr, creds: &cc, tenant: *tenant, table: *table, db: *db, from: *from, untilResolved: *until, timeout: *timeout,
			decode: *decode}
		sum := p.run(ctx, stdout)
		fmt.Fprintln(stderr, sum.line(p))
		if sum.failed() {
			return 1
		}
		return 0
	}
	stop, ok := startCPUProfile(*cpuProfile, "pull", stderr)
	if !ok {
		return 2
	}
	defer stop()
	store, err := objstore.Open(ctx, *poolURL)
	if err != nil {
		fmt.Fprintf(stderr, "tistream pull: --pool: %v\n", err)
		return 1
	}
	s, err := pull.Open(ctx, store, pull.Request{Tenant: *tenant, Table: *table, DB: *db, From: *from})
	if err != nil {
		fmt.Fprintf(stderr, "tistream pull: %v\n", err)
		return 1
	}
	bw := bufio.NewWriterSize(stdout, 1<<20)
	defer bw.Flush()
	w := truth.NewWriter(bw)
	defer w.Flush() // before bw's: what was pulled before an error is written too
	var last uint64
	for {
		rows, resolved, caughtUp, err := s.Next(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return 0
			}
			fmt.Fprintf(stderr, "tistream pull: %v\n", err)
			return 1
		}
		for i := range rows {
			r := &rows[i]
			op := truth.OpPut
			if r.Op == formatv1.Op_OP_DELETE {
				op = truth.OpDelete
			}
			if err := w.WriteRow(truth.Row{Tenant: *tenant, TableID: r.TableID, CommitTs: r.CommitTs, StartTs: r.StartTs,
				Op: op, Key: r.Key, Value: r.Value, SchemaVersion: r.SchemaVersion}); err != nil {
				fmt.Fprintf(stderr, "tistream pull: %v\n", err)
				return 1
			}
		}
		if resolved > last {
			last = resolved
			if err := w.WriteResolved(truth.Resolved{Ts: resolved}); err != nil {
				fmt.Fprintf(stderr, "tistream pull: %v\n", err)
				return 1
			}
		}
		if caughtUp {
			if *memProfile != "" {
				writeHeapProfile(*memProfile, "pull", stderr)
				*memProfile = ""
			}
			if !*follow {
				if err := w.Flush(); err != nil {
					fmt.Fprintf(stderr, "tistream pull: %v\n", err)
					return 1
				}
				return 0
			}
			if err := w.Flush(); err != nil {
				return 1
			}
			select {
			case <-ctx.Done():
				return 0
			case <-time.After(*poll):
			}
		}
	}
}
