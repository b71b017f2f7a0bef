package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/svc"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	schemav1 "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Deps are what the api-server reads from.
type Deps struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	// Pool is the committed data pool.
	Pool objstore.Store
	// Schema is a client of the schema registry.
	Schema schemav1.SchemaRegistryServiceClient
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Service is the api-server.
type Service struct {
	cfg    Config
	log    *slog.Logger
	reg    *prometheus.Registry
	store  objstore.Store // the pool, counting requests
	schema schemav1.SchemaRegistryServiceClient
	cache  *pool.Cache
	m      *metrics
	now    func() time.Time
	pos    positions

	// stopping ends every open pull (UNAVAILABLE) when Stop begins.
	stopping context.Context
	stop     context.CancelFunc

	mu    sync.Mutex
	pulls map[*pullState]struct{}
	grpc  *grpcx.Server
	http  *svc.HTTPServer
	done  chan struct{} // closed when Serve returns
	// stopped: Stop has run (a second call does nothing).
	stopped bool
}

// pullState is what the service knows of one open pull (for metrics).
type pullState struct {
	kind     string
	resolved atomic.Uint64 // last resolved ts sent
}

const serviceName = "tistream.api.v1.TiStreamService"

// New validates the configuration and builds the service; it starts nothing.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var errs []error
	if deps.Log == nil {
		errs = append(errs, errors.New("api-server: Deps.Log is required"))
	}
	if deps.Registry == nil {
		errs = append(errs, errors.New("api-server: Deps.Registry is required"))
	}
	if deps.Pool == nil {
		errs = append(errs, errors.New("api-server: Deps.Pool (the committed data pool) is required"))
	}
	if deps.Schema == nil {
		errs = append(errs, errors.New("api-server: Deps.Schema (a schema registry client) is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	stopping, stop := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, log: deps.Log.With("service", "api-server"), reg: deps.Registry, schema: deps.Schema,
		now: deps.Now, stopping: stopping, stop: stop, pulls: map[*pullState]struct{}{},
		pos: positions{m: map[uint64]position{}}}
	// Remembering a missing log entry for half a poll interval lets every
	// pull following a range share one GET per interval.
	s.cache = pool.NewCache(cfg.CacheBytes, pool.CacheOptions{NotFoundTTL: cfg.PollInterval / 2, Now: deps.Now})
	s.m = newMetrics(deps.Registry, s)
	s.store = newCountingStore(deps.Pool, s.m)
	return s, nil
}

// Name is the service's name in logs.
func (s *Service) Name() string { return "api-server" }

// Start listens and serves; it returns once both servers listen.
func (s *Service) Start(ctx context.Context) error {
	g, err := grpcx.NewServer(s.cfg.GRPCAddr, s.log, s.reg)
	if err != nil {
		return fmt.Errorf("api-server: %w", err)
	}
	apiv1.RegisterTiStreamServiceServer(g, &handler{s: s})
	h, err := svc.NewHTTPServer(s.cfg.HTTPAddr, s.reg, s.ready)
	if err != nil {
		g.Server.Stop()
		return fmt.Errorf("api-server: %w", err)
	}
	g.Health.SetServingStatus(serviceName, healthpb.HealthCheckResponse_SERVING)
	g.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	done := make(chan struct{})
	s.mu.Lock()
	s.grpc, s.http, s.done = g, h, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		if err := g.Serve(); err != nil {
			s.log.Error("grpc server stopped", "err", err)
		}
	}()
	s.log.Info("api-server serving", "grpc_addr", g.Addr(), "http_addr", h.Addr())
	return nil
}

func (s *Service) ready() error {
	if s.stopping.Err() != nil {
		return errors.New("stopping")
	}
	return nil
}

// Stop stops gracefully: NOT_SERVING, every open pull ends with UNAVAILABLE
// (clients reconnect to another api-server), then the gRPC server stops,
// forced when ctx ends first. Calling it again does nothing.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	g, h, done := s.grpc, s.http, s.done
	stopped := s.stopped
	s.stopped = true
	s.mu.Unlock()
	if stopped {
		return nil
	}
	if g != nil {
		g.Health.Shutdown() // NOT_SERVING before the pulls end, so clients go elsewhere
	}
	s.stop()
	var errs []error
	if g != nil {
		g.Shutdown(ctx)
		<-done
	}
	if h != nil {
		if err := h.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("api-server: close http: %w", err))
		}
	}
	return errors.Join(errs...)
}

// GRPCAddr is the gRPC listening address (after Start).
func (s *Service) GRPCAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grpc == nil {
		return ""
	}
	return s.grpc.Addr()
}

// HTTPAddr is the metrics and health listening address (after Start).
func (s *Service) HTTPAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.http == nil {
		return ""
	}
	return s.http.Addr()
}

// admit registers an open pull, or refuses it beyond MaxPulls.
func (s *Service) admit(kind string) (*pullState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pulls) >= s.cfg.MaxPulls {
		return nil, false
	}
	p := &pullState{kind: kind}
	s.pulls[p] = struct{}{}
	s.m.pullsOpen.WithLabelValues(kind).Inc()
	return p, true
}

func (s *Service) release(p *pullState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pulls, p)
	s.m.pullsOpen.WithLabelValues(p.kind).Dec()
}

// maxLag is the largest resolved lag among the open pulls of a kind.
func (s *Service) maxLag(kind string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lag time.Duration
	now := s.now()
	for p := range s.pulls {
		if p.kind == kind {
			if r := p.resolved.Load(); r != 0 {
				lag = max(lag, now.Sub(tsTime(r)))
			}
		}
	}
	return lag
}

// tsTime is the physical time of a TSO timestamp.
func tsTime(ts uint64) time.Time { return time.UnixMilli(int64(ts >> 18)) }

// tsOf is the smallest TSO timestamp at time t.
func tsOf(t time.Time) uint64 { return uint64(t.UnixMilli()) << 18 }
