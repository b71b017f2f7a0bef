package schemaregistry

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tistream/tistream/libs/etcdx"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// parseTenantKey returns the tenant id of /tistream/v1/tenants/{tenant}.
func parseTenantKey(key string) (uint64, error) {
	rest, ok := strings.CutPrefix(key, etcdx.TenantsPrefix)
	if !ok || rest == "" || strings.Contains(rest, "/") {
		return 0, fmt.Errorf("etcd key %q is not %s{tenant}", key, etcdx.TenantsPrefix)
	}
	id, err := strconv.ParseUint(rest, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("etcd key %q: tenant id %q is not a positive integer", key, rest)
	}
	return id, nil
}

// tenantInfo decodes a tenant's value for logs; the registry needs only
// the id (the pool holds the rest), so a value it cannot read is no reason
// to leave the tenant unserved.
func (s *Service) tenantInfo(key string, value []byte) *metav1.TenantInfo {
	info := &metav1.TenantInfo{}
	if err := proto.Unmarshal(value, info); err != nil {
		s.log.Warn("tenant value does not decode", "key", key, "err", err)
	}
	return info
}

// served: the tenant is not deregistered (a deregistered tenant is not
// followed, as if it were gone).
func served(info *metav1.TenantInfo) bool {
	return info.GetState() == metav1.TenantState_TENANT_STATE_UNSPECIFIED || info.GetState() == metav1.TenantState_TENANT_STATE_ACTIVE
}

// syncTenants lists the registered tenants, starts following new ones and
// stops those that are gone. It returns the etcd revision of the listing.
func (s *Service) syncTenants(ctx, runCtx context.Context) (int64, error) {
	resp, err := s.deps.Etcd.Get(ctx, etcdx.TenantsPrefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("etcd list %s: %w", etcdx.TenantsPrefix, err)
	}
	want := map[uint64]bool{}
	for _, kv := range resp.Kvs {
		id, err := parseTenantKey(string(kv.Key))
		if err != nil {
			s.log.Warn("ignoring etcd key under the tenants prefix", "err", err)
			continue
		}
		info := s.tenantInfo(string(kv.Key), kv.Value)
		if !served(info) {
			continue // deregistered: not followed (docs/tenants.md, "Offboarding")
		}
		want[id] = true
		s.addTenant(runCtx, id, info)
	}
	for _, id := range s.Tenants() {
		if !want[id] {
			s.removeTenant(ctx, id)
		}
	}
	return resp.Header.Revision, nil
}

// watchTenants follows tenant registrations from rev on; when the watch
// breaks (compaction, leader loss) it lists again and resumes.
func (s *Service) watchTenants(ctx context.Context, rev int64) {
	defer s.watchWg.Done()
	backoff := s.cfg.RetryBackoff
	for ctx.Err() == nil {
		wch := s.deps.Etcd.Watch(clientv3.WithRequireLeader(ctx), etcdx.TenantsPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if err := resp.Err(); err != nil {
				s.log.Warn("tenant watch broke; listing again", "err", err)
				break
			}
			backoff = s.cfg.RetryBackoff
			for _, ev := range resp.Events {
				id, err := parseTenantKey(string(ev.Kv.Key))
				if err != nil {
					s.log.Warn("ignoring etcd key under the tenants prefix", "err", err)
					continue
				}
				var info *metav1.TenantInfo
				if ev.Type != clientv3.EventTypeDelete {
					info = s.tenantInfo(string(ev.Kv.Key), ev.Kv.Value)
				}
				if info == nil || !served(info) {
					s.removeTenant(ctx, id)
				} else {
					s.addTenant(ctx, id, info)
				}
			}
			rev = resp.Header.Revision
		}
		for ctx.Err() == nil {
			if !wait(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, s.cfg.MaxRetryBackoff)
			r, err := s.syncTenants(ctx, ctx)
			if err == nil {
				rev = r
				break
			}
			s.log.Warn("tenant listing failed", "err", err)
		}
	}
}

// addTenant starts following a tenant unless it is followed already.
func (s *Service) addTenant(ctx context.Context, id uint64, info *metav1.TenantInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tenants[id]; ok {
		return
	}
	t := newTenant(s, id)
	s.tenants[id] = t
	s.m.tenants.Set(float64(len(s.tenants)))
	s.log.Info("following tenant", "tenant", id, "cluster", info.GetClusterId(), "schema_snapshot_ts", info.GetSchemaSnapshotTs())
	t.start(ctx)
}

// removeTenant stops following a tenant that was unregistered. Its
// persisted history stays (the tenant's data is removed with its pool).
func (s *Service) removeTenant(ctx context.Context, id uint64) {
	s.mu.Lock()
	t := s.tenants[id]
	delete(s.tenants, id)
	s.m.tenants.Set(float64(len(s.tenants)))
	s.mu.Unlock()
	if t == nil {
		return
	}
	if err := t.stop(ctx); err != nil {
		s.log.Warn("tenant follower did not stop in time", "tenant", id, "err", err)
	}
	s.m.resolvedLag.DeleteLabelValues(strconv.FormatUint(id, 10))
	s.log.Info("stopped following tenant", "tenant", id)
}

// wait waits d unless ctx ends first; it reports whether d passed.
// waitMeta waits, after a poll that caught up, for the tenant's next
// publication notice (wake, taken before the poll; every sorter publishing
// the tenant's ranges bumps it, etcdx.PublishedKey) or the poll interval
// that applies: FallbackPollInterval while the notices are watched,
// PollInterval while the watch is broken. False when ctx ended.
func (s *Service) waitMeta(ctx context.Context, wake <-chan struct{}) bool {
	_, err := s.wake.Wait(ctx, wake, s.cfg.PollInterval, s.cfg.FallbackPollInterval)
	return err == nil
}

func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
