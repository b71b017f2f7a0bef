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
	"google.golang.org/grpc"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/svc"
	"github.com/tistream/tistream/libs/tenantbuf"
	"github.com/tistream/tistream/libs/tenantcfg"
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
	// Tenants gives the tenants' settings (ingest quotas); nil: the service
	// follows them in Etcd itself, with Config.TenantDefaults.
	Tenants *tenantcfg.Watcher
	// Buffers resolves each tenant's data change buffer (its own
	// buffer_url, else Buffer); nil: Buffer for every tenant.
	Buffers *tenantbuf.Resolver
}

// Service is a running dispatcher. The kernel (libs/svc) runs its servers
// and lifecycle.
type Service struct {
	*svc.Kernel
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry
	etcd     *clientv3.Client
	buffers  *tenantbuf.Resolver // each tenant's buffer (buffer.go)
	m        *metrics
	quota    *ingestQuotas // the tenants' ingest quotas (quota.go)
	replay   *replayBudget // the streams' replay caches (replay.go)

	advertise string
	routes    *routes
	pool      *connPool

	rootCancel  context.CancelFunc // route watchers
	superCancel context.CancelFunc // the stream task watcher
	superDone   chan struct{}
	stopping    atomic.Bool

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
	s := &Service{
		cfg: cfg, log: deps.Log.With("service", "dispatcher", "dispatcher", cfg.ID), registry: deps.Registry,
		etcd: deps.Etcd, m: newMetrics(deps.Registry),
		superDone: make(chan struct{}), streams: map[streamKey]*stream{},
	}
	s.replay = newReplayBudget(cfg.ReplayCacheBytes, s.m.replayBytes)
	s.quota = newIngestQuotas(cfg, deps, s.log, deps.Registry)
	s.followBuffers(deps.Buffers, deps.Buffer, s.quota.tenants)
	s.Kernel = svc.NewKernel(svc.KernelConfig{Name: "dispatcher", Common: cfg.Common, Log: s.log, Registry: deps.Registry,
		HealthNames: []string{dispatcherv1.DispatcherService_ServiceDesc.ServiceName}}, svc.Funcs{
		OnRegister: func(g *grpc.Server) { dispatcherv1.RegisterDispatcherServiceServer(g, &grpcService{s: s}) },
		OnStart:    s.start,
		OnStop:     s.stop,
		OnReady:    s.ready,
	})
	return s, nil
}

// start registers the worker in etcd and starts following the stream
// tasks.
func (s *Service) start(ctx context.Context, k *svc.Kernel) error {
	s.advertise = svc.AdvertiseAddr(s.cfg.AdvertiseAddr, k.GRPCAddr())
	reg, err := s.register(ctx)
	if err != nil {
		return err
	}
	s.worker.Set(reg)
	rootCtx, rootCancel := context.WithCancel(context.Background())
	s.rootCancel = rootCancel
	creds, err := k.ClientCredentials()
	if err != nil {
		return errors.Join(err, reg.Close())
	}
	s.pool = newConnPool(s.log, s.m, creds, s.deliver)
	s.routes = newRoutes(rootCtx, s.etcd, s.log, func() { s.pool.prune(s.routes.liveAddrs()) })
	s.routes.wg.Add(1)
	go func() {
		defer s.routes.wg.Done()
		s.routes.followSorters(rootCtx)
	}()
	s.quota.start(rootCtx)
	superCtx, superCancel := context.WithCancel(rootCtx)
	s.superCancel = superCancel
	go s.supervise(superCtx)
	s.log.Info("dispatcher started", "advertise_addr", s.advertise)
	return nil
}

// stop shuts down gracefully once NOT_SERVING: stop taking streams, stop
// reading files and wait (bounded) for in-flight files to be acknowledged,
// write final checkpoints, revoke the lease, close the Ingest streams.
func (s *Service) stop(ctx context.Context) error {
	s.stopping.Store(true)
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
