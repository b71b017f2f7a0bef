package metaserver

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
	"github.com/tistream/tistream/libs/svc"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Deps are what the meta-server runs on.
type Deps struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	Etcd     *clientv3.Client
	Buffer   objstore.Store // the data change buffer (schema snapshots)
	Pool     objstore.Store // the committed data pool (manifests, range logs)
}

// Service is one meta-server process: a leader or a standby.
type Service struct {
	cfg    Config
	log    *slog.Logger
	reg    *prometheus.Registry
	etcd   *clientv3.Client
	buffer objstore.Store
	pool   objstore.Store
	m      *metrics
	rm     *retentionMetrics // retention.go
	now    func() time.Time

	state *state
	notes *notifier
	fwd   *forwarder
	wm    *watermarkCache
	regMu sync.Mutex // serialises RegisterTenant (rare; keeps retries simple)
	opMu  sync.Mutex // serialises SplitRange and MergeRanges (id allocation)

	scheduleKick chan struct{}
	sealKick     chan struct{}
	cur          atomic.Pointer[term]
	election     atomic.Pointer[concurrency.Election]

	grpc      *grpcx.Server
	http      *svc.HTTPServer
	advertise string
	cancel    context.CancelFunc
	// campaignDone is closed once the campaign loop has resigned.
	campaignDone chan struct{}
	wg           sync.WaitGroup
	stopping     atomic.Bool
}

// New validates the configuration and dependencies; it starts nothing.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("meta-server config: %w", err)
	}
	switch {
	case deps.Etcd == nil:
		return nil, errors.New("meta-server: an etcd client is required")
	case deps.Buffer == nil:
		return nil, errors.New("meta-server: the data change buffer store is required")
	case deps.Pool == nil:
		return nil, errors.New("meta-server: the committed data pool store is required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	log := deps.Log.With("service", "meta-server")
	s := &Service{cfg: cfg, log: log, reg: deps.Registry, etcd: deps.Etcd, buffer: deps.Buffer, pool: deps.Pool,
		m: newMetrics(deps.Registry), rm: newRetentionMetrics(deps.Registry), now: time.Now,
		scheduleKick: make(chan struct{}, 1), sealKick: make(chan struct{}, 1)}
	s.state = newState(deps.Etcd, log, func() { poke(s.scheduleKick) }, func() { poke(s.sealKick) })
	s.notes = &notifier{s: s, interval: cfg.NotifyInterval, pending: map[streamID]streamNote{}}
	s.fwd = newForwarder(log, s.m, cfg.NotifyQueue, cfg.MaxDispatcherConns)
	s.wm = newWatermarkCache(deps.Pool, cfg.WatermarkCacheTTL, func() time.Time { return s.now() })
	return s, nil
}

// Name is the service's name in `tistream run -target`.
func (s *Service) Name() string { return "meta-server" }

// Start listens, registers MetaService and starts following etcd and
// campaigning; it returns at once (leadership comes when it comes).
func (s *Service) Start(ctx context.Context) error {
	h, err := svc.NewHTTPServer(s.cfg.HTTPAddr, s.reg, s.ready)
	if err != nil {
		return fmt.Errorf("meta-server HTTP: %w", err)
	}
	g, err := grpcx.NewServer(s.cfg.GRPCAddr, s.log, s.reg)
	if err != nil {
		return errors.Join(fmt.Errorf("meta-server gRPC: %w", err), h.Close(ctx))
	}
	metav1.RegisterMetaServiceServer(g.Server, &api{s: s})
	g.Health.SetServingStatus(metaServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	s.grpc, s.http = g, h
	s.advertise = s.cfg.AdvertiseAddr
	if s.advertise == "" {
		s.advertise = g.Addr()
	}
	// Background work lives until Stop, not until Start's ctx ends.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.spawn(func() {
		if err := g.Serve(); err != nil {
			s.log.Error("gRPC server stopped", "err", err)
		}
	})
	s.state.run(rctx, s.spawn)
	s.fwd.run(rctx, s.spawn)
	s.campaignDone = make(chan struct{})
	s.spawn(func() {
		defer close(s.campaignDone)
		s.campaignLoop(rctx)
	})
	s.log.Info("meta-server started", "grpc_addr", g.Addr(), "http_addr", h.Addr(), "advertise", s.advertise)
	return nil
}

func (s *Service) spawn(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// ready is /readyz: serving (as leader or standby) and not stopping.
func (s *Service) ready() error {
	if s.stopping.Load() {
		return errors.New("stopping")
	}
	if !s.state.ready() {
		return errors.New("loading state from etcd")
	}
	return nil
}

// Stop: NOT_SERVING, resign leadership (a standby takes over at once),
// drain RPCs, stop gRPC, close the HTTP server.
func (s *Service) Stop(ctx context.Context) error {
	if s.grpc == nil || !s.stopping.CompareAndSwap(false, true) {
		return nil // never started, or stopped already
	}
	s.grpc.Health.Shutdown()
	s.cancel() // ends the term (resign), the mirrors and the forwarder
	var err error
	select {
	case <-s.campaignDone:
	case <-ctx.Done():
		err = fmt.Errorf("meta-server stop: resign leadership: %w", ctx.Err())
	}
	s.grpc.Shutdown(ctx)
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("meta-server stop: background work still running: %w", ctx.Err()))
	}
	s.fwd.close()
	return errors.Join(err, s.http.Close(ctx))
}

// GRPCAddr is the address the gRPC server listens on.
func (s *Service) GRPCAddr() string {
	if s.grpc == nil {
		return ""
	}
	return s.grpc.Addr()
}

// HTTPAddr is the address of /metrics, /healthz and /readyz.
func (s *Service) HTTPAddr() string {
	if s.http == nil {
		return ""
	}
	return s.http.Addr()
}

// IsLeader reports whether this meta-server currently leads.
func (s *Service) IsLeader() bool { return s.leading() != nil }
