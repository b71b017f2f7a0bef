package metaserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/pool"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// sealOp is one split or merge in flight: SEALING parents and the children
// that continue their keys.
type sealOp struct {
	tenant   uint64
	parents  []*entry[*metav1.RangeTask]
	children []*entry[*metav1.RangeTask]
}

// sealLoop completes splits and merges whose parents have sealed, at every
// range task change and every interval (a SEAL entry in the pool has no
// notification, so the interval is what notices it).
//
// While an operation waits for its parents' SEAL, it looks every
// sealPollInterval instead (for its first sealFastFor): the parents' keys
// take no data from their seal until the children are opened (the
// dispatchers' batches are refused), so every tick of waiting is lag on
// those keys (a sorter seals within ~150 ms; the 2 s interval alone made a
// split cost ~1.9 s).
func (s *Service) sealLoop(t *term) {
	tick := time.NewTicker(s.cfg.ScheduleInterval)
	defer tick.Stop()
	seen := map[string]time.Time{} // when each operation in flight was first seen
	for {
		var soon <-chan time.Time
		if s.state.ready() {
			ops := s.sealOps()
			fast, now := false, time.Now()
			keep := make(map[string]time.Time, len(ops))
			for _, op := range ops {
				g := sealGroup(op.parents[0].val)
				first, ok := seen[g]
				if !ok {
					first = now
				}
				keep[g] = first
				fast = fast || now.Sub(first) < sealFastFor
			}
			seen = keep
			for _, op := range ops {
				if err := s.completeSeal(t, op); err != nil {
					if errors.Is(err, errNotLeader) || t.ctx.Err() != nil {
						return
					}
					s.log.Warn("range split/merge completion failed", "tenant", op.tenant, "err", err)
				}
			}
			if fast {
				soon = time.After(min(sealPollInterval, s.cfg.ScheduleInterval))
			}
		}
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		case <-soon:
		case <-s.sealKick:
		}
	}
}

// sealPollInterval is how often a split or merge in flight looks for its
// parents' SEAL (one log-head read per parent), for its first sealFastFor;
// one whose parents take longer (a sorter down) falls back to the interval.
const (
	sealPollInterval = 100 * time.Millisecond
	sealFastFor      = 10 * time.Second
)

// sealOps groups the SEALING ranges by the children they share.
func (s *Service) sealOps() []*sealOp {
	all := s.state.ranges.list(etcdx.RangesPrefix)
	byID := make(map[[2]uint64]*entry[*metav1.RangeTask], len(all))
	for _, e := range all {
		byID[[2]uint64{e.val.TenantId, e.val.RangeId}] = e
	}
	ops := map[string]*sealOp{}
	var order []string
	for _, e := range all {
		if e.val.State != metav1.RangeTask_STATE_SEALING {
			continue
		}
		g := sealGroup(e.val)
		op, ok := ops[g]
		if !ok {
			op = &sealOp{tenant: e.val.TenantId}
			for _, c := range e.val.SuccessorRangeIds {
				if ce, ok := byID[[2]uint64{e.val.TenantId, c}]; ok {
					op.children = append(op.children, ce)
				}
			}
			ops[g] = op
			order = append(order, g)
		}
		op.parents = append(op.parents, e)
	}
	slices.Sort(order)
	out := make([]*sealOp, 0, len(order))
	for _, g := range order {
		out = append(out, ops[g])
	}
	return out
}

// completeSeal finishes an operation once every parent's log ends with a
// SEAL: the next manifest first (parents retired at the seal watermark,
// children opened there), then etcd (parents RETIRED, children ready to be
// assigned, to the parents' sorter when it is still alive).
func (s *Service) completeSeal(t *term, op *sealOp) error {
	ctx, cancel := context.WithTimeout(t.ctx, 30*time.Second)
	defer cancel()
	want := op.parents[0].val.SuccessorRangeIds
	if len(op.children) != len(want) {
		return fmt.Errorf("successors %v of range %d: some have no range task", want, op.parents[0].val.RangeId)
	}
	for _, c := range op.children {
		if len(c.val.ParentRangeIds) != len(op.parents) {
			// The other parent of a merge is not SEALING (yet, or any more).
			return fmt.Errorf("range %d has parents %v, %d of them are sealing", c.val.RangeId, c.val.ParentRangeIds, len(op.parents))
		}
	}
	var wm uint64
	for i, p := range op.parents {
		head, _, err := pool.FindHead(ctx, s.pool, op.tenant, p.val.RangeId)
		if errors.Is(err, pool.ErrNoRange) {
			return nil // never created: its sorter has yet to start it
		}
		if err != nil {
			return fmt.Errorf("range %d: find log head: %w", p.val.RangeId, err)
		}
		if head.Kind != formatv1.RangeLogEntry_KIND_SEAL {
			return nil // not yet
		}
		if !slices.Equal(head.SuccessorRangeIds, want) {
			return fmt.Errorf("range %d sealed with successors %v, the task says %v", p.val.RangeId, head.SuccessorRangeIds, want)
		}
		if i > 0 && head.Watermark != wm {
			return fmt.Errorf("merged ranges sealed at different watermarks (%d and %d)", wm, head.Watermark)
		}
		wm = head.Watermark
	}
	version, err := s.publishSealed(ctx, op, wm)
	if err != nil {
		return err
	}
	return s.retireParents(ctx, t, op, wm, version)
}

// publishSealed publishes the manifest that retires the parents, unless the
// latest manifest does already (a previous attempt got that far).
func (s *Service) publishSealed(ctx context.Context, op *sealOp, wm uint64) (uint64, error) {
	for attempt := 0; ; attempt++ {
		m, err := pool.LoadManifest(ctx, s.pool, op.tenant)
		if err != nil {
			return 0, fmt.Errorf("read manifest: %w", err)
		}
		next, done, err := sealedManifest(m, op, wm, s.now())
		if err != nil || done {
			return m.Version, err
		}
		err = pool.PublishManifest(ctx, s.pool, next)
		if err == nil {
			return next.Version, nil
		}
		if !errors.Is(err, pool.ErrFenced) || attempt >= 3 {
			return 0, fmt.Errorf("publish manifest version %d: %w", next.Version, err)
		}
		// Someone published that version meanwhile: read it and decide again.
	}
}

// sealedManifest is m's successor with the operation applied; done when m
// has it already.
func sealedManifest(m *formatv1.Manifest, op *sealOp, wm uint64, now time.Time) (*formatv1.Manifest, bool, error) {
	next := proto.Clone(m).(*formatv1.Manifest)
	next.Version, next.CreatedUnixMs = m.Version+1, now.UnixMilli()
	byID := map[uint64]*formatv1.RangeDescriptor{}
	for _, d := range next.Ranges {
		byID[d.RangeId] = d
	}
	retired := 0
	for _, p := range op.parents {
		d, ok := byID[p.val.RangeId]
		switch {
		case !ok:
			return nil, false, fmt.Errorf("manifest version %d does not list range %d", m.Version, p.val.RangeId)
		case d.State == formatv1.RangeDescriptor_STATE_RETIRED:
			retired++
		}
		d.State, d.RetiredAtTs, d.SuccessorRangeIds = formatv1.RangeDescriptor_STATE_RETIRED, wm, p.val.SuccessorRangeIds
	}
	if retired == len(op.parents) {
		return nil, true, nil
	}
	if retired > 0 {
		return nil, false, fmt.Errorf("manifest version %d retired only some of the parents", m.Version)
	}
	for _, c := range op.children {
		if _, ok := byID[c.val.RangeId]; ok {
			return nil, false, fmt.Errorf("manifest version %d already lists new range %d", m.Version, c.val.RangeId)
		}
		next.Ranges = append(next.Ranges, &formatv1.RangeDescriptor{RangeId: c.val.RangeId, StartKey: c.val.StartKey,
			EndKey: c.val.EndKey, State: formatv1.RangeDescriptor_STATE_ACTIVE, OpenedAtTs: wm, ParentRangeIds: c.val.ParentRangeIds})
		next.NextRangeId = max(next.NextRangeId, c.val.RangeId+1)
	}
	return next, false, nil
}

// retireParents writes the outcome to etcd in one transaction. The children
// start at the parents' highest epoch, not at 1: the sorter wrote their
// OPEN entries with its own epoch, and an owner below the log head's epoch
// would be fenced. On the parents' sorter (alive) they are owned at once —
// it holds their snapshots warm; otherwise the scheduler assigns them with
// epoch+1, which fences whatever the dead sorter wrote.
func (s *Service) retireParents(ctx context.Context, t *term, op *sealOp, wm, version uint64) error {
	var epoch uint64
	owner := op.parents[0].val.Owner
	for _, p := range op.parents {
		epoch = max(epoch, p.val.Epoch)
		if p.val.Owner != owner {
			owner = ""
		}
	}
	if s.state.workerAddr(metav1.WorkerKind_WORKER_KIND_SORTER, owner) == "" {
		owner = ""
	}
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	for _, p := range op.parents {
		r := proto.Clone(p.val).(*metav1.RangeTask)
		r.State, r.SealWatermark = metav1.RangeTask_STATE_RETIRED, wm
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(p.key), "=", p.modRev))
		ops = append(ops, clientv3.OpPut(p.key, etcdx.Marshal(r)))
	}
	for _, c := range op.children {
		r := proto.Clone(c.val).(*metav1.RangeTask)
		r.OpenedAtTs, r.Owner, r.Epoch = wm, owner, epoch
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(c.key), "=", c.modRev))
		ops = append(ops, clientv3.OpPut(c.key, etcdx.Marshal(r)))
	}
	ok, _, err := s.commit(ctx, t, cmps, ops...)
	if err != nil || !ok {
		return err
	}
	kind := "split"
	if len(op.parents) > 1 {
		kind = "merge"
	}
	s.m.rangeOps.WithLabelValues(kind, "completed").Inc()
	if owner != "" {
		s.m.assignments.WithLabelValues("range", reasonSuccessor).Add(float64(len(op.children)))
	}
	parents, children := make([]uint64, 0, len(op.parents)), make([]uint64, 0, len(op.children))
	for _, p := range op.parents {
		parents = append(parents, p.val.RangeId)
	}
	for _, c := range op.children {
		children = append(children, c.val.RangeId)
	}
	s.log.Info("range split or merge completed", "op", kind, "tenant", op.tenant, "parents", parents, "children", children,
		"watermark", wm, "manifest_version", version, "owner", owner, "epoch", epoch)
	return nil
}
