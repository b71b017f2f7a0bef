package metaserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/tenantcfg"
	"github.com/tistream/tistream/libs/usage"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Offboarding (docs/tenants.md, "Offboarding").
//
// DeregisterTenant moves the tenant to DEREGISTERED with delete_after =
// now + grace and, in the same etcd transaction, deletes its stream and
// range tasks: the dispatchers and sorters that ran them let go at once
// (a deleted task is not theirs), the scheduler has nothing of the tenant
// to assign, NotifyStoreFile refuses the tenant's notifications (so no
// stream task is created again), and SplitRange/MergeRanges find no
// range. The api-servers and schema registries follow the tenant record
// (tenantcfg.Watcher) and refuse its pulls.
//
// The leader's offboard loop then, every --offboard-interval:
//
//   - deletes any task of a deregistered tenant that appeared meanwhile (a
//     notification coalesced before the deregistration);
//   - moves a DEREGISTERED tenant whose grace is over to DELETING;
//   - deletes a DELETING tenant, each step idempotent, so a new leader
//     resumes what a crash left: the tenant's objects in its data change
//     buffer (layout.TenantBufferPrefix), everything under its pool folder
//     (layout.PoolTenantPrefix: manifests, ranges, groups, snapshots,
//     schema history, usage) once its usage is archived (archiveUsage),
//     then in one transaction its etcd keys
//     (ranges, streams, checkpoints, publication notices) and the tenant
//     record last. Between the two, its key is crypto-shredded (shredKey):
//     a local:NAME key no other tenant uses is deleted from the leader's
//     --key-dir. A registration of the same id afterwards starts clean.

// deleteWorkers bound the object deletions in flight for one tenant.
const deleteWorkers = 8

type offboardMetrics struct {
	deleted *prometheus.CounterVec // store: buffer, pool
	tenants *prometheus.CounterVec // phase: deregistered, deleting, deleted
	errors  prometheus.Counter
	keys    prometheus.Counter // local keys destroyed
}

func newOffboardMetrics(reg prometheus.Registerer) *offboardMetrics {
	f := promauto.With(reg)
	return &offboardMetrics{
		deleted: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_meta_offboard_deleted_objects_total",
			Help: "Objects of offboarded tenants deleted, by store (buffer: the data change buffer, pool: the committed data pool)."}, []string{"store"}),
		tenants: f.NewCounterVec(prometheus.CounterOpts{Name: "tistream_meta_offboard_tenants_total",
			Help: "Tenants that entered an offboarding phase on this leader: deregistered, deleting (grace over), deleted (record gone)."}, []string{"phase"}),
		errors: f.NewCounter(prometheus.CounterOpts{Name: "tistream_meta_offboard_errors_total",
			Help: "Failed offboarding steps (retried next round)."}),
		keys: f.NewCounter(prometheus.CounterOpts{Name: "tistream_meta_offboard_keys_destroyed_total",
			Help: "Local keys (local:NAME) of offboarded tenants deleted from the leader's --key-dir (crypto-shredding)."}),
	}
}

// deregisterTenant starts offboarding. Repeating it for a tenant already
// deregistered changes nothing and returns its record.
func (s *Service) deregisterTenant(ctx context.Context, t *term, req *metav1.DeregisterTenantRequest) (*metav1.DeregisterTenantResponse, error) {
	const method = "DeregisterTenant"
	if req.TenantId == 0 {
		return nil, s.refuse(method, reasonMalformed, codes.InvalidArgument, "tenant_id must be non-zero")
	}
	grace := s.cfg.TenantDefaults.DeregisterGrace
	if req.GraceMs != nil {
		if *req.GraceMs < 0 {
			return nil, s.refuse(method, reasonMalformed, codes.InvalidArgument, "grace_ms %d is negative", *req.GraceMs)
		}
		grace = time.Duration(*req.GraceMs) * time.Millisecond
	}
	for attempt := 0; ; attempt++ {
		info := &metav1.TenantInfo{}
		key := etcdx.TenantKey(req.TenantId)
		found, rev, err := etcdx.GetProto(ctx, s.etcd, key, info)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, s.refuse(method, reasonUnknownTenant, codes.NotFound, "tenant %d is not registered", req.TenantId)
		}
		if !tenantcfg.Resolve(info, s.cfg.TenantDefaults).Active() {
			return &metav1.DeregisterTenantResponse{Tenant: info}, nil
		}
		now := s.now()
		next := proto.Clone(info).(*metav1.TenantInfo)
		next.State = metav1.TenantState_TENANT_STATE_DEREGISTERED
		next.DeregisteredUnixMs, next.DeleteAfterUnixMs = now.UnixMilli(), now.Add(grace).UnixMilli()
		ok, _, err := s.commit(ctx, t, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rev)},
			clientv3.OpPut(key, etcdx.Marshal(next)),
			clientv3.OpDelete(etcdx.StreamTenantPrefix(req.TenantId), clientv3.WithPrefix()),
			clientv3.OpDelete(etcdx.RangeTenantPrefix(req.TenantId), clientv3.WithPrefix()))
		if err != nil {
			return nil, err
		}
		if ok {
			s.ob.tenants.WithLabelValues("deregistered").Inc()
			s.log.Info("tenant deregistered: its streams and ranges are stopped, its pulls refused", "tenant", req.TenantId,
				"grace", grace, "delete_after", time.UnixMilli(next.DeleteAfterUnixMs).UTC())
			poke(s.offboardKick)
			return &metav1.DeregisterTenantResponse{Tenant: next}, nil
		}
		if attempt >= 5 {
			return nil, fmt.Errorf("tenant %d changed concurrently %d times; retry", req.TenantId, attempt+1)
		}
	}
}

// offboardLoop runs offboarding rounds while leading: every interval and
// when a deregistration pokes it.
func (s *Service) offboardLoop(t *term) {
	tick := time.NewTicker(s.cfg.OffboardInterval)
	defer tick.Stop()
	for {
		if s.state.ready() {
			if err := s.offboardRound(t, s.now()); errors.Is(err, errNotLeader) || t.ctx.Err() != nil {
				return
			}
		}
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		case <-s.offboardKick:
		}
	}
}

// offboardRound handles every tenant that is not active.
func (s *Service) offboardRound(t *term, now time.Time) error {
	for _, e := range s.state.tenants.list(etcdx.TenantsPrefix) {
		info := e.val
		if tenantcfg.Resolve(info, s.cfg.TenantDefaults).Active() {
			continue
		}
		err := s.offboardTenant(t, e, now)
		if errors.Is(err, errNotLeader) || t.ctx.Err() != nil {
			return errNotLeader
		}
		if err != nil {
			s.ob.errors.Inc()
			s.log.Warn("offboarding: step failed; retrying next round", "tenant", info.TenantId, "state", info.State, "err", err)
		}
	}
	return nil
}

func (s *Service) offboardTenant(t *term, e *entry[*metav1.TenantInfo], now time.Time) error {
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Minute)
	defer cancel()
	info := e.val
	if err := s.dropTasks(ctx, t, info.TenantId); err != nil {
		return err
	}
	if info.State == metav1.TenantState_TENANT_STATE_DEREGISTERED {
		if now.UnixMilli() < info.DeleteAfterUnixMs {
			return nil
		}
		next := proto.Clone(info).(*metav1.TenantInfo)
		next.State = metav1.TenantState_TENANT_STATE_DELETING
		ok, _, err := s.commit(ctx, t, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(e.key), "=", e.modRev)},
			clientv3.OpPut(e.key, etcdx.Marshal(next)))
		if err != nil || !ok {
			return err // changed meanwhile: the next round looks again
		}
		s.ob.tenants.WithLabelValues("deleting").Inc()
		s.log.Info("offboarding: grace over, deleting the tenant's data", "tenant", info.TenantId,
			"deregistered", time.UnixMilli(info.DeregisteredUnixMs).UTC(), "delete_after", time.UnixMilli(info.DeleteAfterUnixMs).UTC())
		return s.deleteTenant(ctx, t, info.TenantId)
	}
	return s.deleteTenant(ctx, t, info.TenantId)
}

// dropTasks deletes the stream and range tasks a deregistered tenant still
// has in the mirror (created by a notification coalesced before the
// deregistration).
func (s *Service) dropTasks(ctx context.Context, t *term, tenant uint64) error {
	if len(s.state.streams.list(etcdx.StreamTenantPrefix(tenant))) == 0 && len(s.state.ranges.list(etcdx.RangeTenantPrefix(tenant))) == 0 {
		return nil
	}
	_, _, err := s.commit(ctx, t, nil,
		clientv3.OpDelete(etcdx.StreamTenantPrefix(tenant), clientv3.WithPrefix()),
		clientv3.OpDelete(etcdx.RangeTenantPrefix(tenant), clientv3.WithPrefix()))
	if err == nil {
		s.log.Info("offboarding: deleted tasks of a deregistered tenant", "tenant", tenant)
	}
	return err
}

// deleteTenant deletes a DELETING tenant's data, the record last. It reads
// the record again (CAS on its revision at the end), so it is safe to run
// after any crash.
func (s *Service) deleteTenant(ctx context.Context, t *term, tenant uint64) error {
	key := etcdx.TenantKey(tenant)
	info := &metav1.TenantInfo{}
	found, rev, err := etcdx.GetProto(ctx, s.etcd, key, info)
	if err != nil || !found {
		return err
	}
	if info.State != metav1.TenantState_TENANT_STATE_DELETING {
		return nil
	}
	eff := tenantcfg.Resolve(info, s.cfg.TenantDefaults)
	buffer, closeBuffer, err := s.tenantBuffer(ctx, eff)
	if err != nil {
		return fmt.Errorf("open the tenant's data change buffer: %w", err)
	}
	defer closeBuffer()
	start := time.Now()
	if err := s.archiveUsage(ctx, info); err != nil {
		return err
	}
	nb, err := s.deletePrefix(ctx, tenant, "buffer", buffer, layout.TenantBufferPrefix(info.ClusterId, tenant))
	if err != nil {
		return err
	}
	np, err := s.deletePrefix(ctx, tenant, "pool", s.pool, layout.PoolTenantPrefix(tenant))
	if err != nil {
		return err
	}
	// Anything written after the listings (a worker that had not let go
	// yet) is found by the next round: the record stays until both are
	// empty.
	for _, c := range []struct {
		store  objstore.Store
		prefix string
	}{{buffer, layout.TenantBufferPrefix(info.ClusterId, tenant)}, {s.pool, layout.PoolTenantPrefix(tenant)}} {
		objs, _, err := c.store.List(ctx, c.prefix, "", 1)
		if err != nil {
			return fmt.Errorf("list %s in %s: %w", c.prefix, c.store, err)
		}
		if len(objs) > 0 {
			return fmt.Errorf("%s in %s has objects again (%s); deleting again next round", c.prefix, c.store, objs[0].Key)
		}
	}
	if err := s.shredKey(ctx, info, eff.KEKRef); err != nil {
		return err
	}
	ok, _, err := s.commit(ctx, t, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rev)},
		clientv3.OpDelete(etcdx.StreamTenantPrefix(tenant), clientv3.WithPrefix()),
		clientv3.OpDelete(etcdx.RangeTenantPrefix(tenant), clientv3.WithPrefix()),
		clientv3.OpDelete(etcdx.CheckpointPrefix+fmt.Sprint(tenant)+"/", clientv3.WithPrefix()),
		clientv3.OpDelete(etcdx.PublishedPrefix+fmt.Sprint(tenant)+"/", clientv3.WithPrefix()),
		clientv3.OpDelete(key))
	if err != nil || !ok {
		return err
	}
	s.ob.tenants.WithLabelValues("deleted").Inc()
	s.log.Info("offboarding: tenant deleted; the id may be registered again", "tenant", tenant, "cluster", info.ClusterId,
		"buffer_objects", nb, "pool_objects", np, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// deletePrefix deletes every object under prefix, a page at a time, with a
// few deletions in flight; it returns how many it deleted.
func (s *Service) deletePrefix(ctx context.Context, tenant uint64, what string, store objstore.Store, prefix string) (int, error) {
	total := 0
	for {
		objs, _, err := store.List(ctx, prefix, "", objstore.DefaultListLimit)
		if err != nil {
			return total, fmt.Errorf("list %s in %s: %w", prefix, store, err)
		}
		if len(objs) == 0 {
			s.log.Info("offboarding: deleted the tenant's objects", "tenant", tenant, "store", what, "prefix", prefix, "objects", total)
			return total, nil
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			first error
			next  = make(chan string)
		)
		for range deleteWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range next {
					err := store.Delete(ctx, k)
					mu.Lock()
					if err != nil && first == nil {
						first = fmt.Errorf("delete %s from %s: %w", k, store, err)
					} else if err == nil {
						total++
						s.ob.deleted.WithLabelValues(what).Inc()
					}
					mu.Unlock()
				}
			}()
		}
	feed:
		for _, o := range objs {
			select {
			case next <- o.Key:
			case <-ctx.Done():
				break feed
			}
		}
		close(next)
		wg.Wait()
		if first == nil {
			first = ctx.Err()
		}
		if first != nil {
			return total, first
		}
		s.log.Info("offboarding: deleting the tenant's objects", "tenant", tenant, "store", what, "deleted", total)
	}
}

// tenantBuffer is the store of the tenant's data change buffer: the
// service's own when the tenant has no buffer_url of its own.
func (s *Service) tenantBuffer(ctx context.Context, e tenantcfg.Effective) (objstore.Store, func(), error) {
	st, err := s.buffers.Open(ctx, e)
	return st, func() { s.buffers.Changed(e, false) }, err // the tenant is going: its store may go
}

// archiveUsage keeps a DELETING tenant's usage past the deletion of its
// folder (docs/tenants.md, "Offboarding"): a last sample (its stored bytes
// before anything is deleted, its checkpoints' ingest totals, which no
// stream moves any more), a rollup of every hour not rolled up yet (the
// current one included), and a copy of the hourly records to the usage
// archive under its deregistration time. It runs before anything is
// deleted and does nothing once the archive's marker is written, so a
// crash anywhere resumes it: the copies are put-if-absent of the same
// bytes, a new sample in an hour already rolled up is not counted, and one
// in a later hour adds stored bytes but no ingest (the totals telescope).
func (s *Service) archiveUsage(ctx context.Context, info *metav1.TenantInfo) error {
	tenant, dereg := info.TenantId, info.DeregisteredUnixMs
	done, err := usage.Archived(ctx, s.pool, tenant, dereg)
	if err != nil || done {
		return err
	}
	if err := s.sampleUsage(ctx, tenant, info.ClusterId); err != nil {
		return fmt.Errorf("the last usage sample: %w", err)
	}
	hours, err := usage.FinalRollup(ctx, s.pool, tenant, info.RegisteredUnixMs, s.now())
	s.um.rolled.Add(float64(len(hours)))
	if err != nil {
		return fmt.Errorf("the last usage rollup: %w", err)
	}
	n, err := usage.Archive(ctx, s.pool, tenant, dereg)
	if err != nil {
		return err
	}
	s.log.Info("offboarding: the tenant's usage is archived", "tenant", tenant, "hours", n,
		"prefix", layout.UsageArchivePrefix(tenant, dereg), "kept_for", s.cfg.Usage.ArchiveRetention)
	return nil
}

// shredKey crypto-shreds a DELETING tenant's key once its data is deleted
// (docs/tenants.md, "Offboarding"): a local:NAME key file is deleted from
// the leader's key directory unless another registered tenant (in any
// state) or the fleet's default key names the same key; an aws-kms: key is
// the customer's, which the fleet cannot and must not delete: it is
// logged for the customer to schedule its deletion. Idempotent: a key
// already gone (a resumed offboarding) is logged and passed.
func (s *Service) shredKey(ctx context.Context, info *metav1.TenantInfo, ref string) error {
	tenant := info.TenantId
	if ref == "" {
		return nil
	}
	scheme, _, _ := strings.Cut(ref, ":")
	if scheme != crypt.LocalScheme {
		s.log.Warn("offboarding: the tenant's key is not the fleet's to destroy; its owner should schedule its deletion to crypto-shred any copy of the data",
			"tenant", tenant, "kek_ref", ref)
		return nil
	}
	if ref == s.cfg.TenantDefaults.KEKRef {
		s.log.Info("offboarding: the tenant's key is the fleet's default key (--tenant-default-kek); kept", "tenant", tenant, "kek_ref", ref)
		return nil
	}
	others, _, err := etcdx.ListProto(ctx, s.etcd, etcdx.TenantsPrefix, func() *metav1.TenantInfo { return &metav1.TenantInfo{} })
	if err != nil {
		return fmt.Errorf("list the tenants sharing key %s: %w", ref, err)
	}
	var sharing []uint64
	for _, o := range others {
		if o.TenantId != tenant && tenantcfg.Resolve(o, s.cfg.TenantDefaults).KEKRef == ref {
			sharing = append(sharing, o.TenantId)
		}
	}
	if len(sharing) > 0 {
		slices.Sort(sharing)
		s.log.Info("offboarding: the tenant's key is shared with other tenants; kept", "tenant", tenant, "kek_ref", ref, "tenants", sharing)
		return nil
	}
	if s.keyDir == "" {
		s.log.Warn("offboarding: the tenant's local key cannot be destroyed: this meta-server has no --key-dir; delete the key file by hand",
			"tenant", tenant, "kek_ref", ref)
		return nil
	}
	destroyed, err := crypt.DestroyLocalKey(s.keyDir, ref)
	if err != nil {
		return fmt.Errorf("destroy key %s: %w", ref, err)
	}
	if !destroyed {
		s.log.Info(fmt.Sprintf("tenant %d: key %s already destroyed", tenant, ref), "tenant", tenant, "kek_ref", ref, "key_dir", s.keyDir)
		return nil
	}
	s.ob.keys.Inc()
	s.log.Info(fmt.Sprintf("tenant %d: key %s destroyed", tenant, ref), "tenant", tenant, "kek_ref", ref, "key_dir", s.keyDir,
		"note", "copies of the key file on other hosts or in backups must be deleted there")
	return nil
}
