package svc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HTTPServer serves /metrics, /healthz (alive), /readyz (ready to serve)
// and, when enabled, /debug/pprof for one service.
type HTTPServer struct {
	srv *http.Server
	lis net.Listener
}

// HTTPOptions configure an HTTPServer.
type HTTPOptions struct {
	// Ready reports whether the service serves (/readyz); nil = always.
	Ready func() error
	// Fail is told when serving stops unexpectedly.
	Fail func(error)
	// Pprof serves /debug/pprof (heap and goroutine dumps, CPU profiles):
	// off unless asked for, since anyone who reaches the port gets them.
	Pprof bool
}

// The HTTP server's timeouts: a client that sends its headers slowly, or
// never reads, cannot hold a connection (and its goroutine) for long.
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 10 * time.Second
	httpWriteTimeout      = 60 * time.Second // a CPU profile takes 30 s by default
	httpIdleTimeout       = 60 * time.Second
	httpMaxHeaderBytes    = 64 << 10
)

// NewHTTPServer listens on addr and serves.
func NewHTTPServer(addr string, gatherer prometheus.Gatherer, o HTTPOptions) (*HTTPServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if o.Ready != nil {
			if err := o.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if o.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s := &HTTPServer{lis: lis, srv: &http.Server{Handler: mux, ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout: httpReadTimeout, WriteTimeout: httpWriteTimeout, IdleTimeout: httpIdleTimeout,
		MaxHeaderBytes: httpMaxHeaderBytes}}
	go func() {
		if err := s.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) && o.Fail != nil {
			o.Fail(fmt.Errorf("HTTP server on %s: %w", lis.Addr(), err))
		}
	}()
	return s, nil
}

// Addr is the listening address.
func (s *HTTPServer) Addr() string { return s.lis.Addr().String() }

// Close stops serving.
func (s *HTTPServer) Close(ctx context.Context) error { return s.srv.Shutdown(ctx) }
