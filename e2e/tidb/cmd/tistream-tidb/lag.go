package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// runLag reads a pull's JSON Lines as they arrive (tistream pull ... |
// tistream-tidb lag) and measures, for every row, the time from its TiDB
// commit (the physical part of commit_ts) to its arrival here. It prints
// the percentiles when its input ends.
func runLag(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lag", flag.ContinueOnError)
	fs.SetOutput(stderr)
	skip := fs.Duration("skip", 0, "ignore rows that arrive within this long of the first one (a backlog)")
	table := fs.Int64("table", 0, "only rows of this table id (0 = all)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var lags []float64
	var first time.Time
	for sc.Scan() {
		now := time.Now()
		line := sc.Bytes()
		if !strings.Contains(string(line), `"commit_ts"`) || strings.Contains(string(line), `"ddl"`) {
			continue
		}
		var r struct {
			TableID  int64  `json:"table_id"`
			CommitTs uint64 `json:"commit_ts"`
		}
		if json.Unmarshal(line, &r) != nil || r.CommitTs == 0 || (*table != 0 && r.TableID != *table) {
			continue
		}
		if first.IsZero() {
			first = now
		}
		if now.Sub(first) < *skip {
			continue
		}
		lags = append(lags, float64(now.UnixMilli()-int64(r.CommitTs>>18)))
	}
	if len(lags) == 0 {
		fmt.Fprintln(stdout, "lag: no rows")
		return 1
	}
	sort.Float64s(lags)
	q := func(p float64) float64 { return lags[min(len(lags)-1, int(p*float64(len(lags))))] }
	fmt.Fprintf(stdout, "lag rows=%d p50_ms=%.0f p99_ms=%.0f max_ms=%.0f\n", len(lags), q(0.50), q(0.99), lags[len(lags)-1])
	return 0
}
