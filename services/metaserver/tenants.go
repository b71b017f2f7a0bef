package metaserver

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/tenantcfg"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Per-tenant settings (docs/tenants.md). A tenant's own settings live in
// its TenantInfo record; unset fields take the fleet defaults of
// Config.TenantDefaults, resolved with tenantcfg.Resolve wherever they are
// used, so a changed fleet default reaches every tenant that did not
// choose its own.

// reasonNotActive: UpdateTenant (or another call that changes a tenant)
// named a deregistered tenant.
const reasonNotActive = "tenant_not_active"

// effective returns a tenant's effective settings from the mirror (the
// fleet defaults when the tenant is not in it).
func (s *Service) effective(tenant uint64) tenantcfg.Effective {
	info := &metav1.TenantInfo{TenantId: tenant}
	if e := s.state.tenants.get(etcdx.TenantKey(tenant)); e != nil {
		info = e.val
	}
	return tenantcfg.Resolve(info, s.cfg.TenantDefaults)
}

// retentionCutoff is the wall-clock time before which a tenant's published
// data has expired; ok is false when its retention is 0 (keep forever).
func (s *Service) retentionCutoff(tenant uint64, now time.Time) (time.Time, bool) {
	r := s.effective(tenant).Retention
	if r <= 0 {
		return time.Time{}, false
	}
	return now.Add(-r), true
}

// notActiveMessage is the refusal of a call about a deregistered tenant.
func (s *Service) notActiveMessage(info *metav1.TenantInfo) string {
	return tenantcfg.Resolve(info, s.cfg.TenantDefaults).NotServed()
}

// updateTenant changes a tenant's settings: fields set in req.Settings
// replace the tenant's, paths in req.Reset_ go back to the fleet default.
// The record is written with compare-and-swap on its revision (a
// concurrent change makes the call retry on the new record), and
// settings_generation is raised by one.
func (s *Service) updateTenant(ctx context.Context, t *term, req *metav1.UpdateTenantRequest) (*metav1.UpdateTenantResponse, error) {
	const method = "UpdateTenant"
	if req.TenantId == 0 {
		return nil, s.refuse(method, reasonMalformed, codes.InvalidArgument, "tenant_id must be non-zero")
	}
	if req.Settings == nil && len(req.Reset_) == 0 {
		return nil, s.refuse(method, reasonMalformed, codes.InvalidArgument, "nothing to change: give settings or reset paths")
	}
	for attempt := 0; ; attempt++ {
		info := &metav1.TenantInfo{}
		found, rev, err := etcdx.GetProto(ctx, s.etcd, etcdx.TenantKey(req.TenantId), info)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, s.refuse(method, reasonUnknownTenant, codes.NotFound, "tenant %d is not registered", req.TenantId)
		}
		if !tenantcfg.Resolve(info, s.cfg.TenantDefaults).Active() {
			return nil, s.refuse(method, reasonNotActive, codes.FailedPrecondition, "%s", s.notActiveMessage(info))
		}
		settings, err := tenantcfg.Update(info.Settings, req.Settings, req.Reset_)
		if err != nil {
			return nil, s.refuse(method, reasonMalformed, codes.InvalidArgument, "tenant %d settings: %v", req.TenantId, err)
		}
		next := proto.Clone(info).(*metav1.TenantInfo)
		next.Settings, next.SettingsGeneration = settings, info.SettingsGeneration+1
		if isEmptySettings(settings) {
			next.Settings = nil
		}
		ok, _, err := s.commit(ctx, t, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(etcdx.TenantKey(req.TenantId)), "=", rev)},
			clientv3.OpPut(etcdx.TenantKey(req.TenantId), etcdx.Marshal(next)))
		if err != nil {
			return nil, err
		}
		if ok {
			s.log.Info("tenant settings changed", "tenant", req.TenantId, "generation", next.SettingsGeneration,
				"settings", settingsLog(next.Settings), "reset", req.Reset_)
			return &metav1.UpdateTenantResponse{Tenant: next}, nil
		}
		if attempt >= 5 {
			return nil, fmt.Errorf("tenant %d changed concurrently %d times; retry", req.TenantId, attempt+1)
		}
	}
}

func isEmptySettings(s *metav1.TenantSettings) bool {
	return s == nil || proto.Size(s) == 0
}

// settingsLog renders settings for a log line (names of credentials, never
// secrets: the record holds none).
func settingsLog(s *metav1.TenantSettings) string {
	if isEmptySettings(s) {
		return "{} (fleet defaults)"
	}
	return prototext.MarshalOptions{}.Format(s)
}
