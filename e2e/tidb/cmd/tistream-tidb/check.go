package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tistream/tistream/e2e/tidb/check"
)

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	httpURL := fs.String("http", "http://127.0.0.1:10080", "tistream-tidb serve's HTTP API")
	mysqlAddr := fs.String("mysql", "127.0.0.1:4000", "TiDB's MySQL address, for COUNT(*) at each point (empty: skip)")
	pulled := fs.String("pulled", "", "pulled streams (tistream pull's JSON Lines), comma-separated (required)")
	at := fs.String("at", "", "resolved ts to check at, comma-separated (default: --points of the stream's own)")
	points := fs.Int("points", 5, "without --at: this many resolved ts of the stream, spread evenly, the last included")
	lines := fs.String("lines", "", "instead of --pulled: the capture's own store change lines (checks the capture without a fleet)")
	tables := fs.String("tables", "", "check only these table ids (a per-table pull), comma-separated")
	sums := fs.String("sum", "", "db.table.column=N: the column must sum to N in the pulled image at every point")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tistream-tidb check --pulled FILE [--at R1,R2 | --points N] [flags]")
		fmt.Fprintln(stderr, "Folds the pulled stream up to each point and compares every table created after the")
		fmt.Fprintln(stderr, "stream started, key by key, with TiDB's store read at that version.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*pulled == "") == (*lines == "") {
		fmt.Fprintln(stderr, "tistream-tidb check: give one of --pulled and --lines")
		return 2
	}
	var p *check.Pulled
	var err error
	if *lines != "" {
		p, err = check.ReadLines(*lines)
	} else {
		p, err = check.ReadPulled(strings.Split(*pulled, ",")...)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tistream-tidb check: %v\n", err)
		return 1
	}
	var tss []uint64
	if *at != "" {
		for _, s := range strings.Split(*at, ",") {
			ts, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				fmt.Fprintf(stderr, "tistream-tidb check: --at %q: %v\n", s, err)
				return 2
			}
			tss = append(tss, ts)
		}
	} else {
		tss = p.Points(*points)
	}
	if len(tss) == 0 {
		fmt.Fprintln(stderr, "tistream-tidb check: the pulled stream has no resolved ts to check at")
		return 1
	}
	only := make(map[int64]bool)
	if *tables != "" {
		for _, s := range strings.Split(*tables, ",") {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				fmt.Fprintf(stderr, "tistream-tidb check: --tables %q: %v\n", s, err)
				return 2
			}
			only[id] = true
		}
	}
	var want []check.Sum
	if *sums != "" {
		for _, s := range strings.Split(*sums, ",") {
			name, n, ok := strings.Cut(s, "=")
			parts := strings.Split(name, ".")
			v, err := strconv.ParseInt(n, 10, 64)
			if !ok || len(parts) != 3 || err != nil {
				fmt.Fprintf(stderr, "tistream-tidb check: --sum %q: want db.table.column=N\n", s)
				return 2
			}
			want = append(want, check.Sum{DB: parts[0], Table: parts[1], Column: parts[2], Want: v})
		}
	}
	c := &check.Checker{HTTP: *httpURL}
	if *mysqlAddr != "" {
		db, err := sql.Open("mysql", "root@tcp("+*mysqlAddr+")/?timeout=10s")
		if err != nil {
			fmt.Fprintf(stderr, "tistream-tidb check: %v\n", err)
			return 1
		}
		defer db.Close()
		c.DB = db
	}
	bad := 0
	for _, ts := range tss {
		res, err := c.Check(ctx, p, ts, only, want)
		if err != nil {
			fmt.Fprintf(stderr, "tistream-tidb check: at %d: %v\n", ts, err)
			return 1
		}
		fmt.Fprintf(stdout, "at %d: %d tables, %d keys, %d SQL counts, %d differences %s\n", ts, res.Tables, res.Keys, res.Counts, len(res.Diffs), strings.Join(res.Sums, " "))
		for _, d := range res.Diffs {
			fmt.Fprintf(stdout, "  %s\n", d)
		}
		for _, d := range res.Skipped {
			fmt.Fprintf(stdout, "  (not counted: %s)\n", d)
		}
		bad += len(res.Diffs)
	}
	if bad > 0 {
		fmt.Fprintf(stdout, "FAIL: %d differences at %d points\n", bad, len(tss))
		return 1
	}
	fmt.Fprintf(stdout, "ok: the pulled image equals TiDB's at %d points\n", len(tss))
	return 0
}
