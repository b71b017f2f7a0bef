package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tistream/tistream/e2e/tidb/capture"
	"github.com/tistream/tistream/e2e/tidb/server"
	"github.com/tistream/tistream/libs/formats/storeline"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "unistore's files and TiDB's log (required)")
	port := fs.Int("port", 4000, "MySQL port on 127.0.0.1 (0 = any)")
	httpAddr := fs.String("http", "127.0.0.1:10080", "address of the check and stats API")
	lines := fs.String("lines", "-", "where the store change lines go: a file, or - for stdout")
	linesCopy := fs.String("lines-copy", "", "also write the lines to this file (for tistream-tidb truth)")
	cluster := fs.Uint64("cluster", 1, "cluster id")
	tenant := fs.Uint64("tenant", 1, "tenant id")
	stores := fs.Int("stores", 3, "unistore stores")
	var cc capture.Config
	fs.DurationVar(&cc.FlushInterval, "flush-interval", time.Second, "one file per store this often")
	fs.DurationVar(&cc.ChaosEvery, "chaos-every", 0, "a leader transfer, merge or split of the capture's region model this often (0 = none)")
	fs.Int64Var(&cc.Seed, "seed", 1, "seed of the region operations")
	noCapture := fs.Bool("no-capture", false, "run TiDB without the capture, keeping only its in-memory locks (the baseline of the overhead benchmark): no lines")
	staleAfter := fs.Duration("resolve-locks-after", 10*time.Second, "resolve locks older than this that hold resolved ts back, as TiCDC's puller does (0 = never)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dataDir == "" {
		fmt.Fprintln(stderr, "tistream-tidb serve: --data-dir is required")
		return 2
	}
	log := newLogger(stderr)
	out := stdout
	if *lines != "-" {
		f, err := os.Create(*lines)
		if err != nil {
			fmt.Fprintf(stderr, "tistream-tidb serve: --lines: %v\n", err)
			return 1
		}
		defer f.Close()
		out = f
	}
	if *linesCopy != "" {
		f, err := os.Create(*linesCopy)
		if err != nil {
			fmt.Fprintf(stderr, "tistream-tidb serve: --lines-copy: %v\n", err)
			return 1
		}
		defer f.Close()
		out = io.MultiWriter(out, f)
	}
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		fmt.Fprintf(stderr, "tistream-tidb serve: --http: %v\n", err)
		return 1
	}
	srv, err := server.Start(ctx, server.Options{DataDir: *dataDir, Port: *port, Stores: *stores, Capture: cc, NoCapture: *noCapture, Log: log})
	if err != nil {
		fmt.Fprintf(stderr, "tistream-tidb serve: %v\n", err)
		return 1
	}
	defer srv.Close()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	if *noCapture {
		log.Info("serving without capture", "mysql", srv.Addr, "http", ln.Addr().String())
		<-ctx.Done()
		return 0
	}
	sc, err := srv.ReadSchema(srv.StreamStart)
	if err != nil {
		fmt.Fprintf(stderr, "tistream-tidb serve: schema snapshot: %v\n", err)
		return 1
	}
	enc := storeline.NewEncoder(out)
	head := []*storeline.Line{
		{T: storeline.TypeHello, Cluster: *cluster, Tenant: *tenant, Producer: "tistream-tidb (TiDB v1.1.0-beta.0.20251121075944-8f2630e53d5d, unistore)"},
		{T: storeline.TypeSchema, Schema: &storeline.Schema{Ts: srv.StreamStart, SchemaVersion: sc.Version, UnixMs: time.Now().UnixMilli(), Objects: sc.Objects}},
	}
	for _, l := range head {
		if err := enc.Encode(l); err != nil {
			fmt.Fprintf(stderr, "tistream-tidb serve: write lines: %v\n", err)
			return 1
		}
	}
	if err := enc.Flush(); err != nil {
		fmt.Fprintf(stderr, "tistream-tidb serve: write lines: %v\n", err)
		return 1
	}
	log.Info("serving", "mysql", srv.Addr, "http", ln.Addr().String(), "stream_start", srv.StreamStart,
		"databases_and_tables", len(sc.Objects))
	if *staleAfter > 0 {
		go resolveLoop(ctx, srv, *staleAfter, log)
	}
	writeErr := make(chan error, 1)
	go func() { writeErr <- writeBatches(srv.Capture.Batches(), enc) }()
	err = loop(ctx, srv.Capture, cc, writeErr)
	// A last cut, so that everything applied so far is in the stream
	// (not when the lines can no longer be written).
	if !errors.Is(err, errWrite) {
		if cerr := srv.Capture.Cut(); err == nil && cerr != nil {
			err = cerr
		}
	}
	srv.Capture.CloseBatches()
	if !errors.Is(err, errWrite) {
		if werr := <-writeErr; err == nil && werr != nil {
			err = fmt.Errorf("%w: %w", errWrite, werr)
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "tistream-tidb serve: %v\n", err)
		return 1
	}
	st := srv.Capture.Stats()
	log.Info("stopped", "prewrites", st.Prewrites, "commits", st.Commits, "committed", st.Committed, "rollbacks", st.Rollbacks,
		"violations", st.Violations, "cuts", st.Cuts)
	return 0
}

// loop cuts a file per store every flush interval and runs the region
// chaos, until ctx ends or writing fails.
func loop(ctx context.Context, c *capture.Capture, cc capture.Config, writeErr <-chan error) error {
	cut := time.NewTicker(cc.FlushInterval)
	defer cut.Stop()
	var chaos <-chan time.Time
	if cc.ChaosEvery > 0 {
		t := time.NewTicker(cc.ChaosEvery)
		defer t.Stop()
		chaos = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-writeErr:
			return fmt.Errorf("%w: %w", errWrite, err)
		case <-cut.C:
			if err := c.Cut(); err != nil {
				return err
			}
		case <-chaos:
			c.Chaos()
		}
	}
}

var errWrite = errors.New("write lines")

// resolveLoop resolves stale locks every few seconds.
func resolveLoop(ctx context.Context, srv *server.Server, age time.Duration, log *slog.Logger) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := srv.ResolveStaleLocks(ctx, age); err != nil {
			log.Warn("resolve stale locks", "err", err)
		} else if n > 0 {
			log.Info("resolved stale locks", "locks", n, "older_than", age)
		}
	}
}

func writeBatches(batches <-chan []storeline.Line, enc *storeline.Encoder) error {
	for b := range batches {
		for i := range b {
			if err := enc.Encode(&b[i]); err != nil {
				return err
			}
		}
		if err := enc.Flush(); err != nil {
			return err
		}
	}
	return nil
}
