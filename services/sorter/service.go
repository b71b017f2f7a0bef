package sorter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/sortbuf"
	rangesorter "github.com/tistream/tistream/libs/sorter"
	"github.com/tistream/tistream/libs/svc"
	"github.com/tistream/tistream/libs/txnmatch"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// Deps are what the sorter runs on.
type Deps struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	Etcd     *clientv3.Client
	// Pool is the committed data pool (range logs, data files).
	Pool objstore.Store
	// Snapshots is where range snapshots go; nil = Pool.
	Snapshots objstore.Store
}

// Service is one sorter process.
type Service struct {
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry
	etcd     *clientv3.Client
	pool     objstore.Store
	snaps    objstore.Store
	m        *metrics

	engine    *sortbuf.Engine
	deps      rangesorter.Deps
	grpc      *grpcx.Server
	http      *svc.HTTPServer
	advertise string

	rootCtx    context.Context // lives until Stop
	rootCancel context.CancelFunc
	runDone    chan struct{}
	started    atomic.Bool
	stopping   atomic.Bool
	stopOnce   sync.Once
	stopErr    error

	worker etcdx.CurrentRegistration // replaced after a lost lease

	// mu guards the maps below; a holder's own state has its own lock.
	mu      sync.Mutex
	holders map[rangeKey]*holder
	tasks   map[rangeKey]*metav1.RangeTask // the watched range tasks
	feeders map[tenantStore]map[*ingestStream]struct{}

	events atomic.Int64 // events applied, for the published load

	stickyMu sync.Mutex // after a holder's mu, never before
	sticky   map[rangeStore]uint64

	retentionDone chan struct{} // closed when the retention loop ends (retention.go)
}

// rangeKey names a range.
type rangeKey struct{ tenant, id uint64 }

// tenantStore names a stream.
type tenantStore struct{ tenant, store uint64 }

// rangeStore names one range's view of one store.
type rangeStore struct {
	rangeKey
	store uint64
}

// New validates the configuration and dependencies; it starts nothing.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sorter config: %w", err)
	}
	switch {
	case deps.Etcd == nil:
		return nil, errors.New("sorter: an etcd client is required")
	case deps.Pool == nil:
		return nil, errors.New("sorter: the committed data pool store is required")
	}
	if deps.Snapshots == nil {
		deps.Snapshots = deps.Pool
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	return &Service{
		cfg: cfg, log: deps.Log.With("service", "sorter", "sorter", cfg.ID), registry: deps.Registry,
		etcd: deps.Etcd, pool: deps.Pool, snaps: deps.Snapshots, m: newMetrics(deps.Registry),
		runDone: make(chan struct{}), holders: map[rangeKey]*holder{}, tasks: map[rangeKey]*metav1.RangeTask{},
		sticky: map[rangeStore]uint64{}, feeders: map[tenantStore]map[*ingestStream]struct{}{},
	}, nil
}

// Name implements svc.Service.
func (s *Service) Name() string { return "sorter" }

// GRPCAddr is the address the gRPC server listens on (after Start).
func (s *Service) GRPCAddr() string {
	if s.grpc == nil {
		return ""
	}
	return s.grpc.Addr()
}

// HTTPAddr is the address of /metrics and the probes (after Start).
func (s *Service) HTTPAddr() string {
	if s.http == nil {
		return ""
	}
	return s.http.Addr()
}

// ID is the sorter's worker id.
func (s *Service) ID() string { return s.cfg.ID }

// Start opens the local buffers, serves SorterService and health, registers
// the worker in etcd and starts following the range tasks; it returns once
// serving.
func (s *Service) Start(ctx context.Context) (err error) {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("sorter: already started")
	}
	bcfg := s.cfg.Buffer
	bcfg.Logger = s.log.With("component", "sortbuf")
	dir := s.cfg.dataDir()
	if s.engine, err = sortbuf.Open(dir, bcfg); err != nil {
		return fmt.Errorf("sorter: open buffers in %s: %w", dir, err)
	}
	s.deps = rangesorter.Deps{Pool: s.pool, Snapshots: s.snaps, Buffers: s.engine,
		Budget: txnmatch.NewBudget(s.cfg.MatcherBudget), Owner: s.cfg.ID}
	fail := func(err error) error {
		if s.grpc != nil {
			s.grpc.Shutdown(ctx)
		}
		if s.http != nil {
			_ = s.http.Close(ctx)
		}
		return errors.Join(err, s.engine.Close())
	}
	if s.grpc, err = grpcx.NewServer(s.cfg.GRPCAddr, s.log, s.registry); err != nil {
		return fail(fmt.Errorf("sorter gRPC server: %w", err))
	}
	sorterv1.RegisterSorterServiceServer(s.grpc.Server, &api{s: s})
	s.advertise = svc.AdvertiseAddr(s.cfg.AdvertiseAddr, s.grpc.Addr())
	if s.http, err = svc.NewHTTPServer(s.cfg.HTTPAddr, s.registry, s.ready); err != nil {
		return fail(fmt.Errorf("sorter HTTP server: %w", err))
	}
	// Background work lives until Stop, not until Start's ctx ends.
	s.rootCtx, s.rootCancel = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		if err := s.grpc.Serve(); err != nil {
			s.log.Error("gRPC server ended", "err", err)
		}
	}()
	reg, err := s.register(ctx)
	if err != nil {
		s.rootCancel()
		s.rootCancel = nil // nothing for Stop to do
		return fail(err)
	}
	go s.run(reg)
	s.startRetention()
	for _, name := range []string{"", sorterv1.SorterService_ServiceDesc.ServiceName} {
		s.grpc.Health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.log.Info("sorter started", "grpc_addr", s.grpc.Addr(), "advertise_addr", s.advertise, "http_addr", s.http.Addr(), "data_dir", dir)
	return nil
}

// Stop shuts down gracefully: NOT_SERVING, stop following the range tasks,
// snapshot and drop every range (the next owner restores from there),
// revoke the lease, end the Ingest streams, stop the servers and close the
// buffers.
func (s *Service) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.stop(ctx) })
	return s.stopErr
}

func (s *Service) stop(ctx context.Context) error {
	if !s.started.Load() || s.rootCancel == nil {
		return nil
	}
	s.stopping.Store(true)
	s.grpc.Health.Shutdown()
	var errs []error
	s.rootCancel()
	select {
	case <-s.runDone:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("sorter stop: ranges still being released: %w", ctx.Err()))
	}
	select {
	case <-s.retentionDone:
	case <-ctx.Done():
	}
	s.grpc.Shutdown(ctx)
	if err := s.http.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("close HTTP server: %w", err))
	}
	if len(errs) == 0 {
		if err := s.engine.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close buffers: %w", err))
		}
	}
	s.log.Info("sorter stopped")
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

// register puts this sorter's WorkerInfo under a new lease.
func (s *Service) register(ctx context.Context) (*etcdx.Registration, error) {
	info := &metav1.WorkerInfo{Id: s.cfg.ID, Kind: metav1.WorkerKind_WORKER_KIND_SORTER, Addr: s.advertise,
		StartedUnixMs: time.Now().UnixMilli()}
	reg, err := etcdx.Register(ctx, s.etcd, info, s.cfg.LeaseTTL)
	if err != nil {
		return nil, fmt.Errorf("sorter: register worker: %w", err)
	}
	return reg, nil
}

// run follows the range tasks while registered; a lost lease drops every
// range and registers again. It ends at Stop, after releasing the ranges and
// revoking the lease.
func (s *Service) run(reg *etcdx.Registration) {
	defer close(s.runDone)
	ctx := s.rootCtx
	for {
		s.worker.Set(reg)
		wctx, cancel := context.WithCancel(ctx)
		watchDone := make(chan struct{})
		go func() {
			defer close(watchDone)
			s.followRanges(wctx)
		}()
		lost := s.waitLease(ctx, reg)
		cancel()
		<-watchDone
		// Graceful stop: snapshot first, the next owner resumes from there.
		s.releaseAll(!lost)
		if !lost {
			if err := reg.Close(); err != nil {
				s.log.Warn("revoke lease", "err", err)
			}
			s.worker.Set(nil)
			return
		}
		s.worker.Set(nil)
		s.m.leaseLosses.Inc()
		s.log.Warn("worker lease lost: dropped every range, registering again")
		if reg = s.reregister(ctx); reg == nil {
			return
		}
	}
}

// loadInterval is how often the worker's load is republished.
const loadInterval = 10 * time.Second

// waitLease republishes the measured load (events applied per second) until
// the lease is lost (true) or the service stops (false).
func (s *Service) waitLease(ctx context.Context, reg *etcdx.Registration) bool {
	t := time.NewTicker(loadInterval)
	defer t.Stop()
	last, lastAt := s.events.Load(), time.Now()
	for {
		select {
		case <-reg.Done():
			return true
		case <-ctx.Done():
			return false
		case now := <-t.C:
			n := s.events.Load()
			load := float64(n-last) / now.Sub(lastAt).Seconds()
			last, lastAt = n, now
			if err := reg.UpdateLoad(ctx, load); err != nil && ctx.Err() == nil {
				s.log.Warn("publish load", "err", err)
			}
		}
	}
}

// reregister retries registering until it works or the service stops.
func (s *Service) reregister(ctx context.Context) *etcdx.Registration {
	wait := s.cfg.RetryMin
	for {
		reg, err := s.register(ctx)
		if err == nil {
			return reg
		}
		s.log.Warn("register again", "err", err, "retry_in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil
		}
		wait = min(wait*2, s.cfg.RetryMax)
	}
}

// followRanges lists the range tasks and watches them, reconciling the held
// ranges at every change, until ctx ends. A broken watch lists again.
func (s *Service) followRanges(ctx context.Context) {
	wait := s.cfg.RetryMin
	for ctx.Err() == nil {
		err := s.listAndWatch(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("range task watch broke; listing again", "err", err, "retry_in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait = min(wait*2, s.cfg.RetryMax)
	}
}

func (s *Service) listAndWatch(ctx context.Context) error {
	all, rev, err := etcdx.ListProto(ctx, s.etcd, etcdx.RangesPrefix, func() *metav1.RangeTask { return &metav1.RangeTask{} })
	if err != nil {
		return err
	}
	tasks := make(map[rangeKey]*metav1.RangeTask, len(all))
	for _, t := range all {
		tasks[rangeKey{t.TenantId, t.RangeId}] = t
	}
	s.mu.Lock()
	s.tasks = tasks
	s.mu.Unlock()
	s.reconcile(ctx)
	wch := s.etcd.Watch(clientv3.WithRequireLeader(ctx), etcdx.RangesPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return err
		}
		s.mu.Lock()
		for _, ev := range resp.Events {
			tenant, id, err := etcdx.ParseTwoIDs(string(ev.Kv.Key), etcdx.RangesPrefix)
			if err != nil {
				s.log.Warn("ignoring range task key", "err", err)
				continue
			}
			k := rangeKey{tenant, id}
			if ev.Type == clientv3.EventTypeDelete {
				delete(s.tasks, k)
				continue
			}
			t := &metav1.RangeTask{}
			if err := unmarshal(ev.Kv.Value, t); err != nil {
				s.log.Warn("ignoring range task value", "key", string(ev.Kv.Key), "err", err)
				continue
			}
			s.tasks[k] = t
		}
		s.mu.Unlock()
		s.reconcile(ctx)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("watch channel closed")
}

// reconcile starts a holder for every range assigned to this sorter that
// it does not hold at that epoch, and stops those it should not hold.
func (s *Service) reconcile(ctx context.Context) {
	s.mu.Lock()
	var stop []*holder
	for k, h := range s.holders {
		t := s.tasks[k]
		if !s.mine(t) || t.Epoch != h.epoch {
			stop = append(stop, h)
			delete(s.holders, k)
			continue
		}
		h.setTask(t)
	}
	var start []*holder
	for k, t := range s.tasks {
		if _, ok := s.holders[k]; ok || !s.mine(t) {
			continue
		}
		h := newHolder(s, t)
		s.holders[k] = h
		start = append(start, h)
	}
	s.mu.Unlock()
	for _, h := range stop {
		s.log.Info("releasing range", "tenant", h.key.tenant, "range", h.key.id, "epoch", h.epoch)
		h.stop(false)
	}
	for _, h := range start {
		s.log.Info("taking range", "tenant", h.key.tenant, "range", h.key.id, "epoch", h.epoch)
		h.start(ctx)
	}
}

// mine: the task is assigned to this sorter and not retired.
func (s *Service) mine(t *metav1.RangeTask) bool {
	return t != nil && t.Owner == s.cfg.ID && t.Epoch > 0 && t.State != metav1.RangeTask_STATE_RETIRED
}

// releaseAll stops every holder (snapshotting first when graceful).
func (s *Service) releaseAll(graceful bool) {
	s.mu.Lock()
	all := make([]*holder, 0, len(s.holders))
	for _, h := range s.holders {
		all = append(all, h)
	}
	s.holders = map[rangeKey]*holder{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, h := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.stop(graceful)
		}()
	}
	wg.Wait()
}

// lookup returns the holder of a range, nil when not held.
func (s *Service) lookup(k rangeKey) *holder {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holders[k]
}

// task returns the watched task of a range.
func (s *Service) task(k rangeKey) *metav1.RangeTask {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tasks[k]
}
