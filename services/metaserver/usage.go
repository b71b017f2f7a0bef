package metaserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/usage"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Metering on the leader (docs/tenants.md, "Metering"): every
// --usage-sample-interval it samples each tenant's stored bytes by class
// (listing its objects) and ingest totals (the sum of its streams'
// checkpoints) into a SAMPLE record, then rolls up the hours that ended
// more than --usage-rollup-grace ago (usage.Rollup: idempotent, so a new
// leader redoes what a crash left). GetUsage reads the records.

// Stored-bytes classes.
const (
	classPool     = "pool"     // committed data: data files, logs, segments, publications, manifests, floors
	classSnapshot = "snapshot" // sorter snapshots
	classSchema   = "schema"   // schema history (registry) and the pool's schema snapshot copies
	classBuffer   = "buffer"   // the data change buffer: store change files and schema snapshots
)

type usageMetrics struct {
	guard    *usage.LabelGuard
	ingested *prometheus.GaugeVec // tenant, what (rows, bytes)
	stored   *prometheus.GaugeVec // tenant, class
	rolled   prometheus.Counter
	errors   prometheus.Counter
	pruned   time.Time // the usage archive's last pruning (leader loop only)
}

func newUsageMetrics(reg prometheus.Registerer) *usageMetrics {
	f := promauto.With(reg)
	return &usageMetrics{guard: usage.NewLabelGuard(usage.DefaultMaxTenantLabels),
		ingested: f.NewGaugeVec(prometheus.GaugeOpts{Name: "tistream_tenant_usage_ingested",
			Help: "A tenant's cumulative ingest (what=rows: row events; what=bytes: store change file bytes), as of the leader's last sample: the sum of its streams' checkpoints."}, []string{"tenant", "what"}),
		stored: f.NewGaugeVec(prometheus.GaugeOpts{Name: "tistream_tenant_usage_stored_bytes",
			Help: "Bytes a tenant stores, by class (pool, snapshot, schema, buffer), as of the leader's last sample."}, []string{"tenant", "class"}),
		rolled: f.NewCounter(prometheus.CounterOpts{Name: "tistream_meta_usage_hours_rolled_up_total",
			Help: "Tenant hours folded into their usage rollup."}),
		errors: f.NewCounter(prometheus.CounterOpts{Name: "tistream_meta_usage_errors_total",
			Help: "Failed usage samples and rollups (retried next round)."}),
	}
}

func (s *Service) usageLoop(t *term) {
	s.everyTick(t, s.cfg.Usage.SampleInterval, func() bool {
		s.usageRound(t)
		return t.ctx.Err() == nil
	})
}

// usageRound samples and rolls up every tenant, and prunes the usage
// archive once an hour.
func (s *Service) usageRound(t *term) {
	if now := s.now(); now.Sub(s.um.pruned) >= time.Hour {
		n, err := usage.PruneArchive(t.ctx, s.pool, now, s.cfg.Usage.ArchiveRetention)
		if err != nil && t.ctx.Err() == nil {
			s.um.errors.Inc()
			s.log.Warn("usage archive pruning failed", "err", err)
		} else if err == nil {
			s.um.pruned = now
			if n > 0 {
				s.log.Info("deleted expired archived usage", "objects", n, "retention", s.cfg.Usage.ArchiveRetention)
			}
		}
	}
	for _, e := range s.state.tenants.list(etcdx.TenantsPrefix) {
		id, err := strconv.ParseUint(e.key[len(etcdx.TenantsPrefix):], 10, 64)
		if err != nil {
			continue
		}
		if e.val.State == metav1.TenantState_TENANT_STATE_DELETING {
			continue // offboarding samples and rolls it up once more, then archives it
		}
		if err := s.sampleUsage(t.ctx, id, e.val.ClusterId); err != nil {
			if t.ctx.Err() != nil {
				return
			}
			s.um.errors.Inc()
			s.log.Warn("usage sample failed", "tenant", id, "err", err)
		}
		hours, err := usage.RollupSince(t.ctx, s.pool, id, e.val.RegisteredUnixMs, s.now(), s.cfg.Usage.RollupGrace)
		s.um.rolled.Add(float64(len(hours)))
		if err != nil && t.ctx.Err() == nil {
			s.um.errors.Inc()
			s.log.Warn("usage rollup failed", "tenant", id, "err", err)
		}
	}
}

// sampleUsage writes one SAMPLE record of a tenant.
func (s *Service) sampleUsage(ctx context.Context, tenant, cluster uint64) error {
	now := s.now()
	totals, err := s.ingestTotals(ctx, tenant)
	if err != nil {
		return err
	}
	buffer, err := s.buffers.For(ctx, tenant)
	if err != nil {
		return err
	}
	stored := map[string]uint64{}
	for _, l := range []struct {
		store  objstore.Store
		prefix string
	}{
		{s.pool, layout.PoolTenantPrefix(tenant)},
		{s.pool, fmt.Sprintf("%stenant-%d/", layout.SnapshotRoot, tenant)},
		{s.pool, layout.SchemaHistoryPrefix(tenant)},
		{buffer, layout.TenantBufferPrefix(cluster, tenant)},
	} {
		objs, err := objstore.ListAll(ctx, l.store, l.prefix, "")
		if err != nil {
			return fmt.Errorf("list %s to measure stored bytes: %w", l.prefix, err)
		}
		for _, o := range objs {
			if class := storedClass(o.Key); class != "" {
				stored[class] += uint64(o.Size)
			}
		}
	}
	if err := usage.WriteSample(ctx, s.pool, tenant, now, stored, totals); err != nil {
		return err
	}
	label := s.um.guard.LabelOf(tenant)
	s.um.ingested.WithLabelValues(label, "rows").Set(float64(totals.Rows))
	s.um.ingested.WithLabelValues(label, "bytes").Set(float64(totals.Bytes))
	for class, n := range stored {
		s.um.stored.WithLabelValues(label, class).Set(float64(n))
	}
	return nil
}

// storedClass is the stored-bytes class of a key ("" = not billed: the
// usage records themselves).
func storedClass(key string) string {
	p, _, _ := layout.Classify(key)
	switch {
	case p == layout.PurposePoolUsage:
		return ""
	case p == layout.PurposePoolSchema || p == layout.PurposeSchemaRegistry:
		return classSchema
	case p == layout.PurposeSorterSnapshot:
		return classSnapshot
	case p.IsBuffer():
		return classBuffer
	}
	return classPool
}

// ingestTotals sums the ingest counters of a tenant's stream checkpoints.
func (s *Service) ingestTotals(ctx context.Context, tenant uint64) (usage.Totals, error) {
	cps, _, err := etcdx.ListProto(ctx, s.etcd, etcdx.CheckpointPrefix+strconv.FormatUint(tenant, 10)+"/",
		func() *metav1.Checkpoint { return &metav1.Checkpoint{} })
	if err != nil {
		return usage.Totals{}, fmt.Errorf("read the checkpoints of tenant %d: %w", tenant, err)
	}
	var t usage.Totals
	for _, cp := range cps {
		t.Rows += cp.IngestedRows
		t.Bytes += cp.IngestedBytes
	}
	return t, nil
}

// getUsage answers GetUsage.
func (s *Service) getUsage(ctx context.Context, req *metav1.GetUsageRequest) (*metav1.GetUsageResponse, error) {
	if req.TenantId == 0 {
		return nil, status.Error(codes.InvalidArgument, "tenant_id is required")
	}
	if req.ToUnixMs != 0 && req.ToUnixMs <= req.FromUnixMs {
		return nil, status.Errorf(codes.InvalidArgument, "to (%d) must be after from (%d)", req.ToUnixMs, req.FromUnixMs)
	}
	// The mirror, or etcd when the mirror has not caught up with a fresh
	// registration (a tenant registered just now is not "unknown").
	info, err := s.tenant(ctx, req.TenantId)
	if err != nil {
		return nil, fmt.Errorf("read tenant %d: %w", req.TenantId, err)
	}
	archived := req.Archived || info == nil
	if info != nil && info.State == metav1.TenantState_TENANT_STATE_DELETING {
		// Its folder is being deleted: once archived, the archive answers.
		done, err := usage.Archived(ctx, s.pool, req.TenantId, info.DeregisteredUnixMs)
		if err != nil {
			return nil, err
		}
		archived = archived || done
	}
	if archived {
		resp, found, err := usage.QueryArchive(ctx, s.pool, req.TenantId, req.FromUnixMs, req.ToUnixMs)
		if err != nil {
			return nil, fmt.Errorf("read the archived usage of tenant %d: %w", req.TenantId, err)
		}
		if !found {
			return nil, status.Errorf(codes.NotFound, "tenant %d is not registered and has no archived usage", req.TenantId)
		}
		return resp, nil
	}
	live, err := s.ingestTotals(ctx, req.TenantId)
	if err != nil {
		return nil, err
	}
	resp, err := usage.QuerySince(ctx, s.pool, req.TenantId, info.RegisteredUnixMs, req.FromUnixMs, req.ToUnixMs, &live, s.now())
	if err != nil && !errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("read the usage of tenant %d: %w", req.TenantId, err)
	}
	return resp, err
}
