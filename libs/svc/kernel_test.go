package svc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tistream/tistream/libs/gcpace"
	"github.com/tistream/tistream/libs/offheap"
)

// fakeLogic is a service whose readiness and start the test controls.
type fakeLogic struct {
	notReady atomic.Pointer[error]
	startErr error
	started  atomic.Bool
	stopped  atomic.Bool
	closed   atomic.Bool
}

func (f *fakeLogic) Register(*grpc.Server) {}
func (f *fakeLogic) Start(_ context.Context, k *Kernel) error {
	if k.GRPCAddr() == "" || k.HTTPAddr() == "" {
		return errors.New("addresses unknown in Start")
	}
	f.started.Store(true)
	return f.startErr
}
func (f *fakeLogic) Stop(context.Context) error { f.stopped.Store(true); return nil }
func (f *fakeLogic) Closed() error              { f.closed.Store(true); return nil }
func (f *fakeLogic) Ready() error {
	if e := f.notReady.Load(); e != nil {
		return *e
	}
	return nil
}

func newTestKernel(logic Logic, pprof bool) *Kernel {
	return NewKernel(KernelConfig{Name: "test", Log: slog.New(slog.DiscardHandler), ProbeInterval: 10 * time.Millisecond,
		HealthNames: []string{"test.v1.Test"},
		Common: Common{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", StopTimeout: time.Second, Pprof: pprof,
			Security: Security{Insecure: true}}}, logic)
}

// probes reads both health surfaces: gRPC health of the named service and
// /readyz.
func probes(t *testing.T, k *Kernel) (grpcServing, httpReady bool) {
	t.Helper()
	cc, err := grpc.NewClient(k.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "test.v1.Test"})
	require.NoError(t, err)
	r, err := http.Get("http://" + k.HTTPAddr() + "/readyz")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return resp.Status == healthpb.HealthCheckResponse_SERVING, r.StatusCode == http.StatusOK
}

// One lifecycle: addresses are empty (not a panic) before Start, known in
// the service's Start; Start runs once; Stop runs the service's steps in
// order, once.
func TestKernelLifecycle(t *testing.T) {
	f := &fakeLogic{}
	k := newTestKernel(f, false)
	require.Equal(t, StateNew, k.State())
	require.Empty(t, k.GRPCAddr())
	require.NoError(t, k.Start(context.Background()))
	require.True(t, f.started.Load())
	require.Equal(t, StateRunning, k.State())
	require.ErrorContains(t, k.Start(context.Background()), "start in state running")
	require.NoError(t, k.Stop(context.Background()))
	require.NoError(t, k.Stop(context.Background()))
	require.True(t, f.stopped.Load() && f.closed.Load())
	require.Equal(t, StateTerminated, k.State())

	// Stop before Start does nothing; Start after it is refused.
	k2 := newTestKernel(&fakeLogic{}, false)
	require.NoError(t, k2.Stop(context.Background()))
	require.Error(t, k2.Start(context.Background()))
}

// The kernel's own lines (serving, stopped) name the service once: its
// logger already carries the name, as every service's does.
func TestKernelLinesNameTheServiceOnce(t *testing.T) {
	var out strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &out}, nil)).With("service", "test")
	k := NewKernel(KernelConfig{Name: "test", Log: log, ProbeInterval: 10 * time.Millisecond,
		Common: Common{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", StopTimeout: time.Second,
			Security: Security{Insecure: true}}}, &fakeLogic{})
	require.NoError(t, k.Start(context.Background()))
	require.NoError(t, k.Stop(context.Background()))
	mu.Lock()
	defer mu.Unlock()
	lines := 0
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.Contains(line, `msg="service serving"`) || strings.Contains(line, `msg="service stopped"`) {
			lines++
			require.Equal(t, 1, strings.Count(line, "service=test"), line)
		}
	}
	require.Equal(t, 2, lines, out.String())
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// The gRPC health service and /readyz come from one probe and agree: a
// service that stops being ready (a lost lease, say) is NOT_SERVING on
// both, and SERVING again on both when it recovers.
func TestKernelHealthSurfacesAgree(t *testing.T) {
	f := &fakeLogic{}
	k := newTestKernel(f, false)
	require.NoError(t, k.Start(context.Background()))
	defer k.Stop(context.Background())
	agree := func(want bool) {
		require.Eventually(t, func() bool {
			g, h := probes(t, k)
			return g == want && h == want
		}, 5*time.Second, 10*time.Millisecond)
	}
	agree(true)
	lost := errors.New("lease lost")
	f.notReady.Store(&lost)
	agree(false)
	f.notReady.Store(nil)
	agree(true)
}

// A failure after start (a dead server, a fatal background error) is
// reported on Failed, makes the service not ready, and makes Run return
// it: the process does not live on with a dead service.
func TestKernelFailureStopsRun(t *testing.T) {
	f := &fakeLogic{}
	k := newTestKernel(f, false)
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), slog.New(slog.DiscardHandler), time.Second, k) }()
	require.Eventually(t, func() bool { return k.State() == StateRunning }, 5*time.Second, 5*time.Millisecond)
	k.Fail(errors.New("disk gone"))
	select {
	case err := <-done:
		require.ErrorContains(t, err, "test failed: disk gone")
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the failure")
	}
	require.Equal(t, StateFailed, k.State())
	require.True(t, f.stopped.Load(), "stopped gracefully all the same")
}

// A service whose Start fails leaves nothing listening.
func TestKernelStartFailureReleasesPorts(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	k := NewKernel(KernelConfig{Name: "test", Common: Common{GRPCAddr: addr, HTTPAddr: "127.0.0.1:0", Security: Security{Insecure: true}}},
		&fakeLogic{startErr: errors.New("no etcd")})
	require.ErrorContains(t, k.Start(context.Background()), "no etcd")
	require.Equal(t, StateFailed, k.State())
	lis, err = net.Listen("tcp", addr)
	require.NoError(t, err, "the gRPC port was released")
	require.NoError(t, lis.Close())
	require.NoError(t, k.Stop(context.Background()))
}

// /debug/pprof is served only when asked for.
func TestKernelPprofOptIn(t *testing.T) {
	for _, on := range []bool{false, true} {
		k := newTestKernel(&fakeLogic{}, on)
		require.NoError(t, k.Start(context.Background()))
		r, err := http.Get("http://" + k.HTTPAddr() + "/debug/pprof/")
		require.NoError(t, err)
		r.Body.Close()
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		require.Equal(t, want, r.StatusCode, "pprof %v", on)
		require.NoError(t, k.Stop(context.Background()))
	}
}

// The kernel takes the process's GC pacer while the service runs and
// exports the GOGC in force; -1 leaves GOGC alone.
func TestKernelPacesTheCollector(t *testing.T) {
	gauge := func(k *Kernel) (float64, bool) {
		mfs, err := k.cfg.Registry.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "tistream_process_gc_percent" {
				return mf.GetMetric()[0].GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	k := newTestKernel(&fakeLogic{}, false)
	require.NoError(t, k.Start(context.Background()))
	v, ok := gauge(k)
	require.True(t, ok, "no tistream_process_gc_percent while running")
	require.Greater(t, v, 0.0)
	p, release := gcpace.Acquire(gcpace.Options{})
	require.NotNil(t, p)
	release()
	require.NoError(t, k.Stop(context.Background()))
	// Stopped, the kernel no longer holds the pacer: the next user starts a
	// new one with its own options.
	q, release := gcpace.Acquire(gcpace.Options{})
	require.NotSame(t, p, q)
	release()

	off := newTestKernel(&fakeLogic{}, false)
	off.cfg.Common.GCMaxHeadroom = -1
	require.NoError(t, off.Start(context.Background()))
	defer off.Stop(context.Background())
	_, ok = gauge(off)
	require.False(t, ok, "a kernel with --gc-max-headroom -1 exports a pacer's GOGC")
}

// A kernel's start decides the process's page size (--huge-pages, auto by
// default: measured), advises the heap growth for huge pages when they
// were chosen (the first kernel to start; offheap's own tests check the
// advice reaches the heap), and exports both.
func TestKernelAdvisesTheHeap(t *testing.T) {
	k := newTestKernel(&fakeLogic{}, false)
	require.NoError(t, k.Start(context.Background()))
	defer k.Stop(context.Background())
	pages := offheap.Pages()
	require.Equal(t, offheap.PagesAuto, pages.Mode, "the default --huge-pages")
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err == nil && offheap.HugeHeapAvailable() {
		want := int64(0)
		if pages.Huge {
			want = offheap.DefaultHugeHeap // the default setting advises 1 GiB
		}
		require.Equal(t, want, offheap.HugeHeapBytes(), "%s", pages)
		require.Positive(t, pages.SmallPerMiB, "auto measured the page faults")
	}
	mfs, err := k.cfg.Registry.Gather()
	require.NoError(t, err)
	found := map[string]int{} // name -> index in mfs
	for i, mf := range mfs {
		found[mf.GetName()] = i
	}
	gauge := func(name string) float64 { return mfs[found[name]].GetMetric()[0].GetGauge().GetValue() }
	require.Contains(t, found, "tistream_process_huge_page_heap_bytes")
	require.Equal(t, float64(offheap.HugeHeapBytes()), gauge("tistream_process_huge_page_heap_bytes"))
	require.Contains(t, found, "tistream_process_huge_pages")
	huge := 0.0
	if pages.Huge {
		huge = 1
	}
	require.Equal(t, huge, gauge("tistream_process_huge_pages"))
	if pages.SmallPerMiB > 0 {
		require.Contains(t, found, "tistream_process_page_fault_probe_seconds_per_mib")
		require.Len(t, mfs[found["tistream_process_page_fault_probe_seconds_per_mib"]].GetMetric(), 2)
	}
}

// A wrong --huge-pages is named by Validate, not taken for a default.
func TestHugePagesSettingValidated(t *testing.T) {
	c := Common{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", StopTimeout: time.Second, LogLevel: "info", LogFormat: "text", HugePages: "sometimes", Security: Security{Insecure: true}}
	require.ErrorContains(t, c.Validate("x-"), `--x-huge-pages: huge pages "sometimes"`)
	c.HugePages = "off"
	require.NoError(t, c.Validate("x-"))
}
