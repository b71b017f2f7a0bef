package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/tistream/tistream/e2e/tidb/check"
)

// runTruth writes a truth file for `tistream verify` from the capture's
// own lines: the committed rows of the given tables, matched as the spec
// says.
func runTruth(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("truth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lines := fs.String("lines", "", "the capture's store change lines (serve --lines-copy) (required)")
	out := fs.String("out", "", "truth file to write (required)")
	tables := fs.String("tables", "", "physical table ids, comma-separated (required)")
	tenant := fs.Uint64("tenant", 1, "tenant id")
	from := fs.Uint64("from", 0, "rows committed after this ts (the pull's start)")
	until := fs.Uint64("until", 0, "rows committed at or before this ts; the end line's resolved ts (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *lines == "" || *out == "" || *tables == "" || *until == 0 {
		fmt.Fprintln(stderr, "tistream-tidb truth: --lines, --out, --tables and --until are required")
		return 2
	}
	ids := make(map[int64]bool)
	for _, s := range strings.Split(*tables, ",") {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fmt.Fprintf(stderr, "tistream-tidb truth: --tables %q: %v\n", s, err)
			return 2
		}
		ids[id] = true
	}
	p, err := check.ReadLines(*lines)
	if err != nil {
		fmt.Fprintf(stderr, "tistream-tidb truth: %v\n", err)
		return 1
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintf(stderr, "tistream-tidb truth: %v\n", err)
		return 1
	}
	defer f.Close()
	n, err := p.WriteTruth(f, *tenant, ids, *from, *until)
	if err != nil {
		fmt.Fprintf(stderr, "tistream-tidb truth: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %d rows of %d tables to %s\n", n, len(ids), *out)
	return 0
}
