package dispatcher

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tistream/tistream/libs/ratelimit"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/tenantcfg"
)

// The tenants' ingest quotas (docs/tenants.md, "Quotas"): ingest_rows_per_sec
// (row events) and ingest_bytes_per_sec (store change file bytes), per
// dispatcher instance. Before a store file's batches are sent, its rows and
// bytes are taken from the tenant's buckets, shared by every stream of the
// tenant in this process; over the quota the stream waits. Nothing is
// dropped: the file is sent after the wait, the checkpoint advances slower
// and the upstream's files wait in the data change buffer. The quota is
// read from the tenant's effective settings at every file, so a change
// through UpdateTenant applies at the next file.

// quotaLogEvery bounds the "held back" log lines: one per tenant this often.
const quotaLogEvery = 10 * time.Second

// ingestQuotas enforces the tenants' ingest quotas of one dispatcher.
type ingestQuotas struct {
	tenants     *tenantcfg.Watcher
	run         bool // the service runs the watcher (it built it)
	rows, bytes *ratelimit.Set
	wait        *prometheus.CounterVec
	log         *slog.Logger

	mu     sync.Mutex
	logged map[uint64]time.Time // last "held back" line per tenant
}

// newIngestQuotas reads the tenants' settings from deps.Tenants, else from
// a watcher of their records in deps.Etcd with the configured fleet
// defaults.
func newIngestQuotas(cfg Config, deps Deps, log *slog.Logger, reg prometheus.Registerer) *ingestQuotas {
	q := &ingestQuotas{tenants: deps.Tenants, rows: ratelimit.NewSet(nil), bytes: ratelimit.NewSet(nil), log: log,
		logged: map[uint64]time.Time{},
		wait: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{Name: "tistream_dispatcher_quota_wait_seconds_total",
			Help: "Time streams waited before sending a store file, held to their tenant's ingest quota (ingest_rows_per_sec, ingest_bytes_per_sec), by tenant."},
			[]string{"tenant"})}
	if q.tenants == nil {
		q.tenants, q.run = tenantcfg.NewWatcher(deps.Etcd, cfg.TenantDefaults, log), true
	}
	return q
}

// start follows the tenants' settings until ctx ends (when the service
// built the watcher).
func (q *ingestQuotas) start(ctx context.Context) {
	if q.run {
		go q.tenants.Run(ctx)
	}
}

// reserve takes a file's rows and bytes from its tenant's buckets and
// returns how long the stream must wait before sending it, and a function
// giving them back (the file was not sent).
func (q *ingestQuotas) reserve(tenant, rows, bytes uint64) (time.Duration, func()) {
	quota := q.tenants.Settings(tenant).Quotas
	rb, bb := q.rows.Get(tenant, quota.IngestRowsPerSec), q.bytes.Get(tenant, quota.IngestBytesPerSec)
	d := max(rb.Reserve(rows), bb.Reserve(bytes))
	if d > 0 {
		q.heldBack(tenant, quota, d)
	}
	return d, func() { rb.Cancel(rows); bb.Cancel(bytes) }
}

// heldBack logs, at most every quotaLogEvery per tenant, that a tenant is
// being held to its ingest quota.
func (q *ingestQuotas) heldBack(tenant uint64, quota tenantcfg.Quotas, d time.Duration) {
	now := time.Now()
	q.mu.Lock()
	last, ok := q.logged[tenant]
	if ok && now.Sub(last) < quotaLogEvery {
		q.mu.Unlock()
		return
	}
	q.logged[tenant] = now
	q.mu.Unlock()
	q.log.Warn("tenant held back by its ingest quota; its streams wait, nothing is dropped", "tenant", tenant,
		"ingest_rows_per_sec", quota.IngestRowsPerSec, "ingest_bytes_per_sec", quota.IngestBytesPerSec, "wait", d)
}

// fileRows counts the row events of a routed file.
func fileRows(batches map[uint64]*route.Batch) uint64 {
	var rows uint64
	for _, b := range batches {
		for i := range b.Events {
			if b.Events[i].Kind == route.KindRow {
				rows++
			}
		}
	}
	return rows
}

// takeQuota waits, before a file is sent, until its tenant's ingest quota
// allows its rows and bytes. It returns a reason and error when the run
// ends meanwhile; a drain stops the wait (the file is not sent, its quota
// is given back) and finishes as waitSpace does.
func (st *stream) takeQuota(r *runState, rows uint64, size int) (string, error) {
	q := st.s.quota
	d, giveBack := q.reserve(st.tenant, rows, uint64(size))
	if d <= 0 {
		return "", nil
	}
	began := time.Now()
	defer func() { q.wait.WithLabelValues(strconv.FormatUint(st.tenant, 10)).Add(time.Since(began).Seconds()) }()
	for deadline := began.Add(d); ; {
		left := time.Until(deadline)
		if left <= 0 {
			return "", nil
		}
		timer := time.NewTimer(left)
		reason, err := st.await(r, nil, st.drain, timer.C)
		timer.Stop()
		if err != nil {
			giveBack()
			return reason, err
		}
		if st.draining() {
			giveBack()
			return st.waitSpace(r)
		}
	}
}
