package metaserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/tenantcfg"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxTxnOps keeps each transaction under etcd's default limit of 128
// operations per branch (one slot left for the leadership compare).
const maxTxnOps = 120

// registerTenant is idempotent and safe to repeat after a crash at any step:
// the pool is written first (snapshot copy, then manifest version 1, both
// put-if-absent), etcd last, so etcd never names a range the pool lacks; a
// retry finds the manifest and makes etcd agree with it.
func (s *Service) registerTenant(ctx context.Context, t *term, req *metav1.RegisterTenantRequest) (*metav1.RegisterTenantResponse, error) {
	const method = "RegisterTenant"
	if req.ClusterId == 0 {
		return nil, s.refuse(method, reasonMalformed, codes.InvalidArgument, "cluster_id must be non-zero")
	}
	if req.TenantId == 0 {
		return nil, s.refuse(method, reasonMalformed, codes.InvalidArgument, "tenant_id must be non-zero")
	}
	n := int(req.InitialRanges)
	if n == 0 {
		n = s.cfg.InitialRanges
	}
	if n > maxInitialRanges {
		return nil, s.refuse(method, reasonMalformed, codes.InvalidArgument, "initial_ranges %d is more than %d; split ranges later instead", n, maxInitialRanges)
	}
	if err := tenantcfg.Validate(req.Settings); err != nil {
		return nil, s.refuse(method, reasonMalformed, codes.InvalidArgument, "tenant %d settings: %v", req.TenantId, err)
	}
	if n > s.cfg.MaxRangesPerTenant {
		return nil, s.refuse(method, reasonTooManyRanges, codes.ResourceExhausted,
			"initial_ranges %d is more than the %d active ranges a tenant may have (--max-ranges-per-tenant)", n, s.cfg.MaxRangesPerTenant)
	}
	s.regMu.Lock()
	defer s.regMu.Unlock()
	if info, err := s.existingTenant(ctx, req.ClusterId, req.TenantId); err != nil || info != nil {
		if err == nil && !tenantcfg.Resolve(info, s.cfg.TenantDefaults).Active() {
			return nil, s.refuse(method, reasonNotActive, codes.FailedPrecondition,
				"%s; register it again once it is gone (tistream admin tenants)", s.notActiveMessage(info))
		}
		return &metav1.RegisterTenantResponse{Tenant: info}, err
	}
	// The pool objects written before the tenant's record exists use the
	// key it registers with (libs/crypt: the pool wrapper's KeyFor reads
	// the record).
	if st := req.GetSettings(); st != nil && st.KekRef != nil {
		ctx = crypt.WithTenantKEK(ctx, req.TenantId, *st.KekRef)
	}
	began := s.now()
	snap, err := s.copySchemaSnapshot(ctx, req.ClusterId, req.TenantId, req.Settings)
	if err != nil {
		return nil, err
	}
	m, err := s.initialManifest(ctx, req.TenantId, snap, n)
	if err != nil {
		return nil, err
	}
	info := &metav1.TenantInfo{ClusterId: req.ClusterId, TenantId: req.TenantId, SchemaSnapshotTs: snap.Header.Ts,
		RegisteredUnixMs: s.now().UnixMilli(), State: metav1.TenantState_TENANT_STATE_ACTIVE, SettingsGeneration: 1}
	if !isEmptySettings(req.Settings) {
		info.Settings = req.Settings
	}
	var ops []clientv3.Op
	for _, d := range m.Ranges {
		ops = append(ops, clientv3.OpPut(etcdx.RangeKey(req.TenantId, d.RangeId), etcdx.Marshal(taskFromDescriptor(req.TenantId, d))))
	}
	// Ranges before the tenant: a tenant key always has its range tasks.
	for len(ops) >= maxTxnOps {
		if _, _, err := s.commit(ctx, t, nil, ops[:maxTxnOps-1]...); err != nil {
			return nil, fmt.Errorf("tenant %d: write range tasks: %w", req.TenantId, err)
		}
		ops = ops[maxTxnOps-1:]
	}
	ops = append(ops, clientv3.OpPut(etcdx.TenantKey(req.TenantId), etcdx.Marshal(info)))
	ok, _, err := s.commit(ctx, t, []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(etcdx.TenantKey(req.TenantId)), "=", 0)}, ops...)
	if err != nil {
		return nil, fmt.Errorf("tenant %d: write tenant and range tasks: %w", req.TenantId, err)
	}
	if !ok { // registered meanwhile (another leader's call)
		info, err := s.existingTenant(ctx, req.ClusterId, req.TenantId)
		if err == nil && info == nil {
			err = fmt.Errorf("tenant %d: registration raced and the tenant is gone", req.TenantId)
		}
		return &metav1.RegisterTenantResponse{Tenant: info}, err
	}
	s.log.Info("tenant registered", "cluster", req.ClusterId, "tenant", req.TenantId, "ranges", len(m.Ranges),
		"manifest_version", m.Version, "schema_snapshot_ts", snap.Header.Ts, "tables", snap.Header.TableCount,
		"took", s.now().Sub(began).Round(time.Millisecond))
	return &metav1.RegisterTenantResponse{Tenant: info, Created: true}, nil
}

// existingTenant returns the registered tenant, nil if it is not, or
// FAILED_PRECONDITION if it is registered for another cluster.
func (s *Service) existingTenant(ctx context.Context, cluster, tenant uint64) (*metav1.TenantInfo, error) {
	info := &metav1.TenantInfo{}
	found, _, err := etcdx.GetProto(ctx, s.etcd, etcdx.TenantKey(tenant), info)
	if err != nil || !found {
		return nil, err
	}
	if info.ClusterId != cluster {
		return nil, status.Errorf(codes.FailedPrecondition, "tenant %d is registered for cluster %d, not cluster %d", tenant, info.ClusterId, cluster)
	}
	return info, nil
}

// copySchemaSnapshot reads the tenant's first schema snapshot from its
// buffer (the one its settings name: the record does not exist yet) and
// copies it into the pool (put-if-absent: a repeat finds it there).
func (s *Service) copySchemaSnapshot(ctx context.Context, cluster, tenant uint64, settings *metav1.TenantSettings) (*schemasnap.Snapshot, error) {
	buffer, err := s.buffers.Open(ctx, tenantcfg.Resolve(&metav1.TenantInfo{TenantId: tenant, Settings: settings}, s.cfg.TenantDefaults))
	if err != nil {
		return nil, s.refuse("RegisterTenant", reasonNoBuffer, codes.FailedPrecondition, "%v", err)
	}
	prefix := layout.SchemaSnapshotPrefix(cluster, tenant)
	objs, _, err := buffer.List(ctx, prefix, "", 1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	if len(objs) == 0 {
		return nil, status.Errorf(codes.FailedPrecondition,
			"tenant %d of cluster %d has no schema snapshot under %s in the buffer (not found); write it before RegisterTenant", tenant, cluster, prefix)
	}
	key := objs[0].Key
	data, err := buffer.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read schema snapshot %s: %w", key, err)
	}
	snap, err := schemasnap.Decode(key, data)
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "schema snapshot %s is unreadable: %v", key, err)
	}
	if snap.Header.ClusterId != cluster || snap.Header.TenantId != tenant {
		return nil, status.Errorf(codes.FailedPrecondition, "schema snapshot %s belongs to cluster %d tenant %d",
			key, snap.Header.ClusterId, snap.Header.TenantId)
	}
	dst := layout.PoolSchemaSnapshotKey(tenant, snap.Header.Ts)
	if err := s.pool.PutIfAbsent(ctx, dst, data); err != nil && !errors.Is(err, objstore.ErrExists) {
		return nil, fmt.Errorf("copy schema snapshot to %s: %w", dst, err)
	}
	return snap, nil
}

// initialManifest publishes manifest version 1, or returns the latest
// manifest when one exists already (a registration that crashed after
// publishing): the pool is the source of truth for the ranges.
func (s *Service) initialManifest(ctx context.Context, tenant uint64, snap *schemasnap.Snapshot, n int) (*formatv1.Manifest, error) {
	m, err := pool.LoadManifest(ctx, s.pool, tenant)
	if err == nil {
		return m, nil
	}
	if !errors.Is(err, pool.ErrNoManifest) {
		return nil, fmt.Errorf("tenant %d: read manifest: %w", tenant, err)
	}
	m, err = pool.InitialManifest(tenant, snap, n, s.now())
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "schema snapshot of tenant %d: %v", tenant, err)
	}
	err = pool.PublishManifest(ctx, s.pool, m)
	if errors.Is(err, pool.ErrFenced) { // published meanwhile: take that one
		return pool.LoadManifest(ctx, s.pool, tenant)
	}
	if err != nil {
		return nil, fmt.Errorf("tenant %d: publish manifest: %w", tenant, err)
	}
	return m, nil
}

// taskFromDescriptor is the range task etcd holds for a manifest range that
// no sorter owns yet.
func taskFromDescriptor(tenant uint64, d *formatv1.RangeDescriptor) *metav1.RangeTask {
	t := &metav1.RangeTask{TenantId: tenant, RangeId: d.RangeId, StartKey: d.StartKey, EndKey: d.EndKey,
		OpenedAtTs: d.OpenedAtTs, State: metav1.RangeTask_STATE_ACTIVE, ParentRangeIds: d.ParentRangeIds}
	if d.State == formatv1.RangeDescriptor_STATE_RETIRED {
		t.State, t.SealWatermark, t.SuccessorRangeIds = metav1.RangeTask_STATE_RETIRED, d.RetiredAtTs, d.SuccessorRangeIds
	}
	return t
}
