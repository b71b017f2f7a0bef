package dispatcher

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the dispatcher's Prometheus metrics. Per-stream series are
// labelled tenant and store and deleted when the stream stops here.
type metrics struct {
	streamsOwned  prometheus.Gauge
	leaseLost     prometheus.Counter
	sendSeconds   prometheus.Histogram
	filesRead     *prometheus.CounterVec
	fileReads     *prometheus.CounterVec
	rechecks      *prometheus.CounterVec
	bytesRead     *prometheus.CounterVec
	rowsRead      *prometheus.CounterVec
	decodeErrors  *prometheus.CounterVec
	inFlight      *prometheus.GaugeVec
	checkpointSeq *prometheus.GaugeVec
	checkpointLag *prometheus.GaugeVec
	restarts      *prometheus.CounterVec
	rereads       *prometheus.HistogramVec
	sealedWaits   *prometheus.CounterVec
	filesDeleted  *prometheus.CounterVec
	ckptFailures  *prometheus.CounterVec
	blocked       *prometheus.GaugeVec
	duplicates    *prometheus.CounterVec
	replayHits    *prometheus.CounterVec
	replayBytes   prometheus.Gauge
	skippedSends  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	stream := []string{"tenant", "store"}
	return &metrics{
		streamsOwned: f.NewGauge(prometheus.GaugeOpts{Name: "tistream_dispatcher_streams_owned",
			Help: "Streams this dispatcher runs."}),
		leaseLost: f.NewCounter(prometheus.CounterOpts{Name: "tistream_dispatcher_lease_lost_total",
			Help: "Times the worker lease was lost (every stream stopped, worker re-registered)."}),
		sendSeconds: f.NewHistogram(prometheus.HistogramOpts{Name: "tistream_dispatcher_send_seconds",
			Help:    "Time from queueing an IngestRequest to the end of its Send (includes backpressure).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}),
		filesRead: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_dispatcher_files_read_total",
			Help: "Store change files read and routed (resends included)."}, stream),
		fileReads: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_dispatcher_store_file_reads_total",
			Help: "Store change files read and routed, by how their bytes were found: notified (one GET of the notified key), listed (a LIST of the seq, then a GET), fallback (the notified key was not found: GET, LIST, GET), replay (the replay cache, no request)."},
			append(stream, "how")),
		rechecks: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_dispatcher_notified_rechecks_total",
			Help: "Store files already read whose seq a later notification named with another max_ts, listed again for a second object under the seq (docs/bad-input.md)."}, stream),
		bytesRead: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_dispatcher_bytes_read_total",
			Help: "Bytes of store change files read."}, stream),
		rowsRead: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_dispatcher_rows_read_total",
			Help: "Row events routed."}, stream),
		decodeErrors: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_dispatcher_decode_errors_total",
			Help: "Store change files that failed to decode or route (the stream stops and retries)."}, stream),
		inFlight: f.NewGaugeVec(prometheus.GaugeOpts{Name: "tistream_dispatcher_inflight_files",
			Help: "Files sent (or being sent) and not yet durable in every range they fed."}, stream),
		checkpointSeq: f.NewGaugeVec(prometheus.GaugeOpts{Name: "tistream_dispatcher_checkpoint_seq",
			Help: "Last checkpoint written to etcd."}, stream),
		checkpointLag: f.NewGaugeVec(prometheus.GaugeOpts{Name: "tistream_dispatcher_checkpoint_lag_seconds",
			Help: "Wall clock minus the physical time of the checkpoint's max_ts."}, stream),
		restarts: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_dispatcher_stream_restarts_total",
			Help: "Stream restarts from the checkpoint, by reason."}, append(stream, "reason")),
		rereads: f.NewHistogramVec(prometheus.HistogramOpts{Name: "tistream_dispatcher_restart_reread_files",
			Help:    "Per stream restart, by reason: the files the run had read past the checkpoint, which the next run routes and sends again (reading from the buffer those not in the replay cache).",
			Buckets: []float64{0, 1, 2, 4, 8, 16, 32, 64, 128}}, []string{"reason"}),
		sealedWaits: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_dispatcher_sealed_refusals_total",
			Help: "Refusals by a SEALING range (a split's or merge's parent) that did not restart the stream: it waits for the routing to name the successors."}, stream),
		filesDeleted: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_dispatcher_files_deleted_total",
			Help: "Buffer files deleted behind the checkpoint."}, stream),
		ckptFailures: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_dispatcher_checkpoint_write_failures_total",
			Help: "Checkpoint writes that failed (fenced or etcd error)."}, stream),
		blocked: f.NewGaugeVec(prometheus.GaugeOpts{Name: "tistream_dispatcher_stream_blocked",
			Help: "1 while a stream is stopped at a store file it will not pass (bad file, sequence gap, repeated refusal), by reason; see docs/bad-input.md."},
			append(stream, "reason")),
		duplicates: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_dispatcher_duplicate_files_skipped_total",
			Help: "Objects skipped because they hold the same bytes as the store file of their seq under another name."}, stream),
		replayHits: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_dispatcher_replay_cache_files_total",
			Help: "Store files a restarted run routed again from the replay cache instead of reading them from the buffer."}, stream),
		replayBytes: f.NewGauge(prometheus.GaugeOpts{Name: "tistream_dispatcher_replay_cache_bytes",
			Help: "Bytes of store files past the streams' checkpoints kept in memory for restarted runs (bounded by --replay-cache-bytes)."}),
		skippedSends: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_dispatcher_resend_skipped_batches_total",
			Help: "Range batches a restarted run did not send again: the range's sorter got them on the same, still open, Ingest stream at the same owner and epoch (--resend-changed-only)."}, stream),
	}
}

// streamMetrics are one stream's series.
type streamMetrics struct {
	m                                            *metrics
	labels                                       []string
	filesRead, bytesRead, rowsRead, decodeErrors prometheus.Counter
	filesDeleted, ckptFailures, duplicates       prometheus.Counter
	sealedWaits, replayHits, resendsSkipped      prometheus.Counter
	rechecks                                     prometheus.Counter
	inFlight, checkpointSeq, checkpointLag       prometheus.Gauge
}

func (m *metrics) forStream(tenant, store uint64) *streamMetrics {
	l := []string{strconv.FormatUint(tenant, 10), strconv.FormatUint(store, 10)}
	return &streamMetrics{
		m: m, labels: l,
		filesRead: m.filesRead.WithLabelValues(l...), bytesRead: m.bytesRead.WithLabelValues(l...),
		rowsRead: m.rowsRead.WithLabelValues(l...), decodeErrors: m.decodeErrors.WithLabelValues(l...),
		filesDeleted: m.filesDeleted.WithLabelValues(l...), ckptFailures: m.ckptFailures.WithLabelValues(l...),
		duplicates: m.duplicates.WithLabelValues(l...), sealedWaits: m.sealedWaits.WithLabelValues(l...),
		replayHits: m.replayHits.WithLabelValues(l...), resendsSkipped: m.skippedSends.WithLabelValues(l...),
		rechecks: m.rechecks.WithLabelValues(l...),
		inFlight: m.inFlight.WithLabelValues(l...), checkpointSeq: m.checkpointSeq.WithLabelValues(l...),
		checkpointLag: m.checkpointLag.WithLabelValues(l...),
	}
}

func (sm *streamMetrics) restart(reason string) {
	sm.m.restarts.WithLabelValues(sm.labels[0], sm.labels[1], reason).Inc()
}

// read counts a file routed, by how its bytes were found (read.go).
func (sm *streamMetrics) read(how string) {
	sm.m.fileReads.WithLabelValues(sm.labels[0], sm.labels[1], how).Inc()
}

// reread records how many files a restart makes the stream read again.
func (sm *streamMetrics) reread(reason string, files uint64) {
	sm.m.rereads.WithLabelValues(reason).Observe(float64(files))
}

// gauges of a stream that stopped here would otherwise report stale values;
// counters stay so rates remain meaningful across a brief move and back.
func (sm *streamMetrics) dropGauges() {
	sm.m.inFlight.DeleteLabelValues(sm.labels...)
	sm.m.checkpointSeq.DeleteLabelValues(sm.labels...)
	sm.m.checkpointLag.DeleteLabelValues(sm.labels...)
	sm.m.blocked.DeletePartialMatch(prometheus.Labels{"tenant": sm.labels[0], "store": sm.labels[1]})
}
