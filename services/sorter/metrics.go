package sorter

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics of one sorter. RPC counts and latencies come from grpcx.
type metrics struct {
	ranges       prometheus.Gauge       // ranges held and taken
	takes        *prometheus.CounterVec // result
	batches      *prometheus.CounterVec // result
	rows         prometheus.Counter
	flushes      prometheus.Counter
	rowsFlushed  prometheus.Counter
	snapshots    prometheus.Counter
	durable      prometheus.Counter
	leaseLosses  prometheus.Counter
	ingestStream prometheus.Gauge
	seals        *prometheus.CounterVec // op, result
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		ranges: f.NewGauge(prometheus.GaugeOpts{Name: "tistream_sorter_ranges",
			Help: "Ranges this sorter has taken and accepts batches for."}),
		takes: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sorter_range_takes_total",
			Help: "Range take attempts by result (created, restored, fenced, sealed, error)."}, []string{"result"}),
		batches: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sorter_batches_total",
			Help: "Range batches received by result (applied, duplicate, not_owner, error)."}, []string{"result"}),
		rows: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_events_total",
			Help: "Events of applied range batches."}),
		flushes: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_flushes_total",
			Help: "Flushes that published a new watermark to the pool."}),
		rowsFlushed: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_rows_flushed_total",
			Help: "Committed rows published to the pool."}),
		snapshots: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_snapshots_total",
			Help: "Range snapshots written."}),
		durable: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_durable_acks_total",
			Help: "Durable acknowledgements sent to dispatchers."}),
		leaseLosses: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_lease_losses_total",
			Help: "Times the worker lease was lost (every range dropped, registered again)."}),
		ingestStream: f.NewGauge(prometheus.GaugeOpts{Name: "tistream_sorter_ingest_streams",
			Help: "Open Ingest streams."}),
		seals: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sorter_seals_total",
			Help: "Split and merge attempts of sealing ranges by op (split, merge) and result (done, not_ready, error)."},
			[]string{"op", "result"}),
	}
}
