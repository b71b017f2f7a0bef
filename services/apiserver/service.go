package apiserver

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/svc"
	"github.com/tistream/tistream/libs/tenantcfg"
	"github.com/tistream/tistream/libs/usage"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	schemav1 "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	clientv3 "go.etcd.io/etcd/client/v3"
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
	// Etcd, when set, carries the sorters' publication notices: caught-up
	// pulls read as soon as their tenant publishes, and poll only every
	// FallbackPollInterval. Without it they poll every PollInterval.
	Etcd *clientv3.Client
	// Usage, when set, meters the rows and bytes served and the pull time
	// per tenant (docs/tenants.md, "Metering").
	Usage *usage.Meter
	// Tenants gives the tenants' settings (quotas); nil: the service
	// follows them in Etcd itself, with Config.TenantDefaults.
	Tenants *tenantcfg.Watcher
}

// Service is the api-server. The kernel (libs/svc) runs its servers and
// lifecycle; the service adds its API and its stop (end the open pulls).
type Service struct {
	*svc.Kernel
	cfg    Config
	log    *slog.Logger
	reg    *prometheus.Registry
	store  objstore.Store // the pool (tistream_objstore_requests_total counts its requests)
	usage  *usage.Meter   // nil: not metered
	schema schemav1.SchemaRegistryServiceClient
	cache  *pool.Cache
	heads  *pool.Heads // the newest publications the notices announce (wake.go)
	m      *metrics
	now    func() time.Time
	pos    positions
	wake   *etcdx.Wakeups // nil without etcd (wake.go)
	quota  *pullQuotas    // the tenants' pull quotas (quota.go)

	// stopping ends every open pull (UNAVAILABLE) when Stop begins.
	stopping context.Context
	stop     context.CancelFunc

	mu      sync.Mutex
	pulls   map[*pullState]struct{}
	pullsOf map[uint64]int // open pulls by tenant
	pullsBy map[string]int // open pulls by client
}

// pullState is what the service knows of one open pull (for metrics).
type pullState struct {
	kind     string
	tenant   uint64
	client   string
	resolved atomic.Uint64 // last resolved ts sent
	metered  func()        // ends the pull's metered time
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
		pullsOf: map[uint64]int{}, pullsBy: map[string]int{},
		pos: positions{m: map[uint64]position{}}}
	// Remembering a missing log entry for half a poll interval lets every
	// pull following a range share one GET per interval.
	s.cache = pool.NewCache(cfg.CacheBytes, pool.CacheOptions{NotFoundTTL: cfg.PollInterval / 2, Now: deps.Now})
	s.m = newMetrics(deps.Registry, s)
	s.quota = newPullQuotas(cfg, deps, s.log, s.m)
	s.store = deps.Pool
	s.usage = deps.Usage
	if deps.Etcd != nil {
		s.heads = pool.NewHeads(cfg.FallbackPollInterval, deps.Now)
		s.wake = etcdx.NewWakeups(deps.Etcd, s.log, s.noticeHooks())
	}
	s.Kernel = svc.NewKernel(svc.KernelConfig{Name: "api-server", Common: cfg.Common, Log: s.log, Registry: deps.Registry,
		HealthNames: []string{serviceName}, Public: true}, svc.Funcs{
		OnRegister: func(g *grpc.Server) { apiv1.RegisterTiStreamServiceServer(g, &handler{s: s}) },
		OnStart:    s.start,
		OnStop:     s.stopPulls,
		OnReady:    s.ready,
	})
	return s, nil
}

func (s *Service) ready() error {
	if s.stopping.Err() != nil {
		return errors.New("stopping")
	}
	return nil
}

// stopPulls ends every open pull with UNAVAILABLE (clients reconnect to
// another api-server) once the service is NOT_SERVING.
func (s *Service) stopPulls(context.Context) error {
	s.stop()
	return nil
}

// admit registers an open pull, or says which bound refuses it.
func (s *Service) admit(kind string, tenant uint64, client string) (*pullState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(s.pulls) >= s.cfg.MaxPulls:
		return nil, s.refusePull("max_pulls", "the api-server serves %d pulls already (--max-pulls); retry later or on another api-server", s.cfg.MaxPulls)
	case s.pullsOf[tenant] >= s.cfg.MaxPullsPerTenant:
		return nil, s.refusePull("max_pulls_per_tenant", "tenant %d has %d pulls open (--max-pulls-per-tenant)", tenant, s.cfg.MaxPullsPerTenant)
	case s.pullsBy[client] >= s.cfg.MaxPullsPerClient:
		return nil, s.refusePull("max_pulls_per_client", "this client has %d pulls open (--max-pulls-per-client)", s.cfg.MaxPullsPerClient)
	}
	if err := s.quota.admitPull(tenant, s.pullsOf[tenant]); err != nil {
		return nil, err
	}
	p := &pullState{kind: kind, tenant: tenant, client: client, metered: s.usage.PullStarted(tenant)}
	s.pulls[p] = struct{}{}
	s.pullsOf[tenant]++
	s.pullsBy[client]++
	s.m.pullsOpen.WithLabelValues(kind).Inc()
	return p, nil
}

func (s *Service) refusePull(bound, format string, args ...any) error {
	s.m.refused.WithLabelValues(bound).Inc()
	return status.Errorf(codes.ResourceExhausted, format, args...)
}

func (s *Service) release(p *pullState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pulls, p)
	p.metered()
	dec := func(m map[string]int, k string) {
		if m[k]--; m[k] <= 0 {
			delete(m, k)
		}
	}
	if s.pullsOf[p.tenant]--; s.pullsOf[p.tenant] <= 0 {
		delete(s.pullsOf, p.tenant)
	}
	dec(s.pullsBy, p.client)
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
