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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tistream/tistream/client"
	mysqlsink "github.com/tistream/tistream/libs/sink/mysql"
)

func init() {
	register(command{name: "sink", summary: "apply a tenant's change stream to a downstream database (sink mysql)", run: runSink})
}

func runSink(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "mysql" {
		fmt.Fprintln(stderr, "usage: tistream sink mysql --api ADDR --tenant T [--db D] --dsn DSN [flags]")
		return 2
	}
	cfg := mysqlsink.DefaultConfig()
	fs := flag.NewFlagSet("sink mysql", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RegisterFlags(fs)
	var cc clientCreds
	cc.register(fs)
	logLevel := fs.String("log-level", "info", "log level (debug, info, warn, error)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "tistream sink mysql: %v\n", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "tistream sink mysql: --log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("service", "sink")
	db, err := mysqlsink.Open(cfg.DSN)
	if err != nil {
		fmt.Fprintf(stderr, "tistream sink mysql: %v\n", err)
		return 2
	}
	defer db.Close()
	conn, err := cc.dial(cfg.API)
	if err != nil {
		fmt.Fprintf(stderr, "tistream sink mysql: --api: %v\n", err)
		return 1
	}
	defer conn.Close()
	cli := client.New(conn, client.Options{Logger: log})
	reg := prometheus.NewRegistry()
	if cfg.HTTPAddr != "" {
		stop, err := serveMetrics(cfg.HTTPAddr, reg, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "tistream sink mysql: --http: %v\n", err)
			return 1
		}
		defer stop()
	}
	s, err := mysqlsink.New(cfg, db, cli, log, reg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tistream sink mysql: %v\n", err)
		return 2
	}
	if err := s.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "tistream sink mysql: %v\n", err)
		return 1
	}
	return 0
}

// serveMetrics serves /metrics at addr until stop.
func serveMetrics(addr string, reg *prometheus.Registry, stderr io.Writer) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	fmt.Fprintf(stderr, "tistream sink mysql: metrics on http://%s/metrics\n", l.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
