package metaserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/tenantcfg"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// Retention of groups (committed data pool format 2). A sorter's groups
// are compacted by the sorter while it runs; once it is gone (crashed,
// stopped, its lease lost: every sorter process starts new groups, and
// closes a group that stayed empty), nobody publishes in its groups any
// more and the meta-server deletes each of them as a whole once:
//
//  1. everything in it expired: its newest publication (or segment) was
//     published longer ago than the retention window — every new owner of
//     a range writes a FENCE publication into the range's group, and a
//     range is only sealed after a publication of its final watermark, so
//     a group some range left recently has a recent head; and
//  2. no range's open segment names it: the log head of every range of
//     the tenant (manifest and range tasks) that is an OPEN or TAKEOVER
//     names another group.
//
// Then pool.DeleteGroup moves the group's floor past its head (a reader
// still positioned in it gets ErrCompacted), deletes its segments and
// publications, and its floor markers last. Each step is idempotent, so a
// new leader redoes what a crash left.

// expireGroups deletes the expired groups nobody publishes in any more.
func (s *Service) expireGroups(t *term, now time.Time) error {
	for _, te := range s.state.tenants.list(etcdx.TenantsPrefix) {
		if t.ctx.Err() != nil {
			return errNotLeader
		}
		cutoff, ok := s.retentionCutoff(te.val.TenantId, now)
		if !ok || !tenantcfg.Resolve(te.val, s.cfg.TenantDefaults).Active() {
			continue // kept forever, or being offboarded (offboard.go)
		}
		if err := s.expireTenantGroups(t.ctx, te.val.TenantId, cutoff); err != nil && t.ctx.Err() == nil {
			s.rm.errors.Inc()
			s.log.Warn("retention: delete expired groups", "tenant", te.val.TenantId, "err", err)
		}
	}
	return nil
}

func (s *Service) expireTenantGroups(ctx context.Context, tenant uint64, cutoff time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ids, err := pool.ListGroups(ctx, s.pool, tenant)
	if err != nil {
		return err
	}
	var named map[string]bool // computed once a group is a candidate
	for _, g := range ids {
		info, err := pool.StatGroup(ctx, s.pool, tenant, g)
		if err != nil {
			return fmt.Errorf("group %s: %w", g, err)
		}
		if info.Head > 0 && (info.Newest.IsZero() || !info.Newest.Before(cutoff)) {
			continue // not expired (or cannot tell: keeping data is the safe mistake)
		}
		if named == nil {
			if named, err = s.openSegments(ctx, tenant); err != nil {
				return err
			}
		}
		if named[g] {
			continue
		}
		st, err := pool.DeleteGroup(ctx, s.pool, tenant, g)
		s.rm.deleted.WithLabelValues("pub").Add(float64(st.Pubs))
		s.rm.deleted.WithLabelValues("segment").Add(float64(st.Segments))
		s.rm.bytes.Add(float64(st.Bytes))
		if err != nil {
			return fmt.Errorf("delete group %s: %w", g, err)
		}
		s.rm.deleted.WithLabelValues("group").Inc()
		s.log.Info("retention: deleted expired group", "tenant", tenant, "group", g, "owner", info.Owner,
			"newest", info.Newest, "pubs", st.Pubs, "segments", st.Segments, "bytes", st.Bytes)
	}
	return nil
}

// openSegments returns the groups that the open segments of the tenant's
// ranges name (their range log heads).
func (s *Service) openSegments(ctx context.Context, tenant uint64) (map[string]bool, error) {
	ids := map[uint64]bool{}
	m, err := pool.LoadManifest(ctx, s.pool, tenant)
	switch {
	case err == nil:
		for _, d := range m.Ranges {
			ids[d.RangeId] = true
		}
	case !errors.Is(err, pool.ErrNoManifest):
		return nil, err
	}
	for _, e := range s.state.ranges.list(etcdx.RangesPrefix) {
		if e.val.TenantId == tenant {
			ids[e.val.RangeId] = true
		}
	}
	named := map[string]bool{}
	for id := range ids {
		head, _, err := pool.FindHead(ctx, s.pool, tenant, id)
		switch {
		case errors.Is(err, pool.ErrNoRange), errors.Is(err, pool.ErrCompacted):
			continue
		case err != nil:
			return nil, fmt.Errorf("range %d: find log head: %w", id, err)
		}
		if head.Group != "" && (head.Kind == formatv1.RangeLogEntry_KIND_OPEN || head.Kind == formatv1.RangeLogEntry_KIND_TAKEOVER) {
			named[head.Group] = true
		}
	}
	return named, nil
}
