package schemaregistry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	tenants          prometheus.Gauge
	resolvedLag      *prometheus.GaugeVec
	changes          prometheus.Counter
	persistSeconds   prometheus.Histogram
	persistBytes     prometheus.Histogram
	persistErrors    prometheus.Counter
	restores         *prometheus.CounterVec
	restoreFallbacks prometheus.Counter
	followErrors     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Service) *metrics {
	f := promauto.With(reg)
	const ns, sub = "tistream", "schema_registry"
	f.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "pool_probes_skipped_total",
		Help: "Polls for a group's next publication answered \"not yet\" from the publication notices, without a GET (the seq is above the newest announced)."},
		func() float64 { return float64(s.heads.Skipped()) })
	return &metrics{
		tenants: f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "tenants",
			Help: "Tenants the registry follows."}),
		resolvedLag: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "resolved_lag_seconds",
			Help: "Wall-clock time minus the TSO physical time of the tenant's resolved ts."}, []string{"tenant"}),
		changes: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "changes_applied_total",
			Help: "Schema changes (per database or table) applied to the histories."}),
		persistSeconds: f.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "persist_duration_seconds",
			Help: "Time to encode and write one tenant's history.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}),
		persistBytes: f.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "persist_bytes",
			Help: "Size of a persisted history file.", Buckets: prometheus.ExponentialBuckets(1024, 4, 10)}),
		persistErrors: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "persist_errors_total",
			Help: "Failed writes (or clean-ups) of persisted histories."}),
		restores: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "restores_total",
			Help: "Tenant histories loaded, by source (persisted or snapshot)."}, []string{"source"}),
		restoreFallbacks: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "restore_fallbacks_total",
			Help: "Persisted histories skipped at restore (corrupt or inconsistent with the pool)."}),
		followErrors: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "follow_errors_total",
			Help: "Tenant followers that failed and restarted."}),
	}
}
