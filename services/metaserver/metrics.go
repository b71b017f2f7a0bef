package metaserver

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics of one meta-server. RPC counts and latencies come from grpcx.
type metrics struct {
	leader        prometheus.Gauge
	tasks         *prometheus.GaugeVec   // kind, state
	assignments   *prometheus.CounterVec // kind, reason
	notifications *prometheus.CounterVec // result
	rangeOps      *prometheus.CounterVec // op, phase
	refused       *prometheus.CounterVec // method, reason (bounds.go)
	forwarded     *prometheus.CounterVec // method, result (proxy.go)
	autoscale     *prometheus.CounterVec // action, result (autoscale.go)
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		leader: f.NewGauge(prometheus.GaugeOpts{Name: "tistream_meta_leader",
			Help: "1 while this meta-server is the leader."}),
		tasks: f.NewGaugeVec(prometheus.GaugeOpts{Name: "tistream_meta_tasks",
			Help: "Tasks known to the leader by kind (range, stream) and state."}, []string{"kind", "state"}),
		assignments: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_meta_assignments_total",
			Help: "Task assignments written by the scheduler, by kind and reason (unassigned, owner_gone, balance, successor)."},
			[]string{"kind", "reason"}),
		notifications: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_meta_notifications_total",
			Help: "Store file notifications by result (received, forwarded, dropped, forward_failed)."}, []string{"result"}),
		rangeOps: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_meta_range_ops_total",
			Help: "Range splits and merges by op (split, merge) and phase (started, completed)."}, []string{"op", "phase"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_meta_requests_refused_total",
			Help: "MetaService calls refused by method and reason (concurrency, key_too_large, rate, too_many_ranges, too_many_stores, unknown_tenant, malformed, no_such_file); nothing was changed."},
			[]string{"method", "reason"}),
		forwarded: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_meta_forwarded_total",
			Help: "MetaService calls a standby forwarded to the leader, by method and result (answered: the leader's answer, OK or not, was passed on; unavailable: the leader could not be reached or was not ready; hop_limit; no_leader; bad_request); all but answered fail with UNAVAILABLE and, when the leader is known, the redirect."},
			[]string{"method", "result"}),
		autoscale: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_meta_autoscale_actions_total",
			Help: "Actions of the autoscaler by action (split, merge, move: a range moved for load; drain: a task moved off a draining worker) and result (started, refused: a bound or a concurrent change refused it, failed)."},
			[]string{"action", "result"}),
	}
}
