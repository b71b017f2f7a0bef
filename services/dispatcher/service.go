package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/svc"
	dispatcherv1 "github.com/tistream/tistream/proto/gen/go/tistream/dispatcher/v1"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// Deps are the dispatcher's dependencies.
type Deps struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	Etcd     *clientv3.Client
	// Buffer is the object store holding the data change buffer.
	Buffer objstore.Store
}

// Service is a running dispatcher.
type Service struct {
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry
	etcd     *clientv3.Client
	buffer   objstore.Store
	m        *metrics

	grpc      *grpcx.Server
	http      *svc.HTTPServer
	advertise string
	routes    *routes
	pool      *connPool

	rootCancel  context.CancelFunc // route watchers
	superCancel context.CancelFunc // the stream task watcher
	superDone   chan struct{}
	started     atomic.Bool // Start was called
	running     atomic.Bool // Start succeeded
	stopping    atomic.Bool
	stopOnce    sync.Once
	stopErr     error

	worker etcdx.CurrentRegistration // replaced after a lost lease

	mu      sync.Mutex
	streams map[streamKey]*stream
}

// New validates the configuration; it starts nothing.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dispatcher config: %w", err)
	}
	if deps.Etcd == nil {
		return nil, errors.New("dispatcher: an etcd client is required")
	}
	if deps.Buffer == nil {
		return nil, errors.New("dispatcher: a buffer object store is required")
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	return &Service{
		cfg: cfg, log: deps.Log.With("service", "dispatcher", "dispatcher", cfg.ID), registry: deps.Registry,
		etcd: deps.Etcd, buffer: deps.Buffer, m: newMetrics(deps.Registry),
		superDone: make(chan struct{}), streams: map[streamKey]*stream{},
	}, nil
}

// Name implements svc.Service.
func (s *Service) Name() string { return "dispatcher" }

// GRPCAddr is the address the gRPC server listens on (after Start).
func (s *Service) GRPCAddr() string { return s.grpc.Addr() }

// HTTPAddr is the address of /metrics and the probes (after Start).
func (s *Service) HTTPAddr() string { return s.http.Addr() }

// Start serves DispatcherService and health, registers the worker in etcd
// and starts following the stream tasks; it returns once serving.
func (s *Service) Start(ctx context.Context) (err error) {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("dispatcher: already started")
	}
	if s.grpc, err = grpcx.NewServer(s.cfg.GRPCAddr, s.log, s.registry); err != nil {
		return fmt.Errorf("dispatcher gRPC server: %w", err)
	}
	dispatcherv1.RegisterDispatcherServiceServer(s.grpc.Server, &grpcService{s: s})
	go func() {
		if err := s.grpc.Serve(); err != nil {
			s.log.Error("gRPC server ended", "err", err)
		}
	}()
	s.advertise = svc.AdvertiseAddr(s.cfg.AdvertiseAddr, s.grpc.Addr())
	if s.http, err = svc.NewHTTPServer(s.cfg.HTTPAddr, s.registry, s.ready); err != nil {
		s.grpc.Shutdown(ctx)
		return fmt.Errorf("dispatcher HTTP server: %w", err)
	}
	reg, err := s.register(ctx)
	if err != nil {
		s.grpc.Shutdown(ctx)
		_ = s.http.Close(ctx)
		return err
	}
	s.worker.Set(reg)
	rootCtx, rootCancel := context.WithCancel(context.Background())
	s.rootCancel = rootCancel
	s.pool = newConnPool(s.log, s.m, s.deliver)
	s.routes = newRoutes(rootCtx, s.etcd, s.log, func() { s.pool.prune(s.routes.liveAddrs()) })
	s.routes.wg.Add(1)
	go func() {
		defer s.routes.wg.Done()
		s.routes.followSorters(rootCtx)
	}()
	superCtx, superCancel := context.WithCancel(rootCtx)
	s.superCancel = superCancel
	go s.supervise(superCtx)
	for _, name := range []string{"", dispatcherv1.DispatcherService_ServiceDesc.ServiceName} {
		s.grpc.Health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.running.Store(true)
	s.log.Info("dispatcher started", "grpc_addr", s.grpc.Addr(), "advertise_addr", s.advertise, "http_addr", s.http.Addr())
	return nil
}

// Stop shuts down gracefully: NOT_SERVING, stop taking streams, stop
// reading files and wait (bounded) for in-flight files to be acknowledged,
// write final checkpoints, revoke the lease, close the Ingest streams and
// stop the servers.
func (s *Service) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.stop(ctx) })
	return s.stopErr
}

func (s *Service) stop(ctx context.Context) error {
	if !s.running.Load() {
		return nil // never started, or Start failed and cleaned up
	}
	s.stopping.Store(true)
	s.grpc.Health.Shutdown()
	s.superCancel()
	<-s.superDone
	// Draining streams stay registered so their acknowledgements still
	// reach them.
	s.mu.Lock()
	all := slices.Collect(maps.Values(s.streams))
	s.mu.Unlock()
	s.stopStreams(all, ctx)
	s.takeStreams(nil)
	var errs []error
	if reg := s.worker.Get(); reg != nil {
		if err := reg.Close(); err != nil {
			errs = append(errs, fmt.Errorf("revoke lease: %w", err))
		}
	}
	s.pool.close()
	s.rootCancel()
	s.routes.wait()
	s.grpc.Shutdown(ctx)
	if err := s.http.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("close HTTP server: %w", err))
	}
	s.log.Info("dispatcher stopped")
	return errors.Join(errs...)
}

func (s *Service) ready() error {
	if s.stopping.Load() {
		return errors.New("stopping")
	}
	if s.worker.Get() == nil {
		return errors.New("not registered")
	}
	return nil
}

// deliver hands a sorter's acknowledgements to the streams they concern.
func (s *Service) deliver(addr string, resp *sorterv1.IngestResponse) {
	for _, d := range resp.Durable {
		if st := s.lookup(d.TenantId, d.StoreId); st != nil {
			st.onDurable(addr, d.RangeId, d.Seq)
		}
	}
	for _, n := range resp.NotOwner {
		if st := s.lookup(n.TenantId, n.StoreId); st != nil {
			st.onNotOwner(addr, n.RangeId, n.Seq)
		}
	}
}
