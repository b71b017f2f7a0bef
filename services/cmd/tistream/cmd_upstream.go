package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/storefeed"
)

func init() {
	register(command{name: "upstream", summary: "turn a store change line stream (stdin) into store change files", run: runUpstream})
}

func runUpstream(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	var cc clientCreds
	cc.register(fs)
	fs.SetOutput(stderr)
	storeURL := fs.String("store", "", "object store for data_change_buffer/ (file:///dir, s3://bucket/prefix?endpoint=...)")
	in := fs.String("in", "-", "the store change lines: a file, or - for stdin")
	meta := fs.String("meta", "", "push into a running fleet: the meta-server's gRPC address (registers the tenant, notifies files)")
	initialRanges := fs.Uint("initial-ranges", 2, "with --meta: ranges the tenant starts with (from 2 on the first holds the meta keys alone)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: producer | tistream upstream --store URL [--meta ADDR]")
		fmt.Fprintln(stderr, "Reads the store change line protocol (docs/formats/store-change-lines.md) and writes")
		fmt.Fprintln(stderr, "each cut as a store change file, put-if-absent, then notifies the meta-server.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *storeURL == "" {
		fmt.Fprintln(stderr, "tistream upstream: --store is required")
		return 2
	}
	store, err := objstore.Open(ctx, *storeURL)
	if err != nil {
		fmt.Fprintf(stderr, "tistream upstream: open --store: %v\n", err)
		return 1
	}
	r := io.Reader(os.Stdin)
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			fmt.Fprintf(stderr, "tistream upstream: --in: %v\n", err)
			return 1
		}
		defer f.Close()
		r = f
	}
	opts := storefeed.Options{Store: store, Log: slog.New(slog.NewTextHandler(stderr, nil))}
	if *meta != "" {
		up, err := newUpstream(*meta, &cc, uint32(*initialRanges), stderr)
		if err != nil {
			fmt.Fprintf(stderr, "tistream upstream: --meta: %v\n", err)
			return 1
		}
		defer up.Close()
		opts.OnTenant, opts.OnFile = up.RegisterTenant, up.NotifyFile
	}
	st, err := storefeed.Run(ctx, r, opts)
	fmt.Fprintf(stdout, "wrote %d store files (%d rows, %d bytes) to %s\n", st.Files, st.Rows, st.Bytes, store)
	if st.Dropped > 0 {
		fmt.Fprintf(stdout, "dropped %d records after the last cut of their store\n", st.Dropped)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tistream upstream: %v\n", err)
		return 1
	}
	return 0
}
