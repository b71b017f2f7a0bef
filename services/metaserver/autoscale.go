package metaserver

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/tistream/tistream/libs/etcdx"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The autoscaler (docs/fleet.md, "Automatic split, merge and balance"),
// leader only. The sorters report each held range's rows per second, a
// proposed split key and whether it is catching up (WorkerInfo.ranges,
// every --load-interval). From these
//
//   - every --autoscale-interval, autoscaleRound splits a range hotter
//     than --split-rows-per-sec at its sorter's key when another sorter
//     could take half of it (spreads), a range over the CPU or memory
//     bound in any case, and merges two
//     adjacent ranges that have both stayed below --merge-rows-per-sec for
//     --merge-after (remembered in the leader's memory: a new leader starts
//     counting again) and whose sum is below a quarter of the split bound,
//     through the same paths as SplitRange and MergeRanges (so within
//     --range-ops-per-minute and the tenant's range limit: its max_ranges
//     quota, else --max-ranges-per-tenant);
//   - every scheduling round, plan moves a range from the most to the least
//     loaded sorter beyond a hysteresis, within --max-moves-per-minute;
//   - draining workers (their own flag at a graceful stop, or a
//     DrainWorker request) give their tasks away and get none.
//
// A range that is catching up is neither split nor moved for balance.
//
// Hot is over any split bound: --split-rows-per-sec, --split-cpu-share (the
// share of a core its applies and flushes take), --split-memory-bytes (what
// its sort buffer and matcher hold). Balancing and merging use a range's
// score (loadBounds.score): its rows per second or its CPU share weighed in
// rows per second, whichever is higher. Pull fan-out is not a sorter's load
// (the pool serves the pulls) and splits nothing.

// Actions and results of tistream_meta_autoscale_actions_total.
const (
	actSplit = "split"
	actMerge = "merge"
	actMove  = "move"
	actDrain = "drain"

	resStarted = "started" // the operation was written
	resRefused = "refused" // a bound refused it (rate, range count), or the ranges changed
	resFailed  = "failed"
)

// mergeFraction: two ranges are merged only if their sum is below this
// fraction of --split-rows-per-sec, so a merged range is far from a split.
const mergeFraction = 0.25

// autoscaler is the leader's memory for the autoscaler.
type autoscaler struct {
	mu         sync.Mutex
	moves      bucket                  // --max-moves-per-minute
	coldSince  map[[2]uint64]time.Time // ranges below --merge-rows-per-sec since
	movesReady bool
}

// rangeLoads are the loads the sorters report, by (tenant, range), from
// the range's owner at its current epoch only (a report of a previous
// owner is stale).
func (s *Service) rangeLoads() map[[2]uint64]*metav1.RangeLoad {
	out := map[[2]uint64]*metav1.RangeLoad{}
	for id, w := range s.state.liveWorkers(metav1.WorkerKind_WORKER_KIND_SORTER) {
		for _, rl := range w.Ranges {
			k := [2]uint64{rl.TenantId, rl.RangeId}
			e := s.state.ranges.get(etcdx.RangeKey(rl.TenantId, rl.RangeId))
			if e == nil || e.val.Owner != id || e.val.Epoch != rl.Epoch {
				continue
			}
			out[k] = rl
		}
	}
	return out
}

// bounds are the configured split and merge bounds.
func (s *Service) bounds() loadBounds {
	return loadBounds{rows: s.cfg.SplitRowsPerSec, cpu: s.cfg.SplitCPUShare, memory: s.cfg.SplitMemoryBytes, merge: s.cfg.MergeRowsPerSec}
}

// isDraining: the worker says so, or a drain request for its incarnation
// exists.
func (s *Service) isDraining(kind metav1.WorkerKind, id string, w *metav1.WorkerInfo) bool {
	if w.Draining {
		return true
	}
	d := s.state.drains.get(etcdx.DrainKey(kind, id))
	return d != nil && d.val.WorkerStartedUnixMs == w.StartedUnixMs
}

// schedWorkers are the live workers of a kind as the planner sees them: a
// sorter's load is the sum of its tasks' reported loads (its own measure
// when it reports none: an older sorter).
func (s *Service) schedWorkers(kind metav1.WorkerKind, tasks []*schedTask) []schedWorker {
	sum := map[string]float64{}
	for _, t := range tasks {
		sum[t.owner] += t.load
	}
	var out []schedWorker
	for id, w := range s.state.liveWorkers(kind) {
		load := w.Load
		if kind == metav1.WorkerKind_WORKER_KIND_SORTER && w.LoadIntervalMs > 0 {
			load = sum[id]
		}
		out = append(out, schedWorker{id: id, load: load, draining: s.isDraining(kind, id, w)})
	}
	slices.SortFunc(out, func(a, b schedWorker) int { return cmp.Compare(a.id, b.id) })
	return out
}

// planOpts are the round's load-balancing settings: none for dispatchers,
// none with --autoscale=false or no move token left.
func (s *Service) planOpts(kind metav1.WorkerKind) planOpts {
	o := planOpts{minDiff: s.cfg.BalanceMinRowsPerSec, ratio: s.cfg.BalanceRatio}
	if kind != metav1.WorkerKind_WORKER_KIND_SORTER || !s.cfg.Autoscale {
		return o
	}
	a := &s.as
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refill(s.now(), s.cfg.MaxMovesPerMinute)
	o.loadMoves = int(a.moves.tokens)
	return o
}

// refill adds the tokens earned since the last refill. a.mu held.
func (a *autoscaler) refill(now time.Time, perMinute int) {
	if !a.movesReady {
		a.moves, a.movesReady = bucket{tokens: float64(perMinute), at: now}, true
		return
	}
	if d := now.Sub(a.moves.at); d > 0 {
		a.moves.tokens = math.Min(float64(perMinute), a.moves.tokens+d.Minutes()*float64(perMinute))
		a.moves.at = now
	}
}

// assigned counts an assignment the planner made for load or drain.
func (s *Service) assigned(a assignment) {
	switch a.reason {
	case reasonLoad:
		s.as.mu.Lock()
		s.as.moves.tokens = max(0, s.as.moves.tokens-1)
		s.as.mu.Unlock()
		s.m.autoscale.WithLabelValues(actMove, resStarted).Inc()
	case reasonDrain:
		s.m.autoscale.WithLabelValues(actDrain, resStarted).Inc()
	}
}

// autoscaleLoop runs a split/merge round every --autoscale-interval while
// the term lasts.
func (s *Service) autoscaleLoop(t *term) {
	s.everyTick(t, s.cfg.AutoscaleInterval, func() bool {
		s.forgetDrains(t)
		if s.cfg.Autoscale {
			s.autoscaleRound(t, s.now())
		}
		return true
	})
}

// everyTick runs round every interval while the term lasts and the state
// is loaded, until round returns false.
func (s *Service) everyTick(t *term, every time.Duration, round func() bool) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		if s.state.ready() && !round() {
			return
		}
	}
}

// autoscaleRound splits the hot ranges and merges cold neighbours.
func (s *Service) autoscaleRound(t *term, now time.Time) {
	loads := s.rangeLoads()
	byTenant := map[uint64][]*metav1.RangeTask{}
	states := map[[2]uint64]metav1.RangeTask_State{}
	for _, e := range s.state.ranges.list(etcdx.RangesPrefix) {
		states[[2]uint64{e.val.TenantId, e.val.RangeId}] = e.val.State
	}
	for _, e := range s.state.ranges.list(etcdx.RangesPrefix) {
		r := e.val
		if r.State != metav1.RangeTask_STATE_ACTIVE || r.Owner == "" {
			continue
		}
		ready := true // its parents are retired: it exists in the pool
		for _, p := range r.ParentRangeIds {
			if st, ok := states[[2]uint64{r.TenantId, p}]; ok && st != metav1.RangeTask_STATE_RETIRED {
				ready = false
			}
		}
		if ready {
			byTenant[r.TenantId] = append(byTenant[r.TenantId], r)
		}
	}
	a := &s.as
	a.mu.Lock()
	if a.coldSince == nil {
		a.coldSince = map[[2]uint64]time.Time{}
	}
	b := s.bounds()
	scores := s.sorterScores(loads, b)
	cold := map[[2]uint64]bool{}
	for k, rl := range loads {
		if b.cold(rl) {
			cold[k] = true
			if _, ok := a.coldSince[k]; !ok {
				a.coldSince[k] = now
			}
		}
	}
	for k := range a.coldSince {
		if !cold[k] {
			delete(a.coldSince, k)
		}
	}
	coldFor := func(k [2]uint64) bool {
		since, ok := a.coldSince[k]
		return ok && now.Sub(since) >= s.cfg.MergeAfter
	}
	type mergePair struct{ left, right *metav1.RangeTask }
	var splits []*metav1.SplitRangeRequest
	causes := map[*metav1.SplitRangeRequest]string{}
	var merges []mergePair
	tenants := make([]uint64, 0, len(byTenant))
	for tenant := range byTenant {
		tenants = append(tenants, tenant)
	}
	slices.Sort(tenants)
	for _, tenant := range tenants {
		rs := byTenant[tenant]
		slices.SortFunc(rs, func(x, y *metav1.RangeTask) int { return bytes.Compare(x.StartKey, y.StartKey) })
		active := s.activeCount(tenant)
		limit, _ := s.rangeLimit(tenant)
		for _, r := range rs {
			rl := loads[[2]uint64{tenant, r.RangeId}]
			if rl == nil || rl.CatchingUp || !strictlyInside(rl.SplitKey, r) {
				continue
			}
			cause := b.hot(rl)
			if cause == "" || cause == hotRows && !spreads(scores, r.Owner, b.score(rl)) {
				continue
			}
			if active+1 > limit {
				s.m.autoscale.WithLabelValues(actSplit, resRefused).Inc()
				break
			}
			active++
			req := &metav1.SplitRangeRequest{TenantId: tenant, RangeId: r.RangeId, SplitKey: rl.SplitKey}
			splits, causes[req] = append(splits, req), cause
		}
		// At most one merge per tenant per round, of the coldest pair.
		var best *mergePair
		bestSum := math.Inf(1)
		for i := 0; i+1 < len(rs); i++ {
			l, r := rs[i], rs[i+1]
			kl, kr := [2]uint64{tenant, l.RangeId}, [2]uint64{tenant, r.RangeId}
			if len(l.EndKey) == 0 || !bytes.Equal(l.EndKey, r.StartKey) || !coldFor(kl) || !coldFor(kr) || holdsMeta(l) && !holdsMeta(r) {
				continue
			}
			if sum, ok := b.mergeable(loads[kl], loads[kr]); ok && sum < bestSum {
				best, bestSum = &mergePair{l, r}, sum
			}
		}
		if best != nil {
			merges = append(merges, *best)
		}
	}
	a.mu.Unlock()

	for _, req := range splits {
		s.autoscaleOp(t, actSplit, func(ctx context.Context) error {
			resp, err := s.splitRange(ctx, t, req)
			if err == nil {
				rl := loads[[2]uint64{req.TenantId, req.RangeId}]
				s.log.Info("autoscale: split a hot range", "tenant", req.TenantId, "range", req.RangeId, "over", causes[req],
					"rows_per_sec", rl.RowsPerSec, "cpu_share", rl.CpuShare, "memory_bytes", rl.MemoryBytes, "children", resp.NewRangeIds)
			}
			return err
		})
	}
	for _, m := range merges {
		req := &metav1.MergeRangesRequest{TenantId: m.left.TenantId, LeftRangeId: m.left.RangeId, RightRangeId: m.right.RangeId}
		s.autoscaleOp(t, actMerge, func(ctx context.Context) error {
			resp, err := s.mergeRanges(ctx, t, req)
			if err == nil {
				a.mu.Lock()
				delete(a.coldSince, [2]uint64{req.TenantId, req.LeftRangeId})
				delete(a.coldSince, [2]uint64{req.TenantId, req.RightRangeId})
				a.mu.Unlock()
				s.log.Info("autoscale: merged cold ranges", "tenant", req.TenantId, "left", req.LeftRangeId,
					"right", req.RightRangeId, "child", resp.NewRangeId)
			}
			return err
		})
	}
}

// sorterScores are the loads of the live, non-draining sorters for a
// round's split decisions: the sum of their ranges' scores (0 for none).
func (s *Service) sorterScores(loads map[[2]uint64]*metav1.RangeLoad, b loadBounds) map[string]float64 {
	out := map[string]float64{}
	for id, w := range s.state.liveWorkers(metav1.WorkerKind_WORKER_KIND_SORTER) {
		if !s.isDraining(metav1.WorkerKind_WORKER_KIND_SORTER, id, w) {
			out[id] = 0
		}
	}
	for _, e := range s.state.ranges.list(etcdx.RangesPrefix) {
		if rl := loads[[2]uint64{e.val.TenantId, e.val.RangeId}]; rl != nil {
			if _, ok := out[e.val.Owner]; ok {
				out[e.val.Owner] += b.score(rl)
			}
		}
	}
	return out
}

// spreads says whether splitting a range of the given score on owner lets
// half of it go to a less loaded sorter: one whose load plus the half stays
// below the owner's. A split over the rows bound that no other sorter could
// take half of (one sorter, or every other as busy) would cost a
// transition (every stream of the tenant restarts from its checkpoint, the
// children start from their parent's log) and gain nothing: a range's rows
// per second are no burden on a sorter that has the CPU for them, which the
// CPU bound watches. If it spreads, the half is booked on both sides, so
// that several hot ranges of one sorter are not all split for one idle
// sorter.
func spreads(scores map[string]float64, owner string, score float64) bool {
	own, ok := scores[owner]
	if !ok {
		return false // a draining owner: its ranges move instead
	}
	half, target := score/2, ""
	for id, l := range scores {
		if id != owner && (target == "" || l < scores[target] || l == scores[target] && id < target) {
			target = id
		}
	}
	if target == "" || scores[target]+half >= own {
		return false
	}
	scores[owner] -= half
	scores[target] += half
	return true
}

// holdsMeta is true for the range that holds the tenant's meta keys (they
// sort before every table key, 't'): it is never merged with a range of
// tables, so that a long transaction in a table never holds the schema
// registry, and with it every table's pull, back (pool.InitialManifest
// gives the meta keys a range of their own).
func holdsMeta(r *metav1.RangeTask) bool { return len(r.StartKey) == 0 || r.StartKey[0] < 't' }

// autoscaleOp runs one split or merge and counts its result.
func (s *Service) autoscaleOp(t *term, action string, op func(context.Context) error) {
	ctx, cancel := context.WithTimeout(t.ctx, 30*time.Second)
	defer cancel()
	err := op(ctx)
	switch c := status.Code(err); {
	case err == nil:
		s.m.autoscale.WithLabelValues(action, resStarted).Inc()
	case c == codes.ResourceExhausted || c == codes.FailedPrecondition || c == codes.Aborted || c == codes.InvalidArgument || c == codes.NotFound:
		s.m.autoscale.WithLabelValues(action, resRefused).Inc()
		s.log.Info("autoscale: "+action+" refused", "err", err)
	default:
		s.m.autoscale.WithLabelValues(action, resFailed).Inc()
		if !errors.Is(err, errNotLeader) && t.ctx.Err() == nil {
			s.log.Warn("autoscale: "+action+" failed", "err", err)
		}
	}
}

// activeCount is a tenant's ACTIVE ranges in the mirror.
func (s *Service) activeCount(tenant uint64) int {
	n := 0
	for _, e := range s.state.ranges.list(etcdx.RangeTenantPrefix(tenant)) {
		if e.val.State == metav1.RangeTask_STATE_ACTIVE {
			n++
		}
	}
	return n
}

// strictlyInside: key is above the range's start and below its end.
func strictlyInside(key []byte, r *metav1.RangeTask) bool {
	return len(key) > 0 && bytes.Compare(key, r.StartKey) > 0 && (len(r.EndKey) == 0 || bytes.Compare(key, r.EndKey) < 0)
}

// drainWorker writes or withdraws a drain request for a registered worker.
func (s *Service) drainWorker(ctx context.Context, t *term, req *metav1.DrainWorkerRequest) (*metav1.DrainWorkerResponse, error) {
	const method = "DrainWorker"
	kind := req.Kind
	if kind == metav1.WorkerKind_WORKER_KIND_UNSPECIFIED {
		kind = metav1.WorkerKind_WORKER_KIND_SORTER
	}
	if kind != metav1.WorkerKind_WORKER_KIND_SORTER && kind != metav1.WorkerKind_WORKER_KIND_DISPATCHER {
		return nil, s.refuse(method, reasonMalformed, codes.InvalidArgument, "unknown worker kind %d", req.Kind)
	}
	if req.WorkerId == "" || len(req.WorkerId) > 256 {
		return nil, s.refuse(method, reasonMalformed, codes.InvalidArgument, "worker_id must be 1 to 256 bytes")
	}
	key := etcdx.DrainKey(kind, req.WorkerId)
	if req.Cancel {
		if _, _, err := s.commit(ctx, t, nil, clientv3.OpDelete(key)); err != nil {
			return nil, err
		}
		s.log.Info("drain request withdrawn", "kind", kind, "worker", req.WorkerId)
		return &metav1.DrainWorkerResponse{TasksOwned: s.tasksOwned(kind, req.WorkerId)}, nil
	}
	w := &metav1.WorkerInfo{}
	wkey := etcdx.WorkerKey(kind, req.WorkerId)
	found, _, err := etcdx.GetProto(ctx, s.etcd, wkey, w)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, status.Errorf(codes.NotFound, "no %s %q is registered", etcdx.KindName(kind), req.WorkerId)
	}
	d := &metav1.DrainRequest{WorkerStartedUnixMs: w.StartedUnixMs, RequestedUnixMs: s.now().UnixMilli()}
	ok, _, err := s.commit(ctx, t, []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(wkey), ">", 0)}, clientv3.OpPut(key, etcdx.Marshal(d)))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, status.Errorf(codes.NotFound, "%s %q left while the drain was requested", etcdx.KindName(kind), req.WorkerId)
	}
	s.log.Info("drain requested", "kind", kind, "worker", req.WorkerId)
	poke(s.scheduleKick)
	return &metav1.DrainWorkerResponse{TasksOwned: s.tasksOwned(kind, req.WorkerId)}, nil
}

// tasksOwned counts the tasks of a kind a worker owns in the mirror.
func (s *Service) tasksOwned(kind metav1.WorkerKind, id string) uint32 {
	var n uint32
	if kind == metav1.WorkerKind_WORKER_KIND_SORTER {
		for _, e := range s.state.ranges.list(etcdx.RangesPrefix) {
			if e.val.Owner == id && e.val.State != metav1.RangeTask_STATE_RETIRED {
				n++
			}
		}
		return n
	}
	for _, e := range s.state.streams.list(etcdx.StreamsPrefix) {
		if e.val.Owner == id {
			n++
		}
	}
	return n
}

// forgetDrains deletes the drain requests whose worker incarnation is gone
// (stopped, or registered again after a restart).
func (s *Service) forgetDrains(t *term) {
	for _, e := range s.state.drains.list(etcdx.DrainsPrefix) {
		live := false
		for _, kind := range []metav1.WorkerKind{metav1.WorkerKind_WORKER_KIND_SORTER, metav1.WorkerKind_WORKER_KIND_DISPATCHER} {
			for id, w := range s.state.liveWorkers(kind) {
				if etcdx.DrainKey(kind, id) == e.key && w.StartedUnixMs == e.val.WorkerStartedUnixMs {
					live = true
				}
			}
		}
		if live {
			continue
		}
		ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
		_, _, err := s.commit(ctx, t, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(e.key), "=", e.modRev)}, clientv3.OpDelete(e.key))
		cancel()
		if err != nil {
			s.log.Warn("delete a stale drain request", "key", e.key, "err", err)
			return
		}
		s.log.Info("drain request done: the worker is gone", "key", e.key)
	}
}

// reset forgets the previous term's memory (a new leader counts again).
func (a *autoscaler) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.coldSince, a.movesReady = map[[2]uint64]time.Time{}, false
}
