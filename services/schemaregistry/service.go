package schemaregistry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/schema"
	"github.com/tistream/tistream/libs/svc"
	schemav1 "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// Deps are what the schema registry runs on.
type Deps struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	Etcd     *clientv3.Client
	// Pool is the committed data pool: schema snapshots and meta ranges.
	Pool objstore.Store
	// Store is where schema_registry/ is persisted (default: Pool).
	Store objstore.Store
	// Now is the wall clock (default time.Now): persist intervals and lag.
	Now func() time.Time
}

// Service is one schema registry process. It follows every registered
// tenant; more than one process may run (each follows every tenant and
// persists the same files, which is harmless: they hold the same history).
// The kernel (libs/svc) runs its servers and lifecycle.
type Service struct {
	*svc.Kernel
	cfg  Config
	deps Deps
	log  *slog.Logger
	m    *metrics

	mu      sync.RWMutex
	tenants map[uint64]*tenant

	cancel  context.CancelFunc
	watchWg sync.WaitGroup
	serving atomic.Bool
	// wake follows the sorters' publication notices (tenants.go: waitMeta);
	// heads keeps the newest publication of each group they announce, so
	// a follower that read it does not look for the next one until a
	// notice names it or FallbackPollInterval passes (pool.Heads).
	wake  *etcdx.Wakeups
	heads *pool.Heads
}

// New validates the configuration and dependencies; it starts nothing.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("schema registry config: %w", err)
	}
	var errs []error
	if deps.Log == nil {
		errs = append(errs, errors.New("a logger is required"))
	}
	if deps.Registry == nil {
		errs = append(errs, errors.New("a metrics registry is required"))
	}
	if deps.Etcd == nil {
		errs = append(errs, errors.New("an etcd client is required"))
	}
	if deps.Pool == nil {
		errs = append(errs, errors.New("the committed data pool store is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("schema registry deps: %w", err)
	}
	if deps.Store == nil {
		deps.Store = deps.Pool
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Service{cfg: cfg, deps: deps, log: deps.Log.With("service", "schema-registry"),
		tenants: map[uint64]*tenant{}}
	s.m = newMetrics(deps.Registry, s)
	s.heads = pool.NewHeads(cfg.FallbackPollInterval, deps.Now)
	s.wake = etcdx.NewWakeups(deps.Etcd, s.log, etcdx.NoticeHooks{
		Notice: func(n etcdx.Notice) {
			if n.Named() {
				s.heads.Announce(n.Tenant, n.Group, n.Seq)
			}
		},
		Lost: s.heads.Reset,
	})
	s.Kernel = svc.NewKernel(svc.KernelConfig{Name: "schema-registry", Common: cfg.Common, Log: s.log, Registry: deps.Registry,
		HealthNames: []string{schemav1.SchemaRegistryService_ServiceDesc.ServiceName}}, svc.Funcs{
		OnRegister: func(g *grpc.Server) { schemav1.RegisterSchemaRegistryServiceServer(g, &api{s: s}) },
		OnStart:    s.start,
		OnStop:     s.stop,
		OnReady:    s.ready,
	})
	return s, nil
}

// start loads the registered tenants and starts following them and the
// tenant list; calls wait until it is done.
func (s *Service) start(ctx context.Context, _ *svc.Kernel) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	rev, err := s.syncTenants(ctx, runCtx)
	if err != nil {
		cancel()
		return fmt.Errorf("list tenants: %w", err)
	}
	s.serving.Store(true)
	s.watchWg.Add(2)
	go s.watchTenants(runCtx, rev)
	go func() {
		defer s.watchWg.Done()
		s.wake.Run(runCtx)
	}()
	return nil
}

func (s *Service) ready() error {
	if !s.serving.Load() {
		return errors.New("not serving")
	}
	return nil
}

// stop stops following and persists every tenant's history (best effort
// within ctx).
func (s *Service) stop(ctx context.Context) error {
	s.serving.Store(false)
	s.cancel()
	s.watchWg.Wait()
	s.mu.Lock()
	ts := make([]*tenant, 0, len(s.tenants))
	for _, t := range s.tenants {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	var errs []error
	for _, t := range ts {
		if err := t.stop(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := t.persist(ctx); err != nil {
			errs = append(errs, fmt.Errorf("persist tenant %d: %w", t.id, err))
		}
	}
	return errors.Join(errs...)
}

// TenantStatus is where a tenant's history stands.
type TenantStatus struct {
	Tenant uint64
	Loaded bool
	// Source is the persisted object the history was restored from, or
	// "snapshot:" and the pool's schema snapshot key.
	Source string
	// RestoredLastApplied is the history's last applied ts when loaded.
	RestoredLastApplied uint64
	LastApplied         uint64
	Resolved            uint64
	Floor               uint64
	Changes             int
	// PersistedKey is the object last written, if any.
	PersistedKey string
}

// Tenants lists the tenants followed, by id.
func (s *Service) Tenants() []uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]uint64, 0, len(s.tenants))
	for id := range s.tenants {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// TenantStatus reports a followed tenant's state.
func (s *Service) TenantStatus(id uint64) (TenantStatus, bool) {
	t := s.tenant(id)
	if t == nil {
		return TenantStatus{}, false
	}
	return t.status(), true
}

func (s *Service) tenant(id uint64) *tenant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tenants[id]
}

// followMeta follows a tenant's meta range from ts from, with what the
// publication notices announce.
func (s *Service) followMeta(ctx context.Context, tenant, from uint64) (*schema.MetaFollower, error) {
	return schema.FollowMetaWith(ctx, s.deps.Pool, tenant, from, pool.ReadOptions{Heads: s.heads})
}
