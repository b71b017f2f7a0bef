package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/tistream/tistream/libs/gcpace"
	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/offheap"
)

// State is where a service is in its lifecycle. It only moves forward:
// New → Starting → Running → Stopping → Terminated, or to Failed from
// Starting or Running.
type State int32

const (
	StateNew State = iota
	StateStarting
	StateRunning
	StateStopping
	StateTerminated
	StateFailed
)

func (s State) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateStarting:
		return "starting"
	case StateRunning:
		return "running"
	case StateStopping:
		return "stopping"
	case StateTerminated:
		return "terminated"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("state(%d)", int32(s))
}

// Logic is what a service adds to the kernel: its gRPC services, its
// background work and its own idea of readiness. Everything else — the
// servers, listeners, interceptors, limits, health and the lifecycle — is
// the kernel's, the same for every service.
type Logic interface {
	// Register adds the service's gRPC services; it runs before serving.
	Register(g *grpc.Server)
	// Start runs once the servers listen (their addresses are known) and
	// starts the background work, which lives until Stop. An error fails
	// the start: the servers are closed again.
	Start(ctx context.Context, k *Kernel) error
	// Stop runs after the service went NOT_SERVING and before the servers
	// stop: drain, release leases, persist.
	Stop(ctx context.Context) error
	// Closed runs after the servers stopped (no call is in flight any
	// more): release local resources.
	Closed() error
	// Ready reports whether the service can serve now; nil means ready.
	Ready() error
}

// KernelConfig describes one service to the kernel.
type KernelConfig struct {
	Name   string // for logs and errors: "sorter", "api-server", ...
	Common Common
	// Log is the service's logger, carrying its name (every service's is
	// With("service", name)): the kernel's lines add no name of their own,
	// which named the service twice in each.
	Log      *slog.Logger
	Registry *prometheus.Registry
	// HealthNames are the gRPC service names whose health follows the
	// probe, besides the server's overall status ("").
	HealthNames []string
	// ProbeInterval is how often readiness is re-evaluated for the gRPC
	// health service (default 500 ms); /readyz evaluates it on each call.
	ProbeInterval time.Duration
	// Public: callers may come without a client certificate and
	// authenticate with a bearer token instead (the api-server and the
	// meta-server); internal services require a certificate.
	Public bool
	// Server are further interceptors for the gRPC server (limits);
	// message sizes and streams come from Common.
	Server grpcx.ServerOptions
}

// defaultMaxConcurrentStreams bounds the calls in flight on one client
// connection unless Common says otherwise.
const defaultMaxConcurrentStreams = 1024

// Kernel runs one service: it owns the gRPC and HTTP servers, drives both
// health surfaces (gRPC health and /readyz) from one probe, records the
// lifecycle state and reports a failure after start (a server that stops
// serving, a fatal error of the service's background work) on Failed, so
// that the process does not live on with a dead server.
type Kernel struct {
	cfg   KernelConfig
	logic Logic
	log   *slog.Logger

	state  atomic.Int32
	life   sync.Mutex // Start and Stop never overlap
	grpc   atomic.Pointer[grpcx.Server]
	http   atomic.Pointer[HTTPServer]
	served chan struct{} // closed when the gRPC server returns

	failOnce sync.Once
	failed   chan error // receives the first failure, then closes
	probeEnd chan struct{}
	probeWg  sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
	// releasePace gives back the process's GC pacer (package gcpace),
	// taken when the service starts.
	releasePace func()
}

// NewKernel prepares a service; it starts nothing.
func NewKernel(cfg KernelConfig, logic Logic) *Kernel {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 500 * time.Millisecond
	}
	return &Kernel{cfg: cfg, logic: logic, log: cfg.Log, failed: make(chan error, 1), probeEnd: make(chan struct{})}
}

// Name is the service's name.
func (k *Kernel) Name() string { return k.cfg.Name }

// State is the service's lifecycle state.
func (k *Kernel) State() State { return State(k.state.Load()) }

// Failed receives the service's failure after it started (then closes).
func (k *Kernel) Failed() <-chan error { return k.failed }

// GRPCAddr is the gRPC listening address, "" before Start.
func (k *Kernel) GRPCAddr() string {
	if g := k.grpc.Load(); g != nil {
		return g.Addr()
	}
	return ""
}

// HTTPAddr is the metrics and probes address, "" before Start.
func (k *Kernel) HTTPAddr() string {
	if h := k.http.Load(); h != nil {
		return h.Addr()
	}
	return ""
}

// Start listens, registers the service, runs its Start and begins serving;
// it returns once the service serves. It can run once.
func (k *Kernel) Start(ctx context.Context) error {
	k.life.Lock()
	defer k.life.Unlock()
	if !k.state.CompareAndSwap(int32(StateNew), int32(StateStarting)) {
		return fmt.Errorf("%s: start in state %s", k.cfg.Name, k.State())
	}
	k.hugeHeap()
	opts, err := securedServer(k.cfg.Common.Security, k.cfg.Public, k.log, k.cfg.Registry)
	if err != nil {
		k.state.Store(int32(StateFailed))
		return fmt.Errorf("%s: %w", k.cfg.Name, err)
	}
	opts.MaxRecvBytes, opts.MaxConcurrentStreams = k.cfg.Common.MaxRecvBytes, k.cfg.Common.MaxConcurrentStreams
	if opts.MaxConcurrentStreams == 0 {
		opts.MaxConcurrentStreams = defaultMaxConcurrentStreams
	}
	opts.Unary = append(opts.Unary, k.cfg.Server.Unary...)
	opts.Stream = append(opts.Stream, k.cfg.Server.Stream...)
	g, err := grpcx.NewServerWith(k.cfg.Common.GRPCAddr, k.log, k.cfg.Registry, opts)
	if err != nil {
		k.state.Store(int32(StateFailed))
		return fmt.Errorf("%s: %w", k.cfg.Name, err)
	}
	k.logic.Register(g.Server)
	h, err := NewHTTPServer(k.cfg.Common.HTTPAddr, k.cfg.Registry, HTTPOptions{Ready: k.Ready, Fail: k.Fail, Pprof: k.cfg.Common.Pprof})
	if err != nil {
		g.Close()
		k.state.Store(int32(StateFailed))
		return fmt.Errorf("%s: %w", k.cfg.Name, err)
	}
	k.grpc.Store(g)
	k.http.Store(h)
	k.setHealth(false)
	// The listener exists, so the service's Start knows its address (to
	// advertise it); calls that arrive before it is done wait in the
	// listen queue instead of meeting a half-started service.
	if err := k.logic.Start(ctx, k); err != nil {
		g.Close()
		_ = h.Close(ctx)
		k.grpc.Store(nil)
		k.http.Store(nil)
		k.state.Store(int32(StateFailed))
		return fmt.Errorf("%s: %w", k.cfg.Name, err)
	}
	k.pace()
	k.served = make(chan struct{})
	go func(served chan struct{}) {
		defer close(served)
		if err := g.Serve(); err != nil && k.State() < StateStopping {
			k.Fail(fmt.Errorf("gRPC server on %s: %w", g.Addr(), err))
		}
	}(k.served)
	k.state.CompareAndSwap(int32(StateStarting), int32(StateRunning))
	k.probe()
	k.probeWg.Add(1)
	go k.probeLoop()
	k.log.Info("service serving", "grpc_addr", g.Addr(), "http_addr", h.Addr())
	return nil
}

// Fail records a failure of the running service: it goes not ready (both
// health surfaces) and the failure is reported on Failed. The process
// decides what to do (tistream run exits). Later failures are only logged.
func (k *Kernel) Fail(err error) {
	first := false
	k.failOnce.Do(func() {
		first = true
		k.log.Error("service failed", "err", err)
		for {
			cur := k.state.Load()
			if State(cur) >= StateStopping || k.state.CompareAndSwap(cur, int32(StateFailed)) {
				break
			}
		}
		k.failed <- err
		close(k.failed)
	})
	if !first {
		k.log.Warn("service failure after the first", "err", err)
	}
	k.probe()
}

// Ready is the one readiness both /readyz and the gRPC health service
// report: running, and the service itself ready.
func (k *Kernel) Ready() error {
	if st := k.State(); st != StateRunning {
		return fmt.Errorf("%s", st)
	}
	return k.logic.Ready()
}

func (k *Kernel) probeLoop() {
	defer k.probeWg.Done()
	t := time.NewTicker(k.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-k.probeEnd:
			return
		case <-t.C:
			k.probe()
		}
	}
}

// probe sets the gRPC health status from Ready.
func (k *Kernel) probe() { k.setHealth(k.Ready() == nil) }

func (k *Kernel) setHealth(serving bool) {
	g := k.grpc.Load()
	if g == nil {
		return
	}
	for _, name := range append([]string{""}, k.cfg.HealthNames...) {
		g.SetServing(name, serving)
	}
}

// Stop stops gracefully: NOT_SERVING on both health surfaces, the
// service's Stop (drain, release), then the servers, the gRPC one forced
// when ctx ends. It runs once; later calls return the first result.
func (k *Kernel) Stop(ctx context.Context) error {
	k.stopOnce.Do(func() { k.stopErr = k.stop(ctx) })
	return k.stopErr
}

func (k *Kernel) stop(ctx context.Context) error {
	k.life.Lock()
	defer k.life.Unlock()
	prev := State(k.state.Swap(int32(StateStopping)))
	if prev == StateNew || prev == StateTerminated {
		k.state.Store(int32(StateTerminated))
		return nil
	}
	g, h, served := k.grpc.Load(), k.http.Load(), k.served
	if g == nil { // its Start failed and cleaned up
		k.state.Store(int32(StateTerminated))
		return nil
	}
	close(k.probeEnd)
	k.probeWg.Wait()
	g.Health.Shutdown()
	err := k.logic.Stop(ctx)
	g.Shutdown(ctx)
	<-served
	if cerr := h.Close(ctx); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close HTTP server: %w", cerr))
	}
	if cerr := k.logic.Closed(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if k.releasePace != nil {
		k.releasePace()
	}
	if prev == StateFailed {
		k.state.Store(int32(StateFailed))
	} else {
		k.state.Store(int32(StateTerminated))
	}
	k.log.Info("service stopped")
	if err != nil {
		return fmt.Errorf("%s stop: %w", k.cfg.Name, err)
	}
	return nil
}

// hugeHeap sets the process's page mode from Common.HugePages and advises
// its Go heap growth for huge pages with Common.HugePageHeap when huge
// pages are in use, before the service's Start allocates (the first
// service of a process to start sets both for all; later ones find them
// decided), and exports what the process chose.
func (k *Kernel) hugeHeap() {
	if m, err := offheap.ParsePageMode(k.cfg.Common.HugePages); err == nil { // Validate names a wrong one
		offheap.SetPageMode(m)
	}
	c := offheap.Pages()
	k.log.Info("page size for large buffers", "huge", c.Huge, "why", c.String())
	if got := offheap.HugeHeap(offheap.HugeHeapSetting(k.cfg.Common.HugePageHeap)); got > 0 {
		k.log.Info("Go heap growth advised for huge pages", "bytes", got)
	}
	_ = k.cfg.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tistream_process_huge_page_heap_bytes",
		Help: "Bytes of the Go heap's growth advised for transparent huge pages at the process's start (--huge-page-heap; 0: none)."},
		func() float64 { return float64(offheap.HugeHeapBytes()) }))
	_ = k.cfg.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tistream_process_huge_pages",
		Help: "1 when the process's large buffers take transparent huge pages, 0 when 4 KiB pages (--huge-pages; auto measures page faults at start)."},
		func() float64 {
			if offheap.Pages().Huge {
				return 1
			}
			return 0
		}))
	if c.SmallPerMiB > 0 {
		for page, d := range map[string]time.Duration{"4KiB": c.SmallPerMiB, "2MiB": c.HugePerMiB} {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "tistream_process_page_fault_probe_seconds_per_mib",
				Help:        "What first touching a MiB of fresh memory cost at the process's start, by page size (--huge-pages auto's measurement).",
				ConstLabels: prometheus.Labels{"page": page}})
			g.Set(d.Seconds())
			_ = k.cfg.Registry.Register(g)
		}
	}
}

// pace takes the process's GC pacer with Common.GCMaxHeadroom (the first
// service of a process to start sets it for all; negative: none) and
// exports the GOGC in force.
func (k *Kernel) pace() {
	h := k.cfg.Common.GCMaxHeadroom
	if h < 0 {
		return
	}
	p, release := gcpace.Acquire(gcpace.Options{MaxHeadroom: h})
	k.releasePace = release
	if p == nil {
		return
	}
	// Services of one process may share a registry: the first one's gauge
	// serves (the pacer is the same).
	_ = k.cfg.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tistream_process_gc_percent",
		Help: "GOGC in force in the process: the heap the Go collector lets grow past the live heap, in percent of it, as the pacer sets it after every collection (--gc-max-headroom)."},
		func() float64 { return float64(p.Percent()) }))
}

// Funcs adapts plain functions to Logic, so a service type can keep its
// exported Start and Stop for the kernel's (it embeds *Kernel) and hand its
// own steps over as unexported methods. A nil function does nothing.
type Funcs struct {
	OnRegister func(g *grpc.Server)
	OnStart    func(ctx context.Context, k *Kernel) error
	OnStop     func(ctx context.Context) error
	OnClosed   func() error
	OnReady    func() error
}

func (f Funcs) Register(g *grpc.Server) {
	if f.OnRegister != nil {
		f.OnRegister(g)
	}
}

func (f Funcs) Start(ctx context.Context, k *Kernel) error {
	if f.OnStart == nil {
		return nil
	}
	return f.OnStart(ctx, k)
}

func (f Funcs) Stop(ctx context.Context) error {
	if f.OnStop == nil {
		return nil
	}
	return f.OnStop(ctx)
}

func (f Funcs) Closed() error {
	if f.OnClosed == nil {
		return nil
	}
	return f.OnClosed()
}

func (f Funcs) Ready() error {
	if f.OnReady == nil {
		return nil
	}
	return f.OnReady()
}

// SetServing sets the gRPC health of a name the probe does not own (the
// meta-server's "leader" status, for one); ignored before Start.
func (k *Kernel) SetServing(name string, serving bool) {
	if g := k.grpc.Load(); g != nil && k.State() < StateStopping {
		g.SetServing(name, serving)
	}
}

// ClientCredentials are what this service presents when it calls another
// (ClientCredentials of its security settings).
func (k *Kernel) ClientCredentials() (credentials.TransportCredentials, error) {
	return ClientCredentials(k.cfg.Common.Security, k.log)
}
