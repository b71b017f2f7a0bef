package sorter

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/tenantcfg"
)

// Retention: a group's writer deletes its expired front
// (pool.CompactGroup): every RetentionInterval, each group of this sorter
// drops the publications and segments published longer than Retention ago
// (by the wall clock of the sorter that published them, recorded in each).
// Ranges whose logs still hold format 1 FLUSH entries (written before
// group publications) have those compacted by their owner as before
// (pool.CompactPublished; it stops at the first format 2 entry). The rows'
// commit ts play no part: a tenant whose TSOs are old — an upstream clock
// behind, the simulator's fixed start, a replay of old history — keeps its
// data as long after publication as any other. Readers asking for dropped
// rows get pool.ErrCompacted (OUT_OF_RANGE at the API). Groups of sorters
// that are gone are deleted by the meta-server once expired.

// maxCompactCalls bounds the pool.CompactPublished calls per range and
// round; each call deletes at most pool.DefaultCompactMaxDeletes objects,
// and what is left waits for the next round.
const maxCompactCalls = 4

type retentionMetrics struct {
	deleted *prometheus.CounterVec // kind: entry, file
	bytes   prometheus.Counter
	runs    *prometheus.CounterVec // result: done, more, error
}

func newRetentionMetrics(reg prometheus.Registerer) *retentionMetrics {
	f := promauto.With(reg)
	return &retentionMetrics{
		deleted: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sorter_retention_deleted_objects_total",
			Help: "Committed data pool objects deleted by retention, by kind (pub: group publication, segment: group segment; entry: format 1 range log entry, file: format 1 data file)."}, []string{"kind"}),
		bytes: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_retention_deleted_bytes_total",
			Help: "Bytes of committed data pool objects deleted by retention."}),
		runs: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sorter_retention_compactions_total",
			Help: "Group and format 1 range log compactions by result (done, more: stopped at its bound, error)."}, []string{"result"}),
	}
}

// publishedBefore is the wall-clock time retention ago from now: what was
// published before it has expired. ok is false when retention is off.
func publishedBefore(now time.Time, retention time.Duration) (time.Time, bool) {
	if retention <= 0 {
		return time.Time{}, false
	}
	return now.Add(-retention), true
}

// startRetention starts the periodic compaction of the held ranges; it
// ends with the service's root context. Each tenant's retention is its
// effective one (docs/tenants.md): its own setting, followed in etcd, or
// --retention, the fleet default; 0 keeps its data forever.
func (s *Service) startRetention() {
	m := newRetentionMetrics(s.registry)
	s.retentionDone = make(chan struct{})
	s.tenants = tenantcfg.NewWatcher(s.etcd, tenantcfg.Defaults{Retention: s.cfg.Retention}, s.log)
	go s.tenants.Run(s.rootCtx)
	go func() {
		defer close(s.retentionDone)
		t := time.NewTicker(s.cfg.RetentionInterval)
		defer t.Stop()
		for {
			select {
			case <-s.rootCtx.Done():
				return
			case now := <-t.C:
				s.compactHeld(s.rootCtx, m, now)
			}
		}
	}()
}

// compactHeld compacts this sorter's groups, and the format 1 range logs
// of the ranges it holds that still have some.
func (s *Service) compactHeld(ctx context.Context, m *retentionMetrics, now time.Time) {
	s.mu.Lock()
	keys := make([]rangeKey, 0, len(s.holders))
	for k, h := range s.holders {
		if h.hasV1Log() {
			keys = append(keys, k)
		}
	}
	groups := make([]*tenantGroup, 0, len(s.groups))
	for _, g := range s.groups {
		groups = append(groups, g)
	}
	s.mu.Unlock()
	for _, g := range groups {
		if ctx.Err() != nil {
			return
		}
		if cutoff, ok := publishedBefore(now, s.retention(g.tenant)); ok {
			s.compactGroup(ctx, m, g, cutoff)
		}
	}
	for _, k := range keys {
		if ctx.Err() != nil {
			return
		}
		if s.lookup(k) == nil {
			continue // released meanwhile: its new owner compacts it
		}
		if cutoff, ok := publishedBefore(now, s.retention(k.tenant)); ok {
			s.compactRange(ctx, m, k, cutoff)
		}
	}
}

// retention is a tenant's effective retention: --retention until the
// tenant settings are loaded, or for a tenant without its own.
func (s *Service) retention(tenant uint64) time.Duration {
	if s.tenants == nil {
		return s.cfg.Retention
	}
	return s.tenants.Settings(tenant).Retention
}

// hasV1Log reports whether the held range's log has format 1 entries to
// compact.
func (h *holder) hasV1Log() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.r != nil && h.r.HasV1Log()
}

func (s *Service) compactGroup(ctx context.Context, m *retentionMetrics, g *tenantGroup, cutoff time.Time) {
	for range maxCompactCalls {
		st, err := pool.CompactGroup(ctx, s.pool, g.tenant, g.w.ID(), cutoff)
		m.deleted.WithLabelValues("pub").Add(float64(st.Pubs))
		m.deleted.WithLabelValues("segment").Add(float64(st.Segments))
		m.bytes.Add(float64(st.Bytes))
		if err != nil {
			if ctx.Err() == nil {
				m.runs.WithLabelValues("error").Inc()
				s.log.Warn("retention: compact group", "tenant", g.tenant, "group", g.w.ID(), "err", err)
			}
			return
		}
		if st.Pubs+st.Segments > 0 {
			s.log.Debug("retention: compacted group", "tenant", g.tenant, "group", g.w.ID(), "published_before", cutoff,
				"pubs", st.Pubs, "segments", st.Segments, "bytes", st.Bytes, "floor", st.Floor)
		}
		if !st.More {
			m.runs.WithLabelValues("done").Inc()
			return
		}
		m.runs.WithLabelValues("more").Inc()
	}
}

func (s *Service) compactRange(ctx context.Context, m *retentionMetrics, k rangeKey, cutoff time.Time) {
	for range maxCompactCalls {
		st, err := pool.CompactPublished(ctx, s.pool, k.tenant, k.id, cutoff)
		m.deleted.WithLabelValues("entry").Add(float64(st.Entries))
		m.deleted.WithLabelValues("file").Add(float64(st.Files))
		m.bytes.Add(float64(st.Bytes))
		switch {
		case errors.Is(err, pool.ErrNoRange):
			return // not created yet
		case err != nil:
			if ctx.Err() == nil {
				m.runs.WithLabelValues("error").Inc()
				s.log.Warn("retention: compact range", "tenant", k.tenant, "range", k.id, "err", err)
			}
			return
		}
		if st.Entries+st.Files > 0 {
			s.log.Debug("retention: compacted range", "tenant", k.tenant, "range", k.id, "published_before", cutoff,
				"entries", st.Entries, "files", st.Files, "bytes", st.Bytes, "floor", st.Floor)
		}
		if !st.More {
			m.runs.WithLabelValues("done").Inc()
			return
		}
		m.runs.WithLabelValues("more").Inc()
	}
}
