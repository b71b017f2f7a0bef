//go:build linux

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// The noisy neighbour (issue 13 item 4, docs/tenants.md, "Quotas"): two
// tenants on one small fleet (one meta-server, sorter, dispatcher,
// registry and api-server as processes, real etcd and S3). The quiet tenant
// (2) pushes a steady 300 rows/s throughout; its lag is measured by a live
// pull through the api-server, first alone (the baseline). Then the noisy
// tenant (1) lands a backlog far larger than the fleet can take at once:
// backlogSpan of its upstream at 3,000 rows/s, made as fast as the
// simulator can (`tistream sim --meta --realtime=false`, ~100,000 row
// events per 6 s phase), as an upstream that pushed while the fleet could
// not keep up. Its ingest quota, noisyQuota row events/s (the fleet
// default, --tenant-default-ingest-rows-per-sec on the dispatcher; the quiet
// tenant's own setting, 0, lifts it for itself), holds it back; then, as
// the control, its quota is lifted through UpdateTenant and its backlog
// floods the dispatcher, the sorter and the pool beside the quiet tenant.
// Checked:
//   - the noisy tenant's ingest rate (row events the dispatcher sent,
//     sampled from its metrics) stays near its quota while it is held;
//   - the quiet tenant's lag beside the held backlog stays within the
//     bound of its lag alone (quietBound);
//   - with max_concurrent_pulls=1, a second pull of the noisy tenant is
//     RESOURCE_EXHAUSTED while the quiet tenant's pull goes on;
//   - nothing is lost: after the quota is lifted (no restart) the noisy
//     tenant catches up, and both tenants' pulls verify against their
//     simulators' truths.
// The control (the quiet tenant's lag beside the unlimited backlog) is
// printed, never asserted (docs/benchmarks.md "Quotas (issue 13)": the
// fleet takes the unlimited backlog at ~17,000 row events/s without
// starving the quiet tenant, so the control does not show the quota to
// matter on this fleet); TISTREAM_QUOTA_MEASURE=1 runs 30 s phases instead
// of 6 s and prints the table of that section.

const (
	noisyTenant, quietTenant = 1, 2
	noisyQuota               = 1500 // row events per second
	noisyRows, quietRows     = "3000", "300"
)

// backlogSpan is how much of the noisy tenant's upstream its backlog
// holds: enough for a phase at its quota and more than a phase of the
// fleet at full speed after the quota is lifted.
func backlogSpan(phase time.Duration) time.Duration { return phase * 10 / 3 }

func TestNoisyNeighbour(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	phase, measure := 6*time.Second, os.Getenv("TISTREAM_QUOTA_MEASURE") != ""
	if measure {
		phase = 30 * time.Second
	}
	f := startProcFleet(t, procFleetOptions{Metas: 1, Sorters: 1, Dispatchers: 1, Extra: map[string][]string{
		"dispatcher": {"--tenant-default-ingest-rows-per-sec", strconv.Itoa(noisyQuota)}}})
	meta := metav1.NewMetaServiceClient(f.tls.dial(t, f.first("meta-server").grpcAddr, "admin"))
	api := apiv1.NewTiStreamServiceClient(f.tls.dial(t, f.first("api-server").grpcAddr, "admin"))
	dispatcherHTTP := f.first("dispatcher").httpAddr
	cl := f.clients()
	quietTruth, noisyTruth := filepath.Join(f.dir, "quiet-truth.jsonl"), filepath.Join(f.dir, "noisy-truth.jsonl")

	// The quiet tenant alone: its own quota setting (0 = unlimited) wins
	// over the fleet default.
	quietSim := startSim(t, f, "sim-quiet", quietTenant, quietRows, 3*phase+12*time.Second, quietTruth, cl)
	waitRegistered(t, meta, quietTenant)
	updateQuotas(t, meta, quietTenant, &metav1.TenantQuotas{IngestRowsPerSec: proto.Uint64(0)})
	lag := followLag(t, api, quietTenant)
	time.Sleep(2 * time.Second) // the pipeline fills: not part of the baseline
	baseFrom := time.Now()
	time.Sleep(phase)
	baseTo := time.Now()

	// The noisy tenant's backlog lands, held to its quota from its first
	// file; the phase starts once the simulator is done (its own CPU is
	// not the neighbour's).
	var samples []rateSample
	sample := func() {
		samples = append(samples, rateSample{time.Now(), tenantCounter(t, dispatcherHTTP, "tistream_dispatcher_rows_read_total", noisyTenant)})
		time.Sleep(250 * time.Millisecond)
	}
	noisySim := startSim(t, f, "sim-noisy", noisyTenant, noisyRows, backlogSpan(phase), noisyTruth, cl, "--realtime=false")
	waitRegistered(t, meta, noisyTenant)
	updateQuotas(t, meta, noisyTenant, &metav1.TenantQuotas{MaxConcurrentPulls: proto.Uint32(1)})
	noisySim.wait(t, 2*time.Minute)
	pullQuotaCase(t, api, lag)
	noisyFrom := time.Now()
	for time.Since(noisyFrom) < phase {
		sample()
	}
	noisyTo := time.Now()

	// (b) The noisy tenant's rate while held: the whole phase (the
	// backlog is there from its start).
	rate, window := rateOver(samples, noisyFrom, noisyTo)
	waited := tenantCounter(t, dispatcherHTTP, "tistream_dispatcher_quota_wait_seconds_total", noisyTenant)
	t.Logf("noisy tenant: %.0f row events/s over %v at a quota of %d (the stream waited %.1f s)", rate, window.Round(time.Millisecond), noisyQuota, waited)
	if waited <= 0 {
		t.Errorf("the noisy tenant never waited for its quota: it was not over it")
	}
	if rate > 1.3*noisyQuota || rate < 0.5*noisyQuota {
		t.Errorf("the noisy tenant ingested %.0f row events/s while over its quota of %d: want within [0.5, 1.3] of it", rate, noisyQuota)
	}

	// The control: lift the noisy tenant's quota without a restart while
	// the quiet tenant goes on; its backlog flows at whatever the fleet
	// gives it.
	liftFrom := time.Now()
	updateQuotas(t, meta, noisyTenant, &metav1.TenantQuotas{IngestRowsPerSec: proto.Uint64(0)})
	for time.Since(liftFrom) < phase {
		sample()
	}
	liftTo := time.Now()
	catchUp, _ := rateOver(samples, liftFrom, liftTo)

	// (c) The quiet tenant's lag, alone, beside the held backlog and beside
	// the unlimited one.
	// Each phase's samples include the lag at its end (staleAt): a pull
	// starved of resolved marks shows as one long lag, not as no sample.
	base, noisy, lifted := lag.between(baseFrom, baseTo), lag.between(noisyFrom, noisyTo), lag.between(liftFrom, liftTo)
	if len(base) < 5 || len(noisy) < 5 {
		t.Fatalf("too few lag samples of the quiet tenant: %d alone, %d beside the held neighbour", len(base), len(noisy))
	}
	base, noisy, lifted = append(base, lag.staleAt(baseTo)), append(noisy, lag.staleAt(noisyTo)), append(lifted, lag.staleAt(liftTo))
	bound := quietBound(pct(base, 99))
	printQuotaTable(t, [3][]time.Duration{base, noisy, lifted}, bound, rate, catchUp, window)
	if p := pct(noisy, 99); p > bound {
		t.Errorf("the quiet tenant's p99 lag beside the held noisy one is %v, above its bound %v (p99 alone %v)", p, bound, pct(base, 99))
	}
	if pct(lifted, 99) <= bound {
		// Measured, not asserted: on this fleet the unlimited backlog
		// (~17,000 row events/s) does not saturate two cores, so the
		// quiet tenant barely suffers even without the quota.
		t.Logf("control: the quiet tenant's p99 lag beside the unlimited backlog, %v, is within the bound %v: this run does not show the quota to matter", pct(lifted, 99), bound)
	}

	// (a) Nothing lost: the noisy tenant catches up and both tenants
	// verify against their truths.
	quietSim.wait(t, 2*phase+2*time.Minute)
	lag.stop()
	for _, c := range []struct {
		tenant uint64
		truth  string
	}{{noisyTenant, noisyTruth}, {quietTenant, quietTruth}} {
		end, _, _ := truthEnd(t, c.truth)
		tn := strconv.FormatUint(c.tenant, 10)
		pulled := filepath.Join(f.dir, "pulled-"+tn+".jsonl")
		run(t, 3*time.Minute, pulled, append([]string{"pull", "--api", f.first("api-server").grpcAddr, "--tenant", tn,
			"--until-resolved", strconv.FormatUint(end, 10), "--timeout", "150s"}, cl.admin...)...)
		run(t, time.Minute, "", "verify", "--truth", c.truth, "--pulled", pulled, "--tenant", tn)
	}
}

// quietBound is what the quiet tenant's p99 lag beside a noisy neighbour
// may be, from its p99 alone: twice it, and never less than it plus two
// seconds. A neighbour held to its quota still shares the machine (two
// shared vCPUs run the fleet, both simulators and the test), so the bound
// allows scheduling noise of the order of the pipeline's own steps (a
// second's file interval, the sorter's flush, the pull's poll), but not
// the growing lag of a tenant queued behind another's backlog.
func quietBound(alone time.Duration) time.Duration {
	return max(2*alone, alone+2*time.Second)
}

// startSim pushes one simulated tenant into the fleet in real time, in the
// background;
// extra flags are added (--realtime=false: a backlog made as fast as it can
// be, its clock ending about now).
func startSim(t *testing.T, f *procFleet, name string, tenant uint64, rows string, d time.Duration, truthPath string, cl clientCreds, extra ...string) *proc {
	args := append(simArgs(f.bufferURL, f.first("meta-server").grpcAddr, truthPath, d.String(), cl.upstream),
		"--first-tenant", strconv.FormatUint(tenant, 10), "--seed", strconv.FormatUint(tenant, 10))
	args = append(args, extra...)
	args[slices.Index(args, "--rows-per-sec")+1] = rows
	return start(t, name, args...)
}

// wait waits for a process to exit by itself and fails the test if it
// failed or did not.
func (p *proc) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("%s did not finish within %v", p.name, timeout)
	}
	if p.err != nil {
		t.Fatalf("%s: %v", p.name, p.err)
	}
}

func waitRegistered(t *testing.T, meta metav1.MetaServiceClient, tenant uint64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := meta.ListTenants(ctx, &metav1.ListTenantsRequest{})
		cancel()
		if err == nil && slices.ContainsFunc(resp.Tenants, func(i *metav1.TenantInfo) bool { return i.TenantId == tenant }) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("tenant %d was not registered within a minute", tenant)
}

// updateQuotas sets a tenant's quotas through the admin API.
func updateQuotas(t *testing.T, meta metav1.MetaServiceClient, tenant uint64, q *metav1.TenantQuotas) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := meta.UpdateTenant(ctx, &metav1.UpdateTenantRequest{TenantId: tenant, Settings: &metav1.TenantSettings{Quotas: q}}); err != nil {
		t.Fatalf("UpdateTenant %d: %v", tenant, err)
	}
}

// pullQuotaCase: with the noisy tenant at max_concurrent_pulls=1, its
// second pull is RESOURCE_EXHAUSTED naming the quota while its first and
// the quiet tenant's pull are served.
func pullQuotaCase(t *testing.T, api apiv1.TiStreamServiceClient, quiet *lagFollower) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var first apiv1.TiStreamService_PullTenantClient
	var err error
	// The api-server learns the quota from etcd a moment after UpdateTenant.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if first == nil {
			if first, err = openPull(ctx, api, noisyTenant); err != nil {
				first = nil
				if time.Now().After(deadline) {
					t.Fatalf("the first pull of the noisy tenant: %v", err)
				}
				continue
			}
		}
		second, err := api.PullTenant(ctx, &apiv1.PullTenantRequest{TenantId: noisyTenant})
		if err == nil {
			_, err = second.Recv()
		}
		if status.Code(err) == codes.ResourceExhausted {
			want := fmt.Sprintf("tenant %d is at its quota of 1 concurrent pulls (max_concurrent_pulls; 1 open", noisyTenant)
			if !strings.Contains(status.Convert(err).Message(), want) {
				t.Fatalf("refusal %q does not say %q", status.Convert(err).Message(), want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a second pull of the noisy tenant at max_concurrent_pulls=1: %v; want RESOURCE_EXHAUSTED", err)
		}
	}
	if _, err := first.Recv(); err != nil {
		t.Fatalf("the noisy tenant's admitted pull: %v", err)
	}
	n := quiet.count()
	for deadline := time.Now().Add(10 * time.Second); quiet.count() == n; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the quiet tenant's pull stopped while the noisy tenant was refused")
		}
	}
}

// openPull opens a tenant pull and waits for its first message.
func openPull(ctx context.Context, api apiv1.TiStreamServiceClient, tenant uint64) (apiv1.TiStreamService_PullTenantClient, error) {
	p, err := api.PullTenant(ctx, &apiv1.PullTenantRequest{TenantId: tenant})
	if err != nil {
		return nil, err
	}
	if _, err := p.Recv(); err != nil {
		return nil, err
	}
	return p, nil
}

// lagFollower is a live pull of a tenant recording, at every resolved
// event, the wall clock minus the resolved ts's physical time.
type lagFollower struct {
	mu       sync.Mutex
	at       []time.Time
	lags     []time.Duration
	resolved []time.Time // the resolved ts's physical time of each sample
	cancel   context.CancelFunc
	done     chan struct{}
	lastErr  error
}

func followLag(t *testing.T, api apiv1.TiStreamServiceClient, tenant uint64) *lagFollower {
	ctx, cancel := context.WithCancel(context.Background())
	l := &lagFollower{cancel: cancel, done: make(chan struct{})}
	t.Cleanup(l.stop)
	go func() {
		defer close(l.done)
		for ctx.Err() == nil {
			p, err := api.PullTenant(ctx, &apiv1.PullTenantRequest{TenantId: tenant})
			for err == nil {
				var m *apiv1.PullTenantResponse
				if m, err = p.Recv(); err == nil {
					now := time.Now()
					for _, ev := range m.Events {
						if r := ev.GetResolved(); r != nil {
							l.mu.Lock()
							l.at, l.lags = append(l.at, now), append(l.lags, now.Sub(time.UnixMilli(int64(r.Ts>>18))))
							l.resolved = append(l.resolved, time.UnixMilli(int64(r.Ts>>18)))
							l.mu.Unlock()
						}
					}
				}
			}
			l.mu.Lock()
			l.lastErr = err
			l.mu.Unlock()
			select { // not there yet (no data), or broken: open again
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return l
}

func (l *lagFollower) stop() {
	l.cancel()
	<-l.done
}

func (l *lagFollower) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lags)
}

// between returns the lags recorded in [from, to).
func (l *lagFollower) between(from, to time.Time) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	for i, at := range l.at {
		if !at.Before(from) && at.Before(to) {
			out = append(out, l.lags[i])
		}
	}
	return out
}

// staleAt is the lag the tenant had at the instant at: at minus the
// newest resolved ts received before it (0 if none was). A pull whose
// resolved marks stop arriving has no samples, but this lag grows.
func (l *lagFollower) staleAt(at time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var newest time.Time
	for i, a := range l.at {
		if a.Before(at) && l.resolved[i].After(newest) {
			newest = l.resolved[i]
		}
	}
	if newest.IsZero() {
		return 0
	}
	return at.Sub(newest)
}

// pct is the p-th percentile (nearest rank) of ds; 0 for none.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

type rateSample struct {
	at time.Time
	n  float64
}

// rateOver is the rate between the first sample at or after from and the
// last before to.
func rateOver(s []rateSample, from, to time.Time) (float64, time.Duration) {
	i := slices.IndexFunc(s, func(x rateSample) bool { return !x.at.Before(from) })
	j := len(s) - 1
	for j >= 0 && !s[j].at.Before(to) {
		j--
	}
	if i < 0 || j <= i {
		return 0, 0
	}
	d := s[j].at.Sub(s[i].at)
	return (s[j].n - s[i].n) / d.Seconds(), d
}

// tenantCounter sums a metric's series of one tenant on a member's
// /metrics.
func tenantCounter(t *testing.T, httpAddr, name string, tenant uint64) float64 {
	label := fmt.Sprintf(`tenant="%d"`, tenant)
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(metrics(t, httpAddr)))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, label) {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}

func printQuotaTable(t *testing.T, lags [3][]time.Duration, bound time.Duration, rate, catchUp float64, window time.Duration) {
	r := func(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
	var b strings.Builder
	fmt.Fprintf(&b, "\n| quiet tenant (%s rows/s) | samples | lag p50 | lag p99 | lag max |\n|---|---|---|---|---|\n", quietRows)
	for i, name := range []string{"alone", fmt.Sprintf("beside the noisy tenant held to %d row events/s", noisyQuota),
		"beside the noisy tenant's backlog, quota lifted (control)"} {
		d := lags[i]
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s |\n", name, len(d), r(pct(d, 50)), r(pct(d, 99)), r(pct(d, 100)))
	}
	fmt.Fprintf(&b, "\nbound on the p99 beside the held neighbour: %s\n", r(bound))
	fmt.Fprintf(&b, "noisy tenant (%s rows/s offered): %.0f row events/s ingested over %s at a quota of %d; %.0f row events/s once lifted\n",
		noisyRows, rate, r(window), noisyQuota, catchUp)
	t.Log(b.String())
}
