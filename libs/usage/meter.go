package usage

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tistream/tistream/libs/layout"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Request kinds as billed (the "kind" label of
// tistream_tenant_usage_requests_total).
const (
	RequestPut    = "put"
	RequestGet    = "get"
	RequestList   = "list"
	RequestDelete = "delete"
)

// DefaultMaxTenantLabels is the default bound of a process's tenant labels.
const DefaultMaxTenantLabels = 1000

// slot is what a Meter counts for one tenant in one hour.
type slot struct {
	tenant uint64
	hourMs int64
}

// Meter counts one process's usage per (tenant, hour) until a Flusher
// takes it, and exports it as Prometheus counters. Safe for concurrent
// use; a nil *Meter counts nothing.
type Meter struct {
	now   func() time.Time
	guard *LabelGuard

	mu      sync.Mutex
	pending map[slot]*metav1.UsageCounts
	pulls   map[*pullSession]struct{}

	requests    *prometheus.CounterVec // tenant, kind
	servedRows  *prometheus.CounterVec // tenant
	servedBytes *prometheus.CounterVec // tenant
	pullSeconds *prometheus.CounterVec // tenant
}

// MeterOptions configure a Meter.
type MeterOptions struct {
	// MaxTenantLabels bounds the tenant label values (DefaultMaxTenantLabels
	// when 0; < 0 unbounded).
	MaxTenantLabels int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// NewMeter registers the tenant usage counters with reg.
func NewMeter(reg prometheus.Registerer, o MeterOptions) *Meter {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxTenantLabels == 0 {
		o.MaxTenantLabels = DefaultMaxTenantLabels
	}
	f := promauto.With(reg)
	return &Meter{now: o.Now, guard: NewLabelGuard(o.MaxTenantLabels),
		pending: map[slot]*metav1.UsageCounts{}, pulls: map[*pullSession]struct{}{},
		requests: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_tenant_usage_requests_total",
			Help: "Object-store requests this process made on a tenant's behalf, by kind as billed (put, get, list, delete), every outcome. Tenants past the label bound are \"other\"."}, []string{"tenant", "kind"}),
		servedRows: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_tenant_usage_served_rows_total",
			Help: "Row changes sent to a tenant's pullers."}, []string{"tenant"}),
		servedBytes: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_tenant_usage_served_bytes_total",
			Help: "Bytes of the pull response messages sent to a tenant's pullers."}, []string{"tenant"}),
		pullSeconds: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_tenant_usage_pull_seconds_total",
			Help: "Seconds a tenant's pulls were open (accrued at every flush and when a pull ends)."}, []string{"tenant"}),
	}
}

// TenantLabel is the guarded label value of a tenant given in decimal: the
// same bound serves the metered package's tenant label (metered.WithTenantLabel).
func (m *Meter) TenantLabel(tenant string) string { return m.guard.Label(tenant) }

// countsLocked returns the pending counts of tenant in the current hour. m.mu held.
func (m *Meter) countsLocked(tenant uint64, now time.Time) *metav1.UsageCounts {
	k := slot{tenant, Hour(now)}
	c := m.pending[k]
	if c == nil {
		c = &metav1.UsageCounts{}
		m.pending[k] = c
	}
	return c
}

// Request counts one object-store request (metered.Tap): purpose and
// tenant as layout.Labels names them, kind as the metered package does.
// Requests that name no tenant, and the usage records' own, are not a
// tenant's.
func (m *Meter) Request(purpose, tenant, kind string) {
	if m == nil || tenant == "" || purpose == string(layout.PurposePoolUsage) {
		return
	}
	id, err := strconv.ParseUint(tenant, 10, 64)
	if err != nil {
		return
	}
	billed := billedKind(kind)
	if billed == "" {
		return
	}
	m.mu.Lock()
	c := m.countsLocked(id, m.now())
	switch billed {
	case RequestPut:
		c.PutRequests++
	case RequestGet:
		c.GetRequests++
	case RequestList:
		c.ListRequests++
	case RequestDelete:
		c.DeleteRequests++
	}
	m.mu.Unlock()
	m.requests.WithLabelValues(m.guard.Label(tenant), billed).Inc()
}

// billedKind maps the metered package's request kinds to the billed ones.
func billedKind(kind string) string {
	switch kind {
	case "put", "put_if_absent":
		return RequestPut
	case "get", "get_range":
		return RequestGet
	case "list":
		return RequestList
	case "delete":
		return RequestDelete
	}
	return ""
}

// Served counts rows and bytes sent to a puller of tenant.
func (m *Meter) Served(tenant uint64, rows, bytes int) {
	if m == nil || (rows == 0 && bytes == 0) {
		return
	}
	m.mu.Lock()
	c := m.countsLocked(tenant, m.now())
	c.ServedRows += uint64(rows)
	c.ServedBytes += uint64(bytes)
	m.mu.Unlock()
	label := m.guard.LabelOf(tenant)
	m.servedRows.WithLabelValues(label).Add(float64(rows))
	m.servedBytes.WithLabelValues(label).Add(float64(bytes))
}

// pullSession is an open pull: its time is accrued up to accrued.
type pullSession struct {
	tenant  uint64
	accrued time.Time
}

// PullStarted starts counting a pull's open time; call the returned
// function once when it ends. The time is accrued to the hour it passes
// in, at every flush (take) and at the end.
func (m *Meter) PullStarted(tenant uint64) (done func()) {
	if m == nil {
		return func() {}
	}
	p := &pullSession{tenant: tenant, accrued: m.now()}
	m.mu.Lock()
	m.pulls[p] = struct{}{}
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			m.accrueLocked(p, m.now())
			delete(m.pulls, p)
			m.mu.Unlock()
		})
	}
}

// accrueLocked adds p's open time since it was last accrued, split at hour
// boundaries. m.mu held.
func (m *Meter) accrueLocked(p *pullSession, now time.Time) {
	for p.accrued.Before(now) {
		end := p.accrued.UTC().Truncate(time.Hour).Add(time.Hour)
		if now.Before(end) {
			end = now
		}
		ms := end.Sub(p.accrued).Milliseconds()
		if ms <= 0 {
			break // under a millisecond: left for the next accrual
		}
		// Accrue whole milliseconds only, so no time is lost to rounding.
		end = p.accrued.Add(time.Duration(ms) * time.Millisecond)
		m.countsLocked(p.tenant, p.accrued).PullMillis += uint64(ms)
		m.pullSeconds.WithLabelValues(m.guard.LabelOf(p.tenant)).Add(float64(ms) / 1000)
		p.accrued = end
	}
}

// take accrues the open pulls and returns what was counted since the last
// take, by (tenant, hour).
func (m *Meter) take() map[slot]*metav1.UsageCounts {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for p := range m.pulls {
		m.accrueLocked(p, now)
	}
	out := m.pending
	m.pending = map[slot]*metav1.UsageCounts{}
	return out
}
