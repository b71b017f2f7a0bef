package apiserver

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/tistream/tistream/libs/pool"
)

// Pull kinds, the "kind" label of the pull metrics.
const (
	kindTable  = "table"
	kindDB     = "db"
	kindTenant = "tenant"
)

var pullKinds = []string{kindTable, kindDB, kindTenant}

type metrics struct {
	pullsOpen     *prometheus.GaugeVec
	pullsEnded    *prometheus.CounterVec
	rowsSent      *prometheus.CounterVec
	ddlsSent      *prometheus.CounterVec
	bytesSent     *prometheus.CounterVec
	messagesSent  *prometheus.CounterVec
	resolvedLag   *prometheus.HistogramVec
	registryCalls *prometheus.CounterVec
	refused       *prometheus.CounterVec
	pullWakes     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, s *Service) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		pullsOpen: f.NewGaugeVec(prometheus.GaugeOpts{Name: "tistream_apiserver_pulls_open",
			Help: "Pulls being served, by kind (table, db, tenant)."}, []string{"kind"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_apiserver_refused_total",
			Help: "Pulls refused by a bound: max_pulls, max_pulls_per_tenant, max_pulls_per_client."}, []string{"bound"}),
		pullsEnded: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_apiserver_pulls_ended_total",
			Help: "Pulls that ended, by kind and gRPC code."}, []string{"kind", "code"}),
		rowsSent: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_apiserver_rows_sent_total",
			Help: "Row events sent, by pull kind."}, []string{"kind"}),
		ddlsSent: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_apiserver_ddls_sent_total",
			Help: "DDL events sent, by pull kind."}, []string{"kind"}),
		bytesSent: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_apiserver_sent_bytes_total",
			Help: "Bytes of response messages sent, by pull kind."}, []string{"kind"}),
		messagesSent: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_apiserver_messages_sent_total",
			Help: "Response messages sent, by pull kind."}, []string{"kind"}),
		resolvedLag: f.NewHistogramVec(prometheus.HistogramOpts{Name: "tistream_apiserver_resolved_lag_seconds",
			Help:    "Now minus the physical time of each resolved ts sent, by pull kind.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600}}, []string{"kind"}),
		registryCalls: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_apiserver_registry_calls_total",
			Help: "Calls to the schema registry, by method and gRPC code."}, []string{"method", "code"}),
		pullWakes: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_apiserver_pull_wakes_total",
			Help: "Caught-up pulls woken to read the pool again, by cause: notice (a sorter's publication notice) or poll (the poll interval passed)."}, []string{"cause"}),
	}
	for _, k := range pullKinds {
		f.NewGaugeFunc(prometheus.GaugeOpts{Name: "tistream_apiserver_resolved_lag_max_seconds",
			Help:        "Largest lag (now minus the physical time of the last resolved ts sent) among the open pulls of a kind.",
			ConstLabels: prometheus.Labels{"kind": k}}, func() float64 { return s.maxLag(k).Seconds() })
	}
	stat := func(pick func(pool.CacheStats) float64) func() float64 {
		return func() float64 { return pick(s.cache.Stats()) }
	}
	f.NewCounterFunc(prometheus.CounterOpts{Name: "tistream_apiserver_cache_hits_total",
		Help: "Pool objects served by the shared cache without a read of their own."},
		stat(func(c pool.CacheStats) float64 { return float64(c.Hits) }))
	f.NewCounterFunc(prometheus.CounterOpts{Name: "tistream_apiserver_cache_misses_total",
		Help: "Pool objects the shared cache had to read."},
		stat(func(c pool.CacheStats) float64 { return float64(c.Misses) }))
	f.NewCounterFunc(prometheus.CounterOpts{Name: "tistream_apiserver_cache_evictions_total",
		Help: "Pool objects evicted from the shared cache."},
		stat(func(c pool.CacheStats) float64 { return float64(c.Evictions) }))
	f.NewCounterFunc(prometheus.CounterOpts{Name: "tistream_apiserver_cache_read_buffers_reused_total",
		Help: "Sections read into a buffer a finished pull gave back instead of a new allocation."},
		stat(func(c pool.CacheStats) float64 { return float64(c.ReadBuffersReused) }))
	f.NewCounterFunc(prometheus.CounterOpts{Name: "tistream_apiserver_cache_row_slices_reused_total",
		Help: "Row slices (rows decoded from a section, or a pull's rows) taken from those finished pulls gave back instead of new allocations."},
		stat(func(c pool.CacheStats) float64 { return float64(c.RowSlicesReused) }))
	f.NewCounterFunc(prometheus.CounterOpts{Name: "tistream_apiserver_pool_probes_skipped_total",
		Help: "Polls for a group's next publication answered \"not yet\" from the publication notices, without a GET (the seq is above the newest announced)."},
		func() float64 { return float64(s.heads.Skipped()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "tistream_apiserver_cache_bytes",
		Help: "Estimated bytes held by the shared cache."},
		stat(func(c pool.CacheStats) float64 { return float64(c.Bytes) }))
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "tistream_apiserver_cache_objects",
		Help: "Objects held by the shared cache."},
		stat(func(c pool.CacheStats) float64 { return float64(c.Objects) }))
	return m
}
