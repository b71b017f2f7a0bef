package mysqlsink

import (
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	rows       *prometheus.CounterVec
	txns       prometheus.Counter
	ddls       *prometheus.CounterVec
	flushes    prometheus.Counter
	syncpoints prometheus.Counter
	checkpoint prometheus.Gauge
	lag        prometheus.Gauge
	applyLag   prometheus.Histogram
	reconnects prometheus.Gauge
	skipped    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		rows: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sink_rows_total",
			Help: "Row changes applied downstream, by operation."}, []string{"op"}),
		txns: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sink_txns_total",
			Help: "Upstream transactions applied downstream."}),
		ddls: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sink_ddls_total",
			Help: "DDL events applied (or, when nothing had to change downstream, passed), by kind."}, []string{"kind"}),
		flushes: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sink_flushes_total",
			Help: "Downstream transactions committed with a checkpoint."}),
		syncpoints: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sink_syncpoints_total",
			Help: "Syncpoints written."}),
		checkpoint: f.NewGauge(prometheus.GaugeOpts{Name: "tistream_sink_checkpoint_ts",
			Help: "The last resolved ts fully applied downstream."}),
		lag: f.NewGauge(prometheus.GaugeOpts{Name: "tistream_sink_checkpoint_lag_seconds",
			Help: "Wall-clock time minus the checkpoint's physical time, when it was written."}),
		applyLag: f.NewHistogram(prometheus.HistogramOpts{Name: "tistream_sink_apply_lag_seconds",
			Help:    "From an upstream transaction's commit (its commit ts) to its commit downstream.",
			Buckets: prometheus.ExponentialBucketsRange(0.05, 120, 40)}),
		reconnects: f.NewGauge(prometheus.GaugeOpts{Name: "tistream_sink_stream_reconnects",
			Help: "How often the pull was reconnected."}),
		skipped: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sink_rows_skipped_total",
			Help: "Row changes passed, by reason: system (a table of TiDB's system databases, not replicated), dropped (a table that no longer exists: TiDB deleting a dropped table's rows where the store has no delete-range)."},
			[]string{"reason"}),
	}
}

// progress prints a line on stderr now and then: rows and transactions
// per second since the last line, and the checkpoint's lag.
type progress struct {
	last       time.Time
	rows, txns int64
	total      int64
}

func (p *progress) start(uint64) { p.last = time.Now() }

func (p *progress) add(rows, txns int) {
	p.rows += int64(rows)
	p.txns += int64(txns)
	p.total += int64(rows)
}

func (p *progress) maybePrint(w io.Writer, every time.Duration, resolved uint64) {
	if every <= 0 || w == nil {
		return
	}
	now := time.Now()
	d := now.Sub(p.last)
	if d < every {
		return
	}
	lag := now.Sub(time.UnixMilli(physicalMs(resolved)))
	fmt.Fprintf(w, "tistream sink: %d rows applied; %.0f rows/s, %.0f txns/s; checkpoint %d (lag %s)\n",
		p.total, float64(p.rows)/d.Seconds(), float64(p.txns)/d.Seconds(), resolved, lag.Round(time.Millisecond))
	p.last, p.rows, p.txns = now, 0, 0
}
