package metaserver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tistream/tistream/libs/etcdx"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// poke wakes a loop without blocking (a pending wake-up is enough).
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// scheduleLoop runs a round at every relevant change and every interval
// while the term lasts. Rounds are at least minGap apart, so a burst of
// changes (including the round's own writes) costs one more round, and
// balancing moves at most one task per kind that often.
func (s *Service) scheduleLoop(t *term) {
	tick := time.NewTicker(s.cfg.ScheduleInterval)
	defer tick.Stop()
	minGap := min(100*time.Millisecond, s.cfg.ScheduleInterval)
	for {
		if s.state.ready() {
			s.scheduleRound(t)
		}
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		case <-s.scheduleKick:
		}
		select {
		case <-t.ctx.Done():
			return
		case <-time.After(minGap):
		}
	}
}

// scheduleRound plans and writes one round for sorters and dispatchers.
func (s *Service) scheduleRound(t *term) {
	ranges, streams := s.rangeTasks(), s.streamTasks()
	for kind, tasks := range map[metav1.WorkerKind][]*schedTask{
		metav1.WorkerKind_WORKER_KIND_SORTER:     ranges,
		metav1.WorkerKind_WORKER_KIND_DISPATCHER: streams,
	} {
		for _, a := range plan(s.schedWorkers(kind, tasks), tasks, s.planOpts(kind)) {
			if err := s.assign(t, a); err != nil {
				if !errors.Is(err, errNotLeader) && t.ctx.Err() == nil {
					s.log.Warn("task assignment failed", "task", a.task.key, "owner", a.owner, "err", err)
				}
				return
			}
			s.assigned(a)
		}
	}
}

// assign writes one assignment with epoch+1, if the task is unchanged since
// the mirror saw it (otherwise the next round decides again).
func (s *Service) assign(t *term, a assignment) error {
	ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
	defer cancel()
	var (
		val    proto.Message
		modRev int64
		kind   string
		log    []any
	)
	switch e := a.task.ref.(type) {
	case *entry[*metav1.RangeTask]:
		r := proto.Clone(e.val).(*metav1.RangeTask)
		r.Owner, r.Epoch = a.owner, r.Epoch+1
		val, modRev, kind = r, e.modRev, "range"
		log = []any{"tenant", r.TenantId, "range", r.RangeId, "epoch", r.Epoch}
	case *entry[*metav1.StreamTask]:
		st := proto.Clone(e.val).(*metav1.StreamTask)
		st.Owner, st.Epoch = a.owner, st.Epoch+1
		val, modRev, kind = st, e.modRev, "stream"
		log = []any{"tenant", st.TenantId, "store", st.StoreId, "epoch", st.Epoch}
	default:
		return fmt.Errorf("task %s: unexpected type %T", a.task.key, a.task.ref)
	}
	ok, _, err := s.commit(ctx, t, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(a.task.key), "=", modRev)},
		clientv3.OpPut(a.task.key, etcdx.Marshal(val)))
	if err != nil || !ok {
		return err
	}
	s.m.assignments.WithLabelValues(kind, a.reason).Inc()
	log = append(log, "kind", kind, "owner", a.owner, "previous_owner", a.task.owner, "reason", a.reason)
	if a.reason == reasonBalance || a.reason == reasonLoad {
		// What the move was decided on (loads are scores, in rows/s).
		log = append(log, "task_load", math.Round(a.task.load), "previous_owner_load", math.Round(a.from), "owner_load", math.Round(a.to))
	}
	s.log.Info("task assigned", log...)
	return nil
}

// rangeTasks are the ranges the scheduler considers (RETIRED ones are
// done), and it counts the tasks for the metrics.
func (s *Service) rangeTasks() []*schedTask {
	all := s.state.ranges.list(etcdx.RangesPrefix)
	stateOf := make(map[[2]uint64]metav1.RangeTask_State, len(all))
	for _, e := range all {
		stateOf[[2]uint64{e.val.TenantId, e.val.RangeId}] = e.val.State
	}
	counts := map[string]int{}
	loads := s.rangeLoads()
	sorters := s.state.liveWorkers(metav1.WorkerKind_WORKER_KIND_SORTER)
	var out []*schedTask
	for _, e := range all {
		r := e.val
		counts[strings.ToLower(strings.TrimPrefix(r.State.String(), "STATE_"))]++
		if r.State == metav1.RangeTask_STATE_RETIRED {
			continue
		}
		t := &schedTask{key: e.key, owner: r.Owner, ref: e}
		if rl := loads[[2]uint64{r.TenantId, r.RangeId}]; rl != nil {
			t.load, t.catchingUp = s.bounds().score(rl), rl.CatchingUp
		} else if w := sorters[r.Owner]; w != nil && w.LoadIntervalMs > 0 && s.cfg.Autoscale {
			t.settling = true // its owner reports ranges' loads, not this one's yet
		}
		if r.State == metav1.RangeTask_STATE_SEALING {
			t.pinned = true
			t.group = sealGroup(r)
		}
		for _, p := range r.ParentRangeIds {
			if st, ok := stateOf[[2]uint64{r.TenantId, p}]; ok && st != metav1.RangeTask_STATE_RETIRED {
				t.held = true
			}
		}
		out = append(out, t)
	}
	s.m.tasks.DeletePartialMatch(map[string]string{"kind": "range"})
	for st, n := range counts {
		s.m.tasks.WithLabelValues("range", st).Set(float64(n))
	}
	return out
}

// sealGroup names the parents of one split or merge: they share their
// successors, and a merge's parents must stay on one sorter.
func sealGroup(r *metav1.RangeTask) string {
	return fmt.Sprintf("%d/%v", r.TenantId, r.SuccessorRangeIds)
}

func (s *Service) streamTasks() []*schedTask {
	all := s.state.streams.list(etcdx.StreamsPrefix)
	var assigned, unassigned int
	out := make([]*schedTask, 0, len(all))
	for _, e := range all {
		if e.val.Owner == "" {
			unassigned++
		} else {
			assigned++
		}
		out = append(out, &schedTask{key: e.key, owner: e.val.Owner, ref: e})
	}
	s.m.tasks.WithLabelValues("stream", "assigned").Set(float64(assigned))
	s.m.tasks.WithLabelValues("stream", "unassigned").Set(float64(unassigned))
	return out
}
