package svc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HTTPServer serves /metrics, /healthz (alive), /readyz (ready to serve)
// and /debug/pprof for one service.
type HTTPServer struct {
	srv *http.Server
	lis net.Listener
}

// NewHTTPServer listens on addr. ready reports whether the service serves.
func NewHTTPServer(addr string, gatherer prometheus.Gatherer, ready func() error) (*HTTPServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s := &HTTPServer{srv: &http.Server{Handler: mux}, lis: lis}
	go func() {
		if err := s.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener failed; /readyz stops answering, which probes notice
		}
	}()
	return s, nil
}

// Addr is the listening address.
func (s *HTTPServer) Addr() string { return s.lis.Addr().String() }

// Close stops serving.
func (s *HTTPServer) Close(ctx context.Context) error { return s.srv.Shutdown(ctx) }
