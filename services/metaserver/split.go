package metaserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/pool"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// splitRange starts a split (docs/fleet.md, "Range split and merge"): the
// two children and the parent's SEALING state in one transaction. The
// parent's sorter does the rest; sealLoop completes it.
func (s *Service) splitRange(ctx context.Context, t *term, req *metav1.SplitRangeRequest) (*metav1.SplitRangeResponse, error) {
	const method = "SplitRange"
	if req.TenantId == 0 || req.RangeId == 0 {
		return nil, s.refuse(method, reasonMalformed, codes.InvalidArgument, "tenant_id and range_id must be non-zero")
	}
	if len(req.SplitKey) == 0 {
		return nil, s.refuse(method, reasonMalformed, codes.InvalidArgument, "split_key is required")
	}
	if err := s.checkKey(method, "split_key", req.SplitKey); err != nil {
		return nil, err
	}
	if err := s.rangeOpAllowed(ctx, method, req.TenantId); err != nil {
		return nil, err
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	p, err := s.activeRange(ctx, req.TenantId, req.RangeId)
	if err != nil {
		return nil, err
	}
	r := p.val
	if bytes.Compare(req.SplitKey, r.StartKey) <= 0 || (len(r.EndKey) > 0 && bytes.Compare(req.SplitKey, r.EndKey) >= 0) {
		return nil, status.Errorf(codes.InvalidArgument, "split_key %x is not strictly inside range %d %s: it must be above the start key and below the end key",
			req.SplitKey, r.RangeId, span(r.StartKey, r.EndKey))
	}
	ids, active, err := s.allocRangeIDs(ctx, req.TenantId, 2)
	if err != nil {
		return nil, err
	}
	if limit, by := s.rangeLimit(req.TenantId); active+1 > limit { // the parent goes, two children come
		return nil, s.tooManyRanges(req.TenantId, active, by)
	}
	c1 := &metav1.RangeTask{TenantId: r.TenantId, RangeId: ids[0], StartKey: r.StartKey, EndKey: req.SplitKey,
		State: metav1.RangeTask_STATE_ACTIVE, ParentRangeIds: []uint64{r.RangeId}}
	c2 := &metav1.RangeTask{TenantId: r.TenantId, RangeId: ids[1], StartKey: req.SplitKey, EndKey: r.EndKey,
		State: metav1.RangeTask_STATE_ACTIVE, ParentRangeIds: []uint64{r.RangeId}}
	sealing := proto.Clone(r).(*metav1.RangeTask)
	sealing.State, sealing.SuccessorRangeIds = metav1.RangeTask_STATE_SEALING, ids
	if err := s.startSeal(ctx, t, []*entry[*metav1.RangeTask]{p}, []*metav1.RangeTask{sealing}, c1, c2); err != nil {
		return nil, err
	}
	s.m.rangeOps.WithLabelValues("split", "started").Inc()
	s.log.Info("range split started", "tenant", r.TenantId, "range", r.RangeId, "split_key", fmt.Sprintf("%x", req.SplitKey), "children", ids)
	return &metav1.SplitRangeResponse{NewRangeIds: ids}, nil
}

// mergeRanges starts a merge: B moves to A's sorter (epoch+1) in the same
// transaction that creates the child and marks both SEALING, so the two
// are never sealing on different sorters.
func (s *Service) mergeRanges(ctx context.Context, t *term, req *metav1.MergeRangesRequest) (*metav1.MergeRangesResponse, error) {
	const method = "MergeRanges"
	if req.TenantId == 0 || req.LeftRangeId == 0 || req.RightRangeId == 0 {
		return nil, s.refuse(method, reasonMalformed, codes.InvalidArgument, "tenant_id, left_range_id and right_range_id must be non-zero")
	}
	if req.LeftRangeId == req.RightRangeId {
		return nil, s.refuse(method, reasonMalformed, codes.InvalidArgument, "cannot merge range %d with itself", req.LeftRangeId)
	}
	if err := s.rangeOpAllowed(ctx, method, req.TenantId); err != nil {
		return nil, err
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	a, err := s.activeRange(ctx, req.TenantId, req.LeftRangeId)
	if err != nil {
		return nil, err
	}
	b, err := s.activeRange(ctx, req.TenantId, req.RightRangeId)
	if err != nil {
		return nil, err
	}
	if len(a.val.EndKey) == 0 || !bytes.Equal(a.val.EndKey, b.val.StartKey) {
		return nil, status.Errorf(codes.InvalidArgument, "ranges %d %s and %d %s are not adjacent: the left range's end key must be the right range's start key",
			a.val.RangeId, span(a.val.StartKey, a.val.EndKey), b.val.RangeId, span(b.val.StartKey, b.val.EndKey))
	}
	owner := a.val.Owner
	if s.state.workerAddr(metav1.WorkerKind_WORKER_KIND_SORTER, owner) == "" {
		return nil, status.Errorf(codes.FailedPrecondition, "range %d has no live sorter to merge on; retry once it is assigned", a.val.RangeId)
	}
	ids, _, err := s.allocRangeIDs(ctx, req.TenantId, 1)
	if err != nil {
		return nil, err
	}
	c := &metav1.RangeTask{TenantId: req.TenantId, RangeId: ids[0], StartKey: a.val.StartKey, EndKey: b.val.EndKey,
		State: metav1.RangeTask_STATE_ACTIVE, ParentRangeIds: []uint64{a.val.RangeId, b.val.RangeId}}
	sa := proto.Clone(a.val).(*metav1.RangeTask)
	sb := proto.Clone(b.val).(*metav1.RangeTask)
	for _, r := range []*metav1.RangeTask{sa, sb} {
		r.State, r.SuccessorRangeIds = metav1.RangeTask_STATE_SEALING, ids
	}
	if sb.Owner != owner {
		sb.Owner, sb.Epoch = owner, sb.Epoch+1
	}
	if err := s.startSeal(ctx, t, []*entry[*metav1.RangeTask]{a, b}, []*metav1.RangeTask{sa, sb}, c); err != nil {
		return nil, err
	}
	s.m.rangeOps.WithLabelValues("merge", "started").Inc()
	s.log.Info("range merge started", "tenant", req.TenantId, "left", a.val.RangeId, "right", b.val.RangeId,
		"child", c.RangeId, "owner", owner, "moved_right", b.val.Owner != owner)
	return &metav1.MergeRangesResponse{NewRangeId: c.RangeId}, nil
}

// startSeal writes the parents' new state and creates the children, if the
// parents are unchanged and the children's ids unused.
func (s *Service) startSeal(ctx context.Context, t *term, parents []*entry[*metav1.RangeTask], sealing []*metav1.RangeTask, children ...*metav1.RangeTask) error {
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	for i, p := range parents {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(p.key), "=", p.modRev))
		ops = append(ops, clientv3.OpPut(p.key, etcdx.Marshal(sealing[i])))
	}
	for _, c := range children {
		key := etcdx.RangeKey(c.TenantId, c.RangeId)
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
		ops = append(ops, clientv3.OpPut(key, etcdx.Marshal(c)))
	}
	ok, _, err := s.commit(ctx, t, cmps, ops...)
	if err != nil {
		return err
	}
	if !ok {
		return status.Error(codes.Aborted, "the ranges changed while the request was checked (reassigned meanwhile); retry")
	}
	return nil
}

// rangeOpAllowed admits a split or merge of a registered tenant within its
// --range-ops-per-minute. Every call that gets this far takes a token,
// whether the operation then succeeds or not.
func (s *Service) rangeOpAllowed(ctx context.Context, method string, tenant uint64) error {
	info, err := s.tenant(ctx, tenant)
	if err != nil {
		return err
	}
	if info == nil { // no bucket for a tenant that does not exist
		return s.refuse(method, reasonUnknownTenant, codes.NotFound, "tenant %d is not registered", tenant)
	}
	return s.takeRangeOp(method, tenant)
}

// activeRange reads a range task from etcd (not the mirror: an admin's
// request must see its own previous writes) and checks that it may be split
// or merged.
func (s *Service) activeRange(ctx context.Context, tenant, id uint64) (*entry[*metav1.RangeTask], error) {
	if info, err := s.tenant(ctx, tenant); err != nil || info == nil {
		if err == nil {
			err = status.Errorf(codes.NotFound, "tenant %d is not registered", tenant)
		}
		return nil, err
	}
	key := etcdx.RangeKey(tenant, id)
	r := &metav1.RangeTask{}
	found, rev, err := etcdx.GetProto(ctx, s.etcd, key, r)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, status.Errorf(codes.NotFound, "range %d of tenant %d does not exist", id, tenant)
	}
	if r.State != metav1.RangeTask_STATE_ACTIVE {
		return nil, status.Errorf(codes.FailedPrecondition, "range %d of tenant %d is %s; only an ACTIVE range can be split or merged",
			id, tenant, r.State)
	}
	for _, p := range r.ParentRangeIds {
		parent := &metav1.RangeTask{}
		found, _, err := etcdx.GetProto(ctx, s.etcd, etcdx.RangeKey(tenant, p), parent)
		if err != nil {
			return nil, err
		}
		if found && parent.State != metav1.RangeTask_STATE_RETIRED {
			return nil, status.Errorf(codes.FailedPrecondition, "range %d of tenant %d does not exist in the pool yet: its parent %d is still %s",
				id, tenant, p, parent.State)
		}
	}
	return &entry[*metav1.RangeTask]{key: key, val: r, modRev: rev}, nil
}

// allocRangeIDs returns n unused range ids: above the latest manifest's
// next_range_id (the pool is the source of truth for ids) and above every
// range task in etcd (children of operations still in flight are in etcd
// only). Two concurrent allocations are caught by the create-revision
// compares of startSeal. It also counts the tenant's ACTIVE range tasks
// (rangeLimit), read from etcd like the ids: the mirror may
// not show a split that just started.
func (s *Service) allocRangeIDs(ctx context.Context, tenant uint64, n int) (ids []uint64, active int, err error) {
	m, err := pool.LoadManifest(ctx, s.pool, tenant)
	if err != nil {
		if errors.Is(err, pool.ErrNoManifest) {
			return nil, 0, status.Errorf(codes.FailedPrecondition, "tenant %d has no manifest in the pool; repeat RegisterTenant", tenant)
		}
		return nil, 0, fmt.Errorf("tenant %d: read manifest: %w", tenant, err)
	}
	next := m.NextRangeId
	resp, err := s.etcd.Get(ctx, etcdx.RangeTenantPrefix(tenant), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("tenant %d: list range tasks: %w", tenant, err)
	}
	for _, kv := range resp.Kvs {
		_, id, err := etcdx.ParseTwoIDs(string(kv.Key), etcdx.RangesPrefix)
		if err != nil {
			return nil, 0, err
		}
		next = max(next, id+1)
		r := &metav1.RangeTask{}
		if err := proto.Unmarshal(kv.Value, r); err != nil {
			return nil, 0, fmt.Errorf("range task %s: %w", kv.Key, err)
		}
		if r.State == metav1.RangeTask_STATE_ACTIVE {
			active++
		}
	}
	ids = make([]uint64, n)
	for i := range ids {
		ids[i] = next + uint64(i)
	}
	return ids, active, nil
}

// span renders [start, end) in hex for messages ("" end = unbounded).
func span(start, end []byte) string {
	if len(end) == 0 {
		return fmt.Sprintf("[%x, ∞)", start)
	}
	return fmt.Sprintf("[%x, %x)", start, end)
}
