package apiserver

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tistream/tistream/libs/ratelimit"
	"github.com/tistream/tistream/libs/tenantcfg"
	"github.com/tistream/tistream/libs/usage"
)

// The tenants' pull quotas (docs/tenants.md, "Quotas"): max_concurrent_pulls
// and pull_bytes_per_sec, both per api-server instance. Each is read from
// the tenant's effective settings at every use, so a change through
// UpdateTenant applies to the next pull and the next response message.

// quotaLabelTenants bounds the tenant label values of the quota metrics.
const quotaLabelTenants = 1000

// pullQuotas enforces the tenants' pull quotas of one api-server.
type pullQuotas struct {
	tenants *tenantcfg.Watcher
	run     bool // the service runs the watcher (it built it)
	bw      *ratelimit.Set
	labels  *usage.LabelGuard
	wait    *prometheus.CounterVec
	refused *prometheus.CounterVec // the service's, by bound
}

// newPullQuotas reads the tenants' settings from deps.Tenants, else from a
// watcher of their records in deps.Etcd with the configured fleet defaults.
func newPullQuotas(cfg Config, deps Deps, log *slog.Logger, m *metrics) *pullQuotas {
	// The buckets keep real time: they pace real sends.
	q := &pullQuotas{tenants: deps.Tenants, bw: ratelimit.NewSet(nil), labels: usage.NewLabelGuard(quotaLabelTenants), refused: m.refused,
		wait: promauto.With(deps.Registry).NewCounterVec(prometheus.CounterOpts{Name: "tistream_apiserver_quota_wait_seconds_total",
			Help: "Time pulls waited before sending a response message, held to their tenant's pull_bytes_per_sec quota, by tenant."}, []string{"tenant"})}
	if q.tenants == nil { // without etcd: the fleet defaults for every tenant
		q.tenants, q.run = tenantcfg.NewWatcher(deps.Etcd, cfg.TenantDefaults, log), true
	}
	return q
}

// start follows the tenants' settings until ctx ends (when the service
// built the watcher).
func (q *pullQuotas) start(ctx context.Context) {
	if q.run {
		go q.tenants.Run(ctx)
	}
}

// admitPull refuses a pull of a tenant that has open pulls at its
// max_concurrent_pulls quota. The caller holds the service's lock and
// counts the open pulls.
func (q *pullQuotas) admitPull(tenant uint64, open int) error {
	limit := q.tenants.Settings(tenant).Quotas.MaxConcurrentPulls
	if limit == 0 || open < int(limit) {
		return nil
	}
	q.refused.WithLabelValues("max_concurrent_pulls").Inc()
	return status.Errorf(codes.ResourceExhausted,
		"tenant %d is at its quota of %d concurrent pulls (max_concurrent_pulls; %d open on this api-server): close a pull or raise the quota", tenant, limit, open)
}

// throttle returns send held to the tenant's pull_bytes_per_sec quota: a
// message is sent as soon as it is ready, and the bytes it took are paid
// for before the next one goes, so messages are delayed, never dropped or
// reordered, and the long-run rate stays within the quota.
func (q *pullQuotas) throttle(ctx context.Context, tenant uint64, send sendFunc) sendFunc {
	label := q.labels.LabelOf(tenant)
	return func(m *response) (int, error) {
		n, err := send(m)
		if err != nil || n <= 0 {
			return n, err
		}
		rate := q.tenants.Settings(tenant).Quotas.PullBytesPerSec
		if rate == 0 {
			return n, nil
		}
		d := q.bw.Get(tenant, rate).Reserve(uint64(n))
		if d > 0 {
			start := time.Now()
			werr := ratelimit.Wait(ctx, d)
			q.wait.WithLabelValues(label).Add(time.Since(start).Seconds())
			if werr != nil {
				return n, werr
			}
		}
		return n, nil
	}
}
