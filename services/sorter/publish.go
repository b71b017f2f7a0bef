package sorter

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tistream/tistream/libs/pool"
	rangesorter "github.com/tistream/tistream/libs/sorter"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Publishing (committed data pool format 2): this process publishes every
// range it holds of a tenant in one group. A publisher per tenant runs
// when a batch kicks it, at most every FlushInterval (wake.go): it asks each range for its staged flush (its target
// watermark and the rows up to it; the range keeps applying batches
// meanwhile), writes one publication for all of them, then tells each
// range it is published (it deletes the flushed rows and moves its
// published watermark), or that it was fenced out by a newer owner (the
// holder drops it). An idle range only moves its watermark in the shared
// publication: it costs no request of its own. Ranges that are sealing
// (split, merge) are not flushed here: their holder aligns and seals them
// (seal.go), publishing what it must with the group at once.

// emptyGroupTTL: a group without ranges for this long is closed; the next
// range of its tenant starts a new group (a new id), so a group retention
// deletes as gone is never written again.
const emptyGroupTTL = time.Minute

type publishMetrics struct {
	pubs      *prometheus.CounterVec // result: published, error
	early     prometheus.Counter
	pubBytes  prometheus.Counter
	conflicts prometheus.Counter
	fenced    prometheus.Counter
	segments  *prometheus.CounterVec // result: written, error
	segBytes  prometheus.Counter
	pubsGone  prometheus.Counter
	groups    prometheus.Gauge
	notices   *prometheus.CounterVec   // result: queued, error
	round     *prometheus.HistogramVec // step: stage, put, commit
}

func newPublishMetrics(reg prometheus.Registerer) *publishMetrics {
	f := promauto.With(reg)
	return &publishMetrics{
		pubs: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sorter_publications_total",
			Help: "Group publications (one per tenant and flush interval in which some range's watermark moved) by result (published, error)."}, []string{"result"}),
		early: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_publish_rounds_early_total",
			Help: "Publish rounds begun before --flush-interval because --flush-bytes of rows had arrived for the tenant (a sorter at full speed)."}),
		pubBytes: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_publication_bytes_total",
			Help: "Bytes of the group publications written."}),
		conflicts: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_publication_conflicts_total",
			Help: "Publication seqs found taken by a newer owner's FENCE (the publication was written at the next seq)."}),
		fenced: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_ranges_fenced_total",
			Help: "Ranges fenced out of this sorter's groups by a newer owner (their staged rows were not published)."}),
		segments: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sorter_segments_total",
			Help: "Group segments (the rows of many publications, each range's contiguous) by result (written, error)."}, []string{"result"}),
		segBytes: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_segment_bytes_total",
			Help: "Bytes of the group segments written."}),
		pubsGone: f.NewCounter(prometheus.CounterOpts{Name: "tistream_sorter_publications_segmented_deleted_total",
			Help: "Publications deleted after a segment covering them passed its grace period."}),
		groups: f.NewGauge(prometheus.GaugeOpts{Name: "tistream_sorter_groups",
			Help: "Open groups (one per tenant with ranges held here)."}),
		notices: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_sorter_publication_notices_total",
			Help: "Publication notices for the pool's readers (etcd), by result: queued (one per publication; notices of a tenant coalesce), error (a put failed: readers fall back to polling)."}, []string{"result"}),
		round: f.NewHistogramVec(prometheus.HistogramOpts{Name: "tistream_sorter_publish_round_seconds",
			Help:    "Time of each step of the publish rounds that staged something, by step: stage (every range encodes its rows, in parallel on the workers, each after the batches queued before it), put (the group publication written to the object store), commit (the ranges free what was published). A round's sum is what it adds to the lag after its flush interval.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"step"}), // 1 ms to 33 s
	}
}

// tenantGroup is the group of one tenant and its publisher.
type tenantGroup struct {
	tenant uint64
	w      *pool.GroupWriter
	cancel context.CancelFunc
	done   chan struct{}
}

// group returns the group of a tenant, starting it (and its publisher) if
// there is none (rangesorter.Deps.Group).
func (s *Service) group(tenant uint64) (*pool.GroupWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.groups[tenant]; g != nil {
		return g.w, nil
	}
	id := pool.GroupID(s.cfg.ID, uint64(s.startedMs), s.groupSeq.Add(1))
	w, err := pool.NewGroupWriter(s.pool, tenant, id, s.cfg.ID, pool.GroupOptions{SegmentBytes: s.cfg.SegmentBytes,
		SegmentAge: s.cfg.SegmentAge, OnSegment: s.segmentDone,
		// A FENCE written into the previous owner's group is announced like
		// a publication: that group publishes nothing more, and its readers
		// would otherwise find the FENCE only at their fallback poll.
		OnFence: func(group string, seq uint64) { s.notifier.Published(tenant, group, seq) }})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(s.rootCtx)
	g := &tenantGroup{tenant: tenant, w: w, cancel: cancel, done: make(chan struct{})}
	s.groups[tenant] = g
	s.pm.groups.Inc()
	s.log.Info("group started", "tenant", tenant, "group", id)
	go s.publishLoop(ctx, g)
	return w, nil
}

func (s *Service) segmentDone(r pool.SegmentResult) {
	if r.Err != nil {
		s.pm.segments.WithLabelValues("error").Inc()
		s.log.Warn("write group segment", "first", r.First, "last", r.Last, "err", r.Err)
	} else {
		s.pm.segments.WithLabelValues("written").Inc()
		s.pm.segBytes.Add(float64(r.Bytes))
	}
	s.pm.pubsGone.Add(float64(r.PubsDeleted))
}

// closeGroups stops every publisher and closes the groups (the ranges were
// released): a new registration starts new groups.
func (s *Service) closeGroups() {
	s.mu.Lock()
	all := s.groups
	s.groups = map[uint64]*tenantGroup{}
	s.mu.Unlock()
	for _, g := range all {
		g.cancel()
		<-g.done
		g.w.Close()
		s.pm.groups.Dec()
	}
}

// publishLoop publishes the tenant's ranges when a batch kicks it (at most
// every FlushInterval, wake.go) until ctx ends or the group stays empty for
// emptyGroupTTL.
func (s *Service) publishLoop(ctx context.Context, g *tenantGroup) {
	defer close(g.done)
	w := s.wake(g.tenant)
	var emptySince, last time.Time
	for {
		fallback, early, ok := s.waitPublish(ctx, w, last)
		if !ok {
			return
		}
		if early {
			s.pm.early.Inc()
		}
		w.fed.Store(0) // the round takes what arrived so far
		now := time.Now()
		if s.publish(ctx, g) {
			last = now
		}
		if g.w.Members() > 0 || !fallback {
			emptySince = time.Time{}
			continue
		}
		if emptySince.IsZero() {
			emptySince = now
		} else if now.Sub(emptySince) >= emptyGroupTTL && s.retireGroup(g) {
			return
		}
	}
}

// retireGroup closes an empty group, unless a range attached meanwhile (a
// range that attaches after it left the map finds it closed and takes
// again, in a new group).
func (s *Service) retireGroup(g *tenantGroup) bool {
	s.mu.Lock()
	if s.groups[g.tenant] != g || g.w.Members() > 0 {
		s.mu.Unlock()
		return false
	}
	delete(s.groups, g.tenant)
	s.mu.Unlock()
	g.w.Close()
	s.pm.groups.Dec()
	s.log.Info("empty group closed", "tenant", g.tenant, "group", g.w.ID())
	return true
}

// staged is one holder's flush in a publication.
type staged struct {
	h  *holder
	r  *rangesorter.Range
	st *pool.Staged
}

// publish runs one round: stage, publish, commit. The ranges' stages (the
// encoding of their sections) run in parallel on the worker pool (work.go),
// and so do their commits: those are cheap (0.5% of a drain's CPU against
// the stages' 17%, docs/benchmarks.md) but on the pool a commit waits for
// its own range's lock only, not behind a range whose lock a snapshot or a
// seal holds. The round waits for its own tasks at each step; the
// publication itself is written on the tenant's publisher between them,
// while the ranges go on applying batches. It reports whether a
// publication was written.
func (s *Service) publish(ctx context.Context, g *tenantGroup) (published bool) {
	s.throttle.Begin() // over once the commits freed the flushed rows
	defer s.throttle.End()
	s.mu.Lock()
	var hs []*holder
	for k, h := range s.holders {
		if k.tenant == g.tenant {
			hs = append(hs, h)
		}
	}
	s.mu.Unlock()
	items := make([]staged, len(hs))
	began := time.Now()
	stage := s.newRound()
	for i, h := range hs {
		stage.run(h.key, func() { items[i] = h.stage() })
	}
	stage.wait()
	var list []*pool.Staged
	for _, it := range items {
		if it.st != nil {
			list = append(list, it.st)
		}
	}
	stagedAt := time.Now()
	res, err := g.w.Publish(ctx, list)
	putAt := time.Now()
	switch {
	case err != nil && ctx.Err() == nil:
		s.pm.pubs.WithLabelValues("error").Inc()
		s.log.Warn("publish group", "tenant", g.tenant, "group", g.w.ID(), "err", err)
	case res.Seq != 0:
		published = true
		s.pm.pubs.WithLabelValues("published").Inc()
		s.pm.pubBytes.Add(float64(res.Bytes))
		s.notifier.Published(g.tenant, g.w.ID(), res.Seq)
		s.pm.notices.WithLabelValues("queued").Inc()
	}
	s.pm.conflicts.Add(float64(res.Conflicts))
	s.pm.fenced.Add(float64(len(res.Fenced)))
	commit := s.newRound()
	for _, it := range items {
		if it.st != nil {
			commit.run(it.h.key, func() { it.h.commit(it) })
		}
	}
	commit.wait()
	if len(list) > 0 { // an idle tick's round stages nothing and writes nothing
		s.pm.round.WithLabelValues("stage").Observe(stagedAt.Sub(began).Seconds())
		s.pm.round.WithLabelValues("put").Observe(putAt.Sub(stagedAt).Seconds())
		s.pm.round.WithLabelValues("commit").Observe(time.Since(putAt).Seconds())
	}
	return published
}

// stage stages the range's flush for the round; the zero staged when it
// has nothing to publish, is sealing or sealed, or was dropped (fenced).
func (h *holder) stage() staged {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, t := h.r, h.task.Load()
	if r == nil || r.Sealed() || (t.State == metav1.RangeTask_STATE_SEALING && len(t.SuccessorRangeIds) > 0) {
		return staged{}
	}
	start := time.Now()
	st, err := r.Prepare(^uint64(0))
	if st != nil { // an idle range's empty round costs next to nothing: it reads 0
		h.load.spent(start, 0)
	}
	switch {
	case err == nil && st != nil:
		return staged{h, r, st}
	case err == nil:
		h.watchStallLocked(false)
	case errors.Is(err, pool.ErrFenced):
		h.log.Warn("range fenced by a newer owner; dropping it", "err", err)
		h.dropLocked()
	case h.ctx.Err() == nil:
		h.log.Warn("stage flush", "err", err)
	}
	return staged{}
}

// commit ends the range's staged flush after the round's publication.
func (h *holder) commit(it staged) {
	s := h.s
	if it.st.Done() {
		// Counted here, once per staged flush a publication made durable,
		// also when the range was dropped or taken again meanwhile (a
		// drain hands it over) and its Commit does not run here.
		s.m.rowsFlushed.Add(float64(it.st.Rows()))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.r != it.r {
		return // dropped or taken again meanwhile
	}
	start := time.Now()
	err := it.r.Commit(it.st)
	published := 0
	if err == nil && it.st.Done() {
		published = it.st.Bytes()
	}
	h.load.spent(start, published)
	switch {
	case err == nil:
		if it.st.Done() {
			s.m.flushes.Inc()
		}
		h.watchStallLocked(it.st.Done())
	case errors.Is(err, pool.ErrFenced):
		h.log.Warn("range fenced by a newer owner; dropping it", "err", err)
		h.dropLocked()
	case h.ctx.Err() == nil:
		h.log.Warn("commit flush", "err", err)
	}
}
