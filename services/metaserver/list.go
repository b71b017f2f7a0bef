package metaserver

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/tistream/tistream/libs/etcdx"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ListTenants and ListTasks read etcd directly (an admin sees its own
// writes at once); only the ranges' pool watermarks are cached.

func (s *Service) listTenants(ctx context.Context) (*metav1.ListTenantsResponse, error) {
	all, _, err := etcdx.ListProto(ctx, s.etcd, etcdx.TenantsPrefix, func() *metav1.TenantInfo { return &metav1.TenantInfo{} })
	if err != nil {
		return nil, err
	}
	resp := &metav1.ListTenantsResponse{FleetDefaults: s.cfg.TenantDefaults.Settings(),
		FleetDeregisterGraceMs: s.cfg.TenantDefaults.DeregisterGrace.Milliseconds()}
	for _, t := range all {
		resp.Tenants = append(resp.Tenants, t)
	}
	slices.SortFunc(resp.Tenants, func(a, b *metav1.TenantInfo) int { return cmp.Compare(a.TenantId, b.TenantId) })
	return resp, nil
}

func (s *Service) listTasks(ctx context.Context, req *metav1.ListTasksRequest) (*metav1.ListTasksResponse, error) {
	rangePrefix, streamPrefix, cpPrefix := etcdx.RangesPrefix, etcdx.StreamsPrefix, etcdx.CheckpointPrefix
	if req.TenantId != 0 {
		info, err := s.tenant(ctx, req.TenantId)
		if err != nil {
			return nil, err
		}
		if info == nil {
			return nil, status.Errorf(codes.NotFound, "tenant %d is not registered", req.TenantId)
		}
		rangePrefix, streamPrefix = etcdx.RangeTenantPrefix(req.TenantId), etcdx.StreamTenantPrefix(req.TenantId)
		cpPrefix = etcdx.CheckpointPrefix + strconv.FormatUint(req.TenantId, 10) + "/"
	}
	ranges, _, err := etcdx.ListProto(ctx, s.etcd, rangePrefix, func() *metav1.RangeTask { return &metav1.RangeTask{} })
	if err != nil {
		return nil, err
	}
	streams, _, err := etcdx.ListProto(ctx, s.etcd, streamPrefix, func() *metav1.StreamTask { return &metav1.StreamTask{} })
	if err != nil {
		return nil, err
	}
	cps, _, err := etcdx.ListProto(ctx, s.etcd, cpPrefix, func() *metav1.Checkpoint { return &metav1.Checkpoint{} })
	if err != nil {
		return nil, err
	}
	workers, _, err := etcdx.ListProto(ctx, s.etcd, etcdx.WorkersPrefix, func() *metav1.WorkerInfo { return &metav1.WorkerInfo{} })
	if err != nil {
		return nil, err
	}
	resp := &metav1.ListTasksResponse{Ranges: s.rangeStatuses(ctx, ranges, workers)}
	for _, st := range streams {
		ss := &metav1.StreamStatus{Task: st,
			OwnerAddr:  addrOf(workers, metav1.WorkerKind_WORKER_KIND_DISPATCHER, st.Owner),
			Checkpoint: cps[etcdx.CheckpointKey(st.TenantId, st.StoreId)]}
		var done uint64
		if ss.Checkpoint != nil {
			done = ss.Checkpoint.Seq
		}
		if st.LatestSeq > done {
			ss.PendingFiles = st.LatestSeq - done
		}
		resp.Streams = append(resp.Streams, ss)
	}
	slices.SortFunc(resp.Streams, func(a, b *metav1.StreamStatus) int {
		return cmp.Or(cmp.Compare(a.Task.TenantId, b.Task.TenantId), cmp.Compare(a.Task.StoreId, b.Task.StoreId))
	})
	return resp, nil
}

// rangeStatuses adds owner addresses, published watermarks, lag and the
// load the owner reports for the range at its epoch (loadOf). A
// retired range reports its seal watermark and no lag; a range without a
// log yet reports watermark 0 and its lag since it was opened.
func (s *Service) rangeStatuses(ctx context.Context, ranges map[string]*metav1.RangeTask, workers map[string]*metav1.WorkerInfo) []*metav1.RangeStatus {
	var refs []rangeRef
	for _, r := range ranges {
		if r.State != metav1.RangeTask_STATE_RETIRED {
			refs = append(refs, rangeRef{r.TenantId, r.RangeId})
		}
	}
	wms := s.wm.get(ctx, refs)
	now := s.now()
	out := make([]*metav1.RangeStatus, 0, len(ranges))
	for _, r := range ranges {
		rs := &metav1.RangeStatus{Task: r, OwnerAddr: addrOf(workers, metav1.WorkerKind_WORKER_KIND_SORTER, r.Owner),
			Load: loadOf(workers, r)}
		if r.State == metav1.RangeTask_STATE_RETIRED {
			rs.PublishedWatermark = r.SealWatermark
		} else if p := wms[rangeRef{r.TenantId, r.RangeId}]; p.ok {
			rs.PublishedWatermark = p.wm
			rs.LagSeconds = lagSeconds(now, p.wm)
		} else if r.OpenedAtTs > 0 {
			rs.LagSeconds = lagSeconds(now, r.OpenedAtTs)
		}
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b *metav1.RangeStatus) int {
		return cmp.Or(cmp.Compare(a.Task.TenantId, b.Task.TenantId), cmp.Compare(a.Task.RangeId, b.Task.RangeId))
	})
	return out
}

// lagSeconds is how far the wall clock is ahead of a TSO's physical time
// (ts >> 18 milliseconds), never negative.
func lagSeconds(now time.Time, ts uint64) float64 {
	lag := now.UnixMilli() - int64(ts>>18)
	return float64(max(lag, 0)) / 1000
}

// loadOf is the load a range's owner reports for it at its current epoch,
// nil when it reports none (a report of an earlier epoch is stale).
func loadOf(workers map[string]*metav1.WorkerInfo, r *metav1.RangeTask) *metav1.RangeLoad {
	if r.Owner == "" {
		return nil
	}
	w, ok := workers[etcdx.WorkerKey(metav1.WorkerKind_WORKER_KIND_SORTER, r.Owner)]
	if !ok {
		return nil
	}
	for _, rl := range w.Ranges {
		if rl.TenantId == r.TenantId && rl.RangeId == r.RangeId && rl.Epoch == r.Epoch {
			return rl
		}
	}
	return nil
}

func addrOf(workers map[string]*metav1.WorkerInfo, kind metav1.WorkerKind, id string) string {
	if id == "" {
		return ""
	}
	if w, ok := workers[etcdx.WorkerKey(kind, id)]; ok {
		return w.Addr
	}
	return ""
}
