package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/tistream/tistream/e2e/tidb/workload"
)

// runBench runs sysbench against a server: prepare, then each OLTP test
// for --duration, printing one line of figures per test.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mysqlAddr := fs.String("mysql", "127.0.0.1:4000", "TiDB's MySQL address")
	d := fs.Duration("duration", 30*time.Second, "how long each test runs")
	threads := fs.Int("threads", 8, "sysbench threads")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	db, err := sql.Open("mysql", "root@tcp("+*mysqlAddr+")/?timeout=10s")
	if err != nil {
		fmt.Fprintf(stderr, "tistream-tidb bench: %v\n", err)
		return 1
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS sbtest"); err != nil {
		fmt.Fprintf(stderr, "tistream-tidb bench: %v\n", err)
		return 1
	}
	if _, err := workload.SysbenchRun(ctx, *mysqlAddr, "oltp_read_write", "prepare", 0, *threads); err != nil {
		fmt.Fprintf(stderr, "tistream-tidb bench: %v\n", err)
		return 1
	}
	for _, test := range []string{"oltp_read_write", "oltp_insert", "oltp_delete"} {
		r, err := workload.SysbenchRun(ctx, *mysqlAddr, test, "run", *d, *threads)
		if err != nil {
			fmt.Fprintf(stderr, "tistream-tidb bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "sysbench %s threads=%d tps=%.1f qps=%.1f ignored_errors_per_sec=%.2f\n", test, *threads, r.TPS, r.QPS, r.Errors)
	}
	return 0
}
