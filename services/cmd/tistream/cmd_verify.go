package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/tistream/tistream/libs/verify"
)

func init() {
	register(command{
		name:    "verify",
		summary: "check a pulled stream against the simulator's truth file",
		run:     runVerify,
	})
}

// verifyStdin is what --pulled - reads; tests replace it.
var verifyStdin io.Reader = os.Stdin

// runVerify exits 0 when the stream keeps the contract, 1 on any violation
// and 2 when it cannot tell: bad flags, unreadable or malformed input.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	truthPath := fs.String("truth", "", "truth file written by 'tistream sim' (required)")
	pulledPath := fs.String("pulled", "", "stream printed by 'tistream pull', or - for stdin (required)")
	var opts verify.Options
	fs.Func("tenant", "the tenant the pull was for (default: any)", func(s string) error {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return errors.New("want a tenant id, an unsigned integer")
		}
		opts.Tenant = &v
		return nil
	})
	fs.Func("table", "table id(s) the pull was for, comma-separated (default: all)", func(s string) error {
		for _, f := range strings.Split(s, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil || id < 0 {
				return fmt.Errorf("%q is not a table id", f)
			}
			opts.Tables = append(opts.Tables, id)
		}
		return nil
	})
	fs.Uint64Var(&opts.From, "from", 0, "the pull's start ts: rows with commit_ts >= it are owed")
	fs.BoolVar(&opts.Partial, "partial", false,
		"accept a stream that stops before the truth's end resolved ts (completeness is checked up to its last resolved ts)")
	fs.IntVar(&opts.Examples, "examples", verify.DefaultExamples, "examples kept per violation kind")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tistream verify --truth FILE --pulled FILE|- [--tenant T] [--table ID[,ID...]] [--from TS] [--partial] [--examples N]")
		fmt.Fprintln(stderr, "Checks a pulled stream against the truth (docs/verify.md). Exit status: 0 OK, 1 violations, 2 usage or input error.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "verify: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run 'tistream verify -h' for usage.")
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case *truthPath == "":
		return usageErr("--truth is required")
	case *pulledPath == "":
		return usageErr("--pulled is required")
	case *truthPath == "-":
		return usageErr("--truth cannot be stdin; only --pulled can be -")
	case opts.Examples < 1:
		return usageErr("--examples must be at least 1, got %d", opts.Examples)
	}

	truthFile, err := os.Open(*truthPath)
	if err != nil {
		fmt.Fprintf(stderr, "verify: --truth: %v\n", err)
		return 2
	}
	defer truthFile.Close()
	opts.TruthName = *truthPath
	var pulled io.Reader = verifyStdin
	opts.PulledName = "stdin"
	if *pulledPath != "-" {
		f, err := os.Open(*pulledPath)
		if err != nil {
			fmt.Fprintf(stderr, "verify: --pulled: %v\n", err)
			return 2
		}
		defer f.Close()
		pulled, opts.PulledName = f, *pulledPath
	}

	rep, err := verify.Check(ctxReader{ctx, truthFile}, ctxReader{ctx, pulled}, opts)
	if err != nil {
		fmt.Fprintf(stderr, "verify: %v\n", err)
		return 2
	}
	if err := rep.Print(stdout); err != nil {
		fmt.Fprintf(stderr, "verify: write summary: %v\n", err)
		return 2
	}
	if !rep.OK() {
		return 1
	}
	return 0
}

// ctxReader stops reading once ctx is done, so Ctrl-C ends a long check.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
