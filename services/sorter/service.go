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
	"google.golang.org/grpc"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/sortbuf"
	rangesorter "github.com/tistream/tistream/libs/sorter"
	"github.com/tistream/tistream/libs/svc"
	"github.com/tistream/tistream/libs/tenantcfg"
	"github.com/tistream/tistream/libs/txnmatch"
	"github.com/tistream/tistream/libs/workpool"
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

// Service is one sorter process. The kernel (libs/svc) runs its servers
// and lifecycle.
type Service struct {
	*svc.Kernel
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry
	etcd     *clientv3.Client
	pool     objstore.Store
	snaps    objstore.Store
	m        *metrics
	// tenants gives each tenant's effective retention (retention.go).
	tenants *tenantcfg.Watcher

	engine    *sortbuf.Engine
	deps      rangesorter.Deps
	advertise string
	// work drives the ranges: the batches of a request, the stages and
	// commits of a publish round (work.go). Set by start.
	work *workpool.Pool
	// throttle is the write stall: ingest waits for a publish round while
	// the buffered rows in memory pass --write-stall-bytes. Set by start.
	throttle *rangesorter.Throttle

	rootCtx    context.Context // lives until Stop
	rootCancel context.CancelFunc
	runDone    chan struct{}
	stopping   atomic.Bool
	stopErr    error // of the ranges' release: the buffers are closed only without one

	worker etcdx.CurrentRegistration // replaced after a lost lease

	// mu guards the maps below; a holder's own state has its own lock.
	mu      sync.Mutex
	holders map[rangeKey]*holder
	tasks   map[rangeKey]*metav1.RangeTask // the watched range tasks
	feeders map[tenantStore]map[*ingestStream]struct{}

	events atomic.Int64 // events applied, for the published load
	ld     loadReporter // per-range load and drain (load.go)

	stickyMu sync.Mutex // after a holder's mu, never before
	sticky   map[rangeStore]uint64

	retentionDone chan struct{} // closed when the retention loop ends (retention.go)

	// groups publish the held ranges, one per tenant (publish.go), under
	// mu; group ids are the sorter id, startedMs and groupSeq.
	groups    map[uint64]*tenantGroup
	groupSeq  atomic.Uint64
	startedMs int64
	pm        *publishMetrics
	// wakes wake the tenants' publishers (wake.go); notifier writes the
	// publication notices.
	wakes    sync.Map // tenant -> *publisherWake
	notifier *etcdx.Notifier

	// applying, when set (tests only), is called by every admitted batch
	// with its range's lock held, before it is decoded and applied.
	applying func(k rangeKey, store, seq uint64)
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
	s := &Service{
		cfg: cfg, log: deps.Log.With("service", "sorter", "sorter", cfg.ID), registry: deps.Registry,
		etcd: deps.Etcd, pool: deps.Pool, snaps: deps.Snapshots, m: newMetrics(deps.Registry),
		runDone: make(chan struct{}), holders: map[rangeKey]*holder{}, tasks: map[rangeKey]*metav1.RangeTask{},
		sticky: map[rangeStore]uint64{}, feeders: map[tenantStore]map[*ingestStream]struct{}{},
		groups: map[uint64]*tenantGroup{}, startedMs: time.Now().UnixMilli(), pm: newPublishMetrics(deps.Registry),
	}
	s.ld.init(deps.Registry)
	s.Kernel = svc.NewKernel(svc.KernelConfig{Name: "sorter", Common: cfg.Common, Log: s.log, Registry: deps.Registry,
		HealthNames: []string{sorterv1.SorterService_ServiceDesc.ServiceName}}, svc.Funcs{
		OnRegister: func(g *grpc.Server) { sorterv1.RegisterSorterServiceServer(g, &api{s: s}) },
		OnStart:    s.start,
		OnStop:     s.stop,
		OnClosed:   s.closed,
		OnReady:    s.ready,
	})
	return s, nil
}

// ID is the sorter's worker id.
func (s *Service) ID() string { return s.cfg.ID }

// start opens the local buffers, registers the worker in etcd and starts
// following the range tasks.
func (s *Service) start(ctx context.Context, k *svc.Kernel) (err error) {
	bcfg := s.cfg.Buffer
	bcfg.Logger = s.log.With("component", "sortbuf")
	dir := s.cfg.dataDir()
	if s.engine, err = sortbuf.Open(dir, bcfg); err != nil {
		return fmt.Errorf("open buffers in %s: %w", dir, err)
	}
	buffers, err := sortbuf.NewMemoryFirst(s.engine, s.cfg.BufferMemory)
	if err != nil {
		return errors.Join(err, s.engine.Close())
	}
	s.m.buffers.Store(buffers)
	s.throttle = rangesorter.NewThrottle(func() int64 { used, _, _ := buffers.Bytes(); return used }, s.cfg.WriteStallBytes)
	s.deps = rangesorter.Deps{Pool: s.pool, Snapshots: s.snaps, Buffers: buffers,
		Budget: txnmatch.NewBudget(s.cfg.MatcherBudget), Owner: s.cfg.ID, Group: s.group}
	s.advertise = svc.AdvertiseAddr(s.cfg.AdvertiseAddr, k.GRPCAddr())
	// Background work lives until Stop, not until Start's ctx ends.
	s.rootCtx, s.rootCancel = context.WithCancel(context.WithoutCancel(ctx))
	reg, err := s.register(ctx)
	if err != nil {
		s.rootCancel()
		return errors.Join(err, s.engine.Close())
	}
	if s.work, err = newWorkPool(s.cfg.workers()); err != nil {
		s.rootCancel()
		return errors.Join(err, reg.Close(), s.engine.Close())
	}
	s.m.workers.Set(float64(s.work.Workers()))
	s.startNotifier()
	go s.run(reg)
	s.startRetention()
	s.log.Info("sorter started", "advertise_addr", s.advertise, "data_dir", dir)
	return nil
}

// stop, once NOT_SERVING: stop following the range tasks, snapshot and
// drop every range (the next owner restores from there), revoke the lease.
func (s *Service) stop(ctx context.Context) error {
	s.drain(ctx) // load.go: let the meta-server move the ranges away first
	s.stopping.Store(true)
	s.rootCancel()
	select {
	case <-s.runDone:
	case <-ctx.Done():
		s.stopErr = fmt.Errorf("sorter stop: ranges still being released: %w", ctx.Err())
	}
	select {
	case <-s.retentionDone:
	case <-ctx.Done():
	}
	return s.stopErr
}

// closed closes the buffers once no Ingest call is in flight (not when
// ranges may still be releasing).
func (s *Service) closed() error {
	if s.stopErr != nil {
		return nil
	}
	// The ranges are released and the publishers stopped: what is left
	// are the tasks of a stream that was still applying.
	if s.work != nil {
		_ = s.work.Close() // its tasks return nil
	}
	if err := s.engine.Close(); err != nil {
		return fmt.Errorf("close buffers: %w", err)
	}
	return nil
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
	// LoadIntervalMs from the start: until its first load report, the
	// meta-server then counts this sorter's ranges as settling (load not
	// known yet) instead of idle, and makes no balance move on them. A
	// restarted sorter keeps its ranges, and without it a count balance
	// moved away a hot range just moved to it for load, read as idle.
	info := &metav1.WorkerInfo{Id: s.cfg.ID, Kind: metav1.WorkerKind_WORKER_KIND_SORTER, Addr: s.advertise,
		StartedUnixMs: time.Now().UnixMilli(), LoadIntervalMs: s.cfg.LoadInterval.Milliseconds()}
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
		s.closeGroups()
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

// waitLease republishes the measured load (load.go) every --load-interval
// until the lease is lost (true) or the service stops (false).
func (s *Service) waitLease(ctx context.Context, reg *etcdx.Registration) bool {
	t := time.NewTicker(s.cfg.LoadInterval)
	defer t.Stop()
	for {
		select {
		case <-reg.Done():
			return true
		case <-ctx.Done():
			return false
		case now := <-t.C:
			s.publishLoad(ctx, reg, now)
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
