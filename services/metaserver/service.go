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
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/svc"
	"github.com/tistream/tistream/libs/tenantbuf"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc"
)

// Deps are what the meta-server runs on.
type Deps struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	Etcd     *clientv3.Client
	Buffer   objstore.Store // the data change buffer (schema snapshots)
	Pool     objstore.Store // the committed data pool (manifests, range logs)

	// Buffers resolves each tenant's own buffer_url (else Buffer); nil:
	// Buffer for every tenant.
	Buffers *tenantbuf.Resolver

	// KeyDir is the fleet's directory of local key files (--key-dir,
	// encryption.key_dir): offboarding deletes a tenant's local:NAME key
	// from it (offboard.go, shredKey). "" = none to delete.
	KeyDir string
}

// Service is one meta-server process: a leader or a standby. The kernel
// (libs/svc) runs its servers and lifecycle.
type Service struct {
	*svc.Kernel
	cfg    Config
	log    *slog.Logger
	reg    *prometheus.Registry
	etcd   *clientv3.Client
	buffer objstore.Store
	pool   objstore.Store
	m      *metrics
	rm     *retentionMetrics // retention.go
	ob     *offboardMetrics  // offboard.go
	um     *usageMetrics     // usage.go
	now    func() time.Time

	// buffers gives each tenant's data change buffer (libs/tenantbuf),
	// following the tenants' settings in the mirror.
	buffers *tenantbuf.Resolver
	keyDir  string // Deps.KeyDir

	state *state
	notes *notifier
	fwd   *forwarder
	proxy leaderProxy // proxy.go: a standby's connection to the leader
	wm    *watermarkCache
	lim   *limits    // bounds.go
	as    autoscaler // autoscale.go: the leader's memory
	regMu sync.Mutex // serialises RegisterTenant (rare; keeps retries simple)
	opMu  sync.Mutex // serialises SplitRange and MergeRanges (id allocation)

	scheduleKick chan struct{}
	sealKick     chan struct{}
	offboardKick chan struct{} // offboard.go
	cur          atomic.Pointer[term]
	election     atomic.Pointer[concurrency.Election]

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
		m: newMetrics(deps.Registry), rm: newRetentionMetrics(deps.Registry), um: newUsageMetrics(deps.Registry), now: time.Now,
		scheduleKick: make(chan struct{}, 1), sealKick: make(chan struct{}, 1),
		ob: newOffboardMetrics(deps.Registry), offboardKick: make(chan struct{}, 1)}
	s.buffers, s.keyDir = deps.Buffers, deps.KeyDir
	if s.buffers == nil {
		s.buffers = tenantbuf.New(tenantbuf.Options{Default: deps.Buffer, Log: log})
	}
	s.buffers.SetSettings(s.effective)
	s.state = newState(deps.Etcd, log, func() { poke(s.scheduleKick) }, func() { poke(s.sealKick) })
	s.notes = &notifier{s: s, interval: cfg.NotifyInterval, pending: map[streamID]streamNote{}}
	s.fwd = newForwarder(log, s.m, cfg.NotifyQueue, cfg.MaxDispatcherConns)
	s.lim = newLimits(cfg)
	s.wm = newWatermarkCache(deps.Pool, cfg.WatermarkCacheTTL, func() time.Time { return s.now() })
	// Health: the server ("") and MetaService are SERVING on every member
	// that is ready, leader or standby (a standby forwards, proxy.go);
	// metaLeaderHealthName only on the leader (leader.go).
	// Public: producers and admins may authenticate with bearer tokens.
	s.Kernel = svc.NewKernel(svc.KernelConfig{Name: "meta-server", Common: cfg.Common, Log: log, Registry: deps.Registry, Public: true,
		HealthNames: []string{metaServiceName}},
		svc.Funcs{
			OnRegister: func(g *grpc.Server) { metav1.RegisterMetaServiceServer(g, &api{s: s}) },
			OnStart:    s.start,
			OnStop:     s.stop,
			OnReady:    s.ready,
		})
	return s, nil
}

// start starts following etcd and campaigning; it returns at once
// (leadership comes when it comes).
func (s *Service) start(ctx context.Context, k *svc.Kernel) error {
	s.advertise = s.cfg.AdvertiseAddr
	if s.advertise == "" {
		s.advertise = k.GRPCAddr()
	}
	k.SetServing(metaLeaderHealthName, false) // until elected
	creds, err := k.ClientCredentials()
	if err != nil {
		return err
	}
	s.fwd.creds = creds
	s.proxy.creds = creds
	// Background work lives until Stop, not until Start's ctx ends.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.state.run(rctx, s.spawn)
	s.fwd.run(rctx, s.spawn)
	s.campaignDone = make(chan struct{})
	s.spawn(func() {
		defer close(s.campaignDone)
		s.campaignLoop(rctx)
	})
	s.log.Info("meta-server started", "advertise", s.advertise)
	return nil
}

func (s *Service) spawn(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// ready is /readyz and gRPC health: serving (as leader or standby) and not
// stopping.
func (s *Service) ready() error {
	if s.stopping.Load() {
		return errors.New("stopping")
	}
	if !s.state.ready() {
		return errors.New("loading state from etcd")
	}
	return nil
}

// stop, once NOT_SERVING: resign leadership (a standby takes over at once)
// and end the background work.
func (s *Service) stop(ctx context.Context) error {
	s.stopping.Store(true)
	s.cancel() // ends the term (resign), the mirrors and the forwarder
	var err error
	select {
	case <-s.campaignDone:
	case <-ctx.Done():
		err = fmt.Errorf("meta-server stop: resign leadership: %w", ctx.Err())
	}
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
	s.proxy.close()
	return err
}

// IsLeader reports whether this meta-server currently leads.
func (s *Service) IsLeader() bool { return s.leading() != nil }
