package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tistream/tistream/e2e/tidb/workload"
)

func runWorkload(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("workload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mysqlAddr := fs.String("mysql", "127.0.0.1:4000", "TiDB's MySQL address")
	httpURL := fs.String("http", "http://127.0.0.1:10080", "tistream-tidb serve's HTTP API")
	env := workload.Env{Log: newLogger(stderr)}
	fs.DurationVar(&env.Duration, "duration", 20*time.Second, "how long the bank and DDL workloads run")
	fs.DurationVar(&env.LongTxn, "long-txn", 30*time.Second, "how long the long transaction stays open")
	fs.IntVar(&env.BigRows, "big-rows", 100_000, "rows of the big transaction")
	report := fs.String("report", "", "also write the report as JSON to this file")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: tistream-tidb workload [flags] [%s|ddl-sink|types ...]\n", strings.Join(workload.Names, "|"))
		fmt.Fprintf(stderr, "Without a name: %s. What tistream sink mysql can apply: %s.\n", strings.Join(workload.Names, " "), strings.Join(workload.SinkNames, " "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	names := fs.Args()
	if len(names) == 0 {
		names = workload.Names
	}
	db, err := sql.Open("mysql", "root@tcp("+*mysqlAddr+")/?timeout=10s")
	if err != nil {
		fmt.Fprintf(stderr, "tistream-tidb workload: %v\n", err)
		return 1
	}
	defer db.Close()
	db.SetMaxOpenConns(64)
	env.DB, env.HTTP, env.MySQL = db, *httpURL, *mysqlAddr
	rep, err := workload.Run(ctx, env, names)
	if rep != nil {
		for _, l := range rep.Lines {
			fmt.Fprintln(stdout, l)
		}
		if *report != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			if werr := os.WriteFile(*report, b, 0o644); werr != nil && err == nil {
				err = werr
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "tistream-tidb workload: %v\n", err)
		return 1
	}
	return 0
}
