package metaserver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Retention of retired ranges. A range retired by a split or merge has no
// owner any more, so no sorter compacts it: once its SEAL entry was
// published longer ago than the retention window (by the wall clock of the
// sorter that wrote it, recorded in the entry — not by the seal
// watermark's commit ts, which may be far in the past for a tenant with
// old TSOs), everything it published has expired, and the leader deletes
// it as a whole, in this order (each step idempotent, so a new leader
// redoes what a crash left):
//
//  1. publish the next manifest without it — new readers never open it (a
//     reader from before its successors opened gets ErrCompacted: their
//     parents are no longer listed);
//  2. delete its pool objects (pool.DeleteRange: floor past the head first,
//     so a reader holding an older manifest gets ErrCompacted) and its
//     sorter snapshots (in the pool store);
//  3. delete its range task from etcd.

type retentionMetrics struct {
	deleted *prometheus.CounterVec // kind: range, entry, file, snapshot
	bytes   prometheus.Counter
	errors  prometheus.Counter

	// sealed caches when each retired range's SEAL entry was published
	// (an immutable fact), so a round reads each log head once.
	sealedMu sync.Mutex
	sealed   map[[2]uint64]time.Time
}

func newRetentionMetrics(reg prometheus.Registerer) *retentionMetrics {
	f := promauto.With(reg)
	return &retentionMetrics{
		deleted: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_meta_retention_deleted_total",
			Help: "Retired ranges deleted by retention (kind=range) and their objects (entry, file, snapshot); groups of sorters that are gone deleted once expired (kind=group) and their objects (pub, segment)."}, []string{"kind"}),
		bytes: f.NewCounter(prometheus.CounterOpts{Name: "tistream_meta_retention_deleted_bytes_total",
			Help: "Bytes of the objects of retired ranges deleted by retention."}),
		errors: f.NewCounter(prometheus.CounterOpts{Name: "tistream_meta_retention_errors_total",
			Help: "Failed deletions of expired retired ranges (retried next round)."}),
		sealed: map[[2]uint64]time.Time{},
	}
}

// retentionLoop deletes expired retired ranges every RetentionInterval
// while leading; a tenant whose effective retention is 0 keeps them
// forever.
func (s *Service) retentionLoop(t *term) {
	s.everyTick(t, s.cfg.RetentionInterval, func() bool {
		if err := s.expireRetired(t, s.now()); errors.Is(err, errNotLeader) || t.ctx.Err() != nil {
			return false
		}
		err := s.expireGroups(t, s.now())
		return !errors.Is(err, errNotLeader) && t.ctx.Err() == nil
	})
}

// expireRetired deletes every retired range whose SEAL entry was published
// longer than the retention window before now.
func (s *Service) expireRetired(t *term, now time.Time) error {
	for _, e := range s.state.ranges.list(etcdx.RangesPrefix) {
		r := e.val
		if r.State != metav1.RangeTask_STATE_RETIRED || r.SealWatermark == 0 {
			continue
		}
		cutoff, ok := s.retentionCutoff(r.TenantId, now)
		if !ok {
			continue
		}
		expired, err := s.sealExpired(t.ctx, r.TenantId, r.RangeId, cutoff)
		if err == nil && expired {
			err = s.deleteRetired(t, e)
		}
		if errors.Is(err, errNotLeader) || t.ctx.Err() != nil {
			return errNotLeader
		}
		if err != nil {
			s.rm.errors.Inc()
			s.log.Warn("retention: delete retired range", "tenant", r.TenantId, "range", r.RangeId, "err", err)
		}
	}
	return nil
}

// sealExpired says whether the retired range's SEAL entry was published
// before cutoff. A range whose log lies below its floor, or is gone while
// the latest manifest no longer lists it, is being deleted already (a
// crash midway): it has expired, so the deletion completes. A log that is
// missing otherwise, does not end with a SEAL, or ends with a SEAL that
// does not say when it was published never expires by itself: keeping
// data is the safe mistake.
func (s *Service) sealExpired(ctx context.Context, tenant, id uint64, cutoff time.Time) (bool, error) {
	k := [2]uint64{tenant, id}
	s.rm.sealedMu.Lock()
	at, ok := s.rm.sealed[k]
	s.rm.sealedMu.Unlock()
	if !ok {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		head, _, err := pool.FindHead(ctx, s.pool, tenant, id)
		switch {
		case errors.Is(err, pool.ErrCompacted):
			return true, nil // DeleteRange moved the floor past the head
		case errors.Is(err, pool.ErrNoRange):
			m, err := pool.LoadManifest(ctx, s.pool, tenant)
			if err != nil {
				return false, fmt.Errorf("read manifest: %w", err)
			}
			for _, d := range m.Ranges {
				if d.RangeId == id {
					return false, nil
				}
			}
			return true, nil // unlisted, then deleted: finish
		case err != nil:
			return false, fmt.Errorf("find log head: %w", err)
		case head.Kind != formatv1.RangeLogEntry_KIND_SEAL:
			return false, nil
		}
		if at, ok = pool.PublishedAt(head); !ok {
			return false, nil
		}
		s.rm.sealedMu.Lock()
		s.rm.sealed[k] = at
		s.rm.sealedMu.Unlock()
	}
	return at.Before(cutoff), nil
}

func (s *Service) deleteRetired(t *term, e *entry[*metav1.RangeTask]) error {
	ctx, cancel := context.WithTimeout(t.ctx, time.Minute)
	defer cancel()
	tenant, id := e.val.TenantId, e.val.RangeId
	version, err := s.unlistRange(ctx, tenant, id)
	if err != nil {
		return err
	}
	st, err := pool.DeleteRange(ctx, s.pool, tenant, id)
	s.rm.deleted.WithLabelValues("entry").Add(float64(st.Entries))
	s.rm.deleted.WithLabelValues("file").Add(float64(st.Files))
	s.rm.bytes.Add(float64(st.Bytes))
	if err != nil {
		return err
	}
	snaps, err := objstore.ListAll(ctx, s.pool, layout.SorterSnapshotPrefix(tenant, id), "")
	if err != nil {
		return fmt.Errorf("list snapshots of range %d: %w", id, err)
	}
	for _, o := range snaps {
		if err := s.pool.Delete(ctx, o.Key); err != nil {
			return fmt.Errorf("delete %s: %w", o.Key, err)
		}
		s.rm.deleted.WithLabelValues("snapshot").Inc()
		s.rm.bytes.Add(float64(o.Size))
	}
	ok, _, err := s.commit(ctx, t, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(e.key), "=", e.modRev)}, clientv3.OpDelete(e.key))
	if err != nil || !ok {
		return err // changed meanwhile: the next round looks again
	}
	s.rm.deleted.WithLabelValues("range").Inc()
	s.rm.sealedMu.Lock()
	delete(s.rm.sealed, [2]uint64{tenant, id})
	s.rm.sealedMu.Unlock()
	s.log.Info("retention: deleted retired range", "tenant", tenant, "range", id, "seal_watermark", e.val.SealWatermark,
		"manifest_version", version, "entries", st.Entries, "files", st.Files, "snapshots", len(snaps), "bytes", st.Bytes)
	return nil
}

// unlistRange publishes the tenant's next manifest without range id, unless
// the latest one does not list it already. It refuses to drop a range that is
// not retired.
func (s *Service) unlistRange(ctx context.Context, tenant, id uint64) (uint64, error) {
	for attempt := 0; ; attempt++ {
		m, err := pool.LoadManifest(ctx, s.pool, tenant)
		if err != nil {
			return 0, fmt.Errorf("read manifest: %w", err)
		}
		next := proto.Clone(m).(*formatv1.Manifest)
		next.Version, next.CreatedUnixMs, next.Ranges = m.Version+1, s.now().UnixMilli(), nil
		for _, d := range m.Ranges {
			if d.RangeId != id {
				next.Ranges = append(next.Ranges, d)
				continue
			}
			if d.State != formatv1.RangeDescriptor_STATE_RETIRED {
				return 0, fmt.Errorf("manifest version %d lists range %d as %s, not retired", m.Version, id, d.State)
			}
		}
		if len(next.Ranges) == len(m.Ranges) {
			return m.Version, nil // not listed (any more)
		}
		err = pool.PublishManifest(ctx, s.pool, next)
		if err == nil {
			return next.Version, nil
		}
		if !errors.Is(err, pool.ErrFenced) || attempt >= 3 {
			return 0, fmt.Errorf("publish manifest version %d: %w", next.Version, err)
		}
	}
}
