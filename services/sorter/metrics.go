package sorter

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tistream/tistream/libs/offheap"
	"github.com/tistream/tistream/libs/sortbuf"
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
	snapSkipped  prometheus.Counter
	snapUnacked  *prometheus.CounterVec // reason
	snapDeleted  *prometheus.CounterVec
	durable      prometheus.Counter
	leaseLosses  prometheus.Counter
	ingestStream prometheus.Gauge
	seals        *prometheus.CounterVec // op, result
	blocked      *prometheus.GaugeVec   // tenant, range, store, reason
	wmIgnored    *prometheus.CounterVec // kind
	provenDups   prometheus.Counter
	stalled      *prometheus.GaugeVec   // tenant, range, cause
	stalls       *prometheus.CounterVec // cause
	workers      prometheus.Gauge
	writeStalls  prometheus.Counter
	writeStalled prometheus.Counter
	// buffers is the memory-first store the memory gauges read, once open.
	buffers atomic.Pointer[sortbuf.MemoryFirst]
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		ranges: f.NewGauge(prometheus.GaugeOpts{Name: "tistream_sorter_ranges",
			Help: "Ranges this sorter has taken and accepts batches for."}),
		takes: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sorter_range_takes_total",
			Help: "Range take attempts by result (created, restored, fenced, sealed, error)."}, []string{"result"}),
		batches: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sorter_batches_total",
			Help: "Range batches received by result (applied, duplicate, not_owner, late_commit, gap, error); late_commit and gap refusals also count as not_owner."}, []string{"result"}),
		rows: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_events_total",
			Help: "Events of applied range batches."}),
		flushes: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_flushes_total",
			Help: "Flushes that published a new watermark to the pool."}),
		rowsFlushed: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_rows_flushed_total",
			Help: "Committed rows published to the pool."}),
		snapshots: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_snapshots_total",
			Help: "Range snapshots written."}),
		snapSkipped: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_snapshots_skipped_total",
			Help: "Range snapshots not written: the range applied batches but its rows, matcher and spilled prewrites were unchanged since its last snapshot (bounded by --snapshot-max-skip-files)."}),
		snapUnacked: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sorter_snapshots_unacknowledged_total",
			Help: "Range snapshots written but not acknowledged to the dispatchers, by reason (taken: a newer owner took the range first; error: the check could not read the range's log, retried at the next snapshot)."},
			[]string{"reason"}),
		snapDeleted: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sorter_snapshots_deleted_total",
			Help: "Older snapshots of live ranges deleted once newer ones were written (the newest 2 of each range stay), by result (deleted, error: retried after the next snapshot)."},
			[]string{"result"}),
		durable: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_durable_acks_total",
			Help: "Durable acknowledgements sent to dispatchers."}),
		leaseLosses: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_lease_losses_total",
			Help: "Times the worker lease was lost (every range dropped, registered again)."}),
		ingestStream: f.NewGauge(prometheus.GaugeOpts{Name: "tistream_sorter_ingest_streams",
			Help: "Open Ingest streams."}),
		writeStalls: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_write_stalls_total",
			Help: "Ingest requests that waited for a publish round because the buffered rows in memory passed --write-stall-bytes."}),
		writeStalled: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_write_stall_seconds_total",
			Help: "Time ingest requests waited for publish rounds (write stalls; each at most 1 s)."}),
		seals: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sorter_seals_total",
			Help: "Split and merge attempts of sealing ranges by op (split, merge) and result (done, not_ready, error)."},
			[]string{"op", "result"}),
		blocked: f.NewGaugeVec(prometheus.GaugeOpts{Name: "tistream_sorter_stream_blocked",
			Help: "1 while a range refuses a store's batches it must not apply (reason late_commit: a commit at or below the published watermark); see docs/bad-input.md."},
			[]string{"tenant", "range", "store", "reason"}),
		provenDups: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_duplicate_commits_dropped_total",
			Help: "Commits below a range's published watermark found already published in the pool (re-uploads, e.g. a new leader re-writing a crashed leader's events), dropped."}),
		wmIgnored: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sorter_watermark_ignored_total",
			Help: "Region records the watermark maps ignored or held, by kind (regressed: a resolved ts below the incarnation's latest; stale_start: a START older than the incarnations owning its keys; duplicate_start, duplicate_end, unknown_incarnation, after_end, bad_start; foreign_end, foreign_resolved: from a store that does not lead the incarnation; takeover_wait: a takeover END waiting for the crashed leader's stream; early_end: an END kept until its START; unled: incarnations a store's full leader list left out, after its restart). Re-deliveries count too."},
			[]string{"kind"}),
		stalled: f.NewGaugeVec(prometheus.GaugeOpts{Name: "tistream_sorter_watermark_stalled_seconds",
			Help: "How long a range's published watermark has not moved while its stores' files kept arriving (set once past --stall-after), by cause: pending-commit (a commit waits for its prewrite), takeover-wait, foreign-end, unknown-predecessor, end-not-read, start-not-read, hole, upstream. See docs/fault-tolerance.md."},
			[]string{"tenant", "range", "cause"}),
		stalls: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sorter_watermark_stalls_total",
			Help: "Ranges found stalled (watermark not moving past --stall-after while input arrives), by cause."},
			[]string{"cause"}),
		workers: f.NewGauge(prometheus.GaugeOpts{Name: "tistream_sorter_workers",
			Help: "Workers driving the ranges: applying the batches of a request and staging and committing flushes, each range's in order (--workers)."}),
	}
	memory := func(state string, read func(used, cached, budget int64) int64) {
		f.NewGaugeFunc(prometheus.GaugeOpts{Name: "tistream_sorter_buffer_memory_bytes",
			Help:        "The memory-first buffer by state: used (rows in memory: arena chunks and row index), cached (free chunks and indexes kept for reuse) and budget (--buffer-memory; past it the largest ranges spill to Pebble).",
			ConstLabels: prometheus.Labels{"state": state}},
			func() float64 {
				if b := m.buffers.Load(); b != nil {
					return float64(read(b.Bytes()))
				}
				return 0
			})
	}
	memory("used", func(used, _, _ int64) int64 { return used })
	memory("cached", func(_, cached, _ int64) int64 { return cached })
	memory("budget", func(_, _, budget int64) int64 { return budget })
	arena := func(state string, read func(offheap.Stats) int64) {
		f.NewGaugeFunc(prometheus.GaugeOpts{Name: "tistream_sorter_arena_bytes",
			Help:        "The process's arena outside the Go heap that holds the rows in memory, by state: in_use (chunks of rows, and free ones kept for reuse), resident (2 MiB pages touched and not returned to the kernel) and mapped (address space).",
			ConstLabels: prometheus.Labels{"state": state}},
			func() float64 { return float64(read(sortbuf.ArenaStats())) })
	}
	arena("in_use", func(s offheap.Stats) int64 { return s.InUse })
	arena("resident", func(s offheap.Stats) int64 { return s.Resident })
	arena("mapped", func(s offheap.Stats) int64 { return s.Mapped })
	return m
}
