package metaserver

import (
	"cmp"
	"math"
	"slices"

	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Assignment reasons (the assignments metric's label).
const (
	reasonUnassigned = "unassigned"
	reasonOwnerGone  = "owner_gone"
	reasonBalance    = "balance"
	reasonSuccessor  = "successor"
	reasonLoad       = "load"  // balance by load (autoscale.go)
	reasonDrain      = "drain" // the owner drains
)

// schedTask is a task as the planner sees it.
type schedTask struct {
	key   string
	owner string
	// pinned tasks are never moved for balance (a SEALING range: moving it
	// would restart its seal on another sorter).
	pinned bool
	// group names tasks that must share an owner (the SEALING parents of
	// one merge); "" for none.
	group string
	// held tasks are not assigned at all (a child range waiting for its
	// parents' seal: it has no log yet and nobody may create one).
	held bool
	// load is the task's rows per second as its owner last reported
	// (0 unknown); catchingUp tasks are never moved for balance.
	load       float64
	catchingUp bool
	// settling tasks have no load report from their current owner yet
	// (just moved, or new): their load is unknown, so neither balance
	// moves them (moving one back because its load reads 0 is how a load
	// move and the count balance would undo each other every round).
	settling bool
	ref      any // the caller's task, handed back in the assignment
}

type schedWorker struct {
	id   string
	load float64 // rows per second of its tasks (sorters), or its own measure
	// draining workers give their tasks away and get none.
	draining bool
	tasks    int
}

type assignment struct {
	task   *schedTask
	owner  string
	reason string
	// from and to are the two workers' loads before a balance or load
	// move (logged, so that a move can be explained).
	from, to float64
}

// planOpts are the load-balancing settings of a round (autoscale.go).
type planOpts struct {
	// minDiff and ratio are the hysteresis: loads are balanced only when
	// the most and the least loaded worker differ by more than minDiff and
	// by more than ratio of the most loaded one's load.
	minDiff, ratio float64
	// loadMoves is how many load moves this round may make (the
	// --max-moves-per-minute bucket); 0 disables load balancing.
	loadMoves int
}

// threshold is the load difference a pair of workers may have.
func (o planOpts) threshold(hi float64) float64 { return max(o.minDiff, o.ratio*hi) }

// plan decides one scheduling round for the workers and tasks of one kind:
//
//   - every assignable task without a live owner, or whose owner drains,
//     goes to the non-draining worker with the fewest tasks (ties: least
//     load, then smallest id) — or to its group's owner; with only
//     draining workers left, tasks without an owner go to those;
//   - then, only if that moved nothing and no task is settling (no load
//     report from its owner yet), balance: if the busiest and the idlest
//     non-draining worker differ by
//     more than one task, one movable task moves from the busiest to the
//     idlest: the least loaded (then the last in key order) whose move
//     does not unbalance their loads beyond the hysteresis;
//   - otherwise, if the most and the least loaded differ by more than the
//     hysteresis, one movable task moves between them: the one whose load
//     best halves the difference, if that gains at least minDiff.
//
// Movable: not pinned, not held, not catching up. Tasks are visited in key
// order so that a round is deterministic.
func plan(workers []schedWorker, tasks []*schedTask, opts planOpts) []assignment {
	if len(workers) == 0 {
		return nil
	}
	live := make(map[string]*schedWorker, len(workers))
	var targets []*schedWorker
	for i := range workers {
		w := &workers[i]
		w.tasks = 0
		live[w.id] = w
		if !w.draining {
			targets = append(targets, w)
		}
	}
	orphanTargets := targets
	if len(orphanTargets) == 0 {
		for i := range workers {
			orphanTargets = append(orphanTargets, &workers[i])
		}
	}
	slices.SortFunc(tasks, func(a, b *schedTask) int { return cmp.Compare(a.key, b.key) })
	groupOwner := map[string]string{}
	for _, t := range tasks {
		if w, ok := live[t.owner]; ok && !t.held {
			w.tasks++
			if t.group != "" {
				groupOwner[t.group] = t.owner
			}
		}
	}
	var out []assignment
	moved := map[*schedTask]bool{}
	for _, t := range tasks {
		if t.held {
			continue
		}
		reason := reasonOwnerGone
		cands := orphanTargets
		if w, ok := live[t.owner]; ok {
			if !w.draining || t.pinned || len(targets) == 0 {
				continue
			}
			reason, cands = reasonDrain, targets
		} else if t.owner == "" {
			reason = reasonUnassigned
		}
		target, ok := groupOwner[t.group]
		if t.group == "" || !ok || live[target].draining && reason == reasonDrain {
			target = idlest(cands).id
		}
		if w, ok := live[t.owner]; ok {
			w.tasks--
			w.load -= t.load
		}
		live[target].tasks++
		live[target].load += t.load
		if t.group != "" {
			groupOwner[t.group] = target
		}
		moved[t] = true
		out = append(out, assignment{task: t, owner: target, reason: reason})
	}
	if len(targets) < 2 || len(out) > 0 || settling(tasks, live) {
		// Balance only a settled fleet: not in a round that moved tasks
		// for a drain or a lost owner, nor while a moved or new task has
		// no load report from its owner yet. Until then the workers'
		// loads are unknown (a drained sorter's ranges read 0 on their new
		// owners), and a balance move made on them is a transition — a
		// restart of every stream that feeds the range — that the next
		// round may undo.
		return out
	}
	movable := func(t *schedTask, from *schedWorker) bool {
		return t.owner == from.id && !t.pinned && !t.held && !t.catchingUp && !t.settling && !moved[t]
	}
	from, to := busiest(targets), idlest(targets)
	if from.tasks-to.tasks > 1 {
		// Move the least loaded movable task of the busiest worker whose
		// move does not unbalance the pair's loads; among equals the last
		// in key order, so that repeated rounds move different tasks in a
		// predictable order. A move restarts the streams that feed the
		// task and its new owner catches up on what came since its last
		// snapshot, which costs in proportion to its load: a sorter back
		// from a restart gets cold ranges, not the hot one.
		before := math.Abs(from.load - to.load)
		limit := max(before, opts.threshold(max(from.load, to.load)))
		var pick *schedTask
		for i := len(tasks) - 1; i >= 0; i-- {
			t := tasks[i]
			if movable(t, from) && math.Abs(from.load-to.load-2*t.load) <= limit && (pick == nil || t.load < pick.load) {
				pick = t
			}
		}
		if pick != nil {
			return append(out, assignment{task: pick, owner: to.id, reason: reasonBalance, from: from.load, to: to.load})
		}
	}
	if opts.loadMoves <= 0 {
		return out
	}
	hot, cold := mostLoaded(targets), leastLoaded(targets)
	diff := hot.load - cold.load
	if hot == cold || diff <= opts.threshold(hot.load) {
		return out
	}
	var best *schedTask
	for _, t := range tasks {
		if movable(t, hot) && t.load > 0 && t.load < diff &&
			(best == nil || math.Abs(diff-2*t.load) < math.Abs(diff-2*best.load)) {
			best = t
		}
	}
	if best == nil || diff-math.Abs(diff-2*best.load) < opts.minDiff {
		return out
	}
	return append(out, assignment{task: best, owner: cold.id, reason: reasonLoad, from: hot.load, to: cold.load})
}

// settling reports whether a task owned by a live worker has no load
// report from that owner yet.
func settling(tasks []*schedTask, live map[string]*schedWorker) bool {
	for _, t := range tasks {
		if _, ok := live[t.owner]; ok && t.settling && !t.held {
			return true
		}
	}
	return false
}

func idlest(ws []*schedWorker) *schedWorker {
	return pick(ws, func(w, best *schedWorker) int {
		return cmp.Or(cmp.Compare(w.tasks, best.tasks), cmp.Compare(w.load, best.load), cmp.Compare(w.id, best.id))
	}, -1)
}

func busiest(ws []*schedWorker) *schedWorker {
	return pick(ws, func(w, best *schedWorker) int {
		return cmp.Or(cmp.Compare(w.tasks, best.tasks), cmp.Compare(w.load, best.load), cmp.Compare(w.id, best.id))
	}, 1)
}

func mostLoaded(ws []*schedWorker) *schedWorker {
	return pick(ws, func(w, best *schedWorker) int {
		return cmp.Or(cmp.Compare(w.load, best.load), cmp.Compare(w.tasks, best.tasks), cmp.Compare(best.id, w.id))
	}, 1)
}

func leastLoaded(ws []*schedWorker) *schedWorker {
	return pick(ws, func(w, best *schedWorker) int {
		return cmp.Or(cmp.Compare(w.load, best.load), cmp.Compare(w.tasks, best.tasks), cmp.Compare(w.id, best.id))
	}, -1)
}

// pick returns the worker whose comparison with the best so far has sign.
func pick(ws []*schedWorker, compare func(w, best *schedWorker) int, sign int) *schedWorker {
	best := ws[0]
	for _, w := range ws[1:] {
		if compare(w, best)*sign > 0 {
			best = w
		}
	}
	return best
}

// loadBounds are the split bounds a range's reported load is held
// against (autoscale.go) and from which its balancing score comes.
type loadBounds struct {
	rows   float64 // --split-rows-per-sec
	cpu    float64 // --split-cpu-share; 0 = CPU is not a bound
	memory uint64  // --split-memory-bytes; 0 = memory is not a bound
	merge  float64 // --merge-rows-per-sec
}

// Split causes (the autoscaler's log).
const (
	hotRows   = "rows"
	hotCPU    = "cpu"
	hotMemory = "memory"
)

// hot says which bound a range's load is over, "" for none. Pull fan-out
// never makes a range hot: the pool serves the pulls, not the sorter.
func (b loadBounds) hot(rl *metav1.RangeLoad) string {
	switch {
	case rl.RowsPerSec > b.rows:
		return hotRows
	case b.cpu > 0 && rl.CpuShare > b.cpu:
		return hotCPU
	case b.memory > 0 && rl.MemoryBytes > b.memory:
		return hotMemory
	}
	return ""
}

// cold: the range may count towards a merge (its score is below the merge
// bound and it holds under mergeFraction of the memory bound).
func (b loadBounds) cold(rl *metav1.RangeLoad) bool {
	return !rl.CatchingUp && b.score(rl) < b.merge && (b.memory == 0 || float64(rl.MemoryBytes) < mergeFraction*float64(b.memory))
}

// mergeable: two cold neighbours whose merged range stays far from every
// split bound (their scores sum below mergeFraction of the rows bound,
// their memory below mergeFraction of the memory bound), so a merge is
// never followed by a split. The sum of their scores ranks the pairs.
func (b loadBounds) mergeable(l, r *metav1.RangeLoad) (sum float64, ok bool) {
	sum = b.score(l) + b.score(r)
	mem := float64(l.MemoryBytes) + float64(r.MemoryBytes)
	return sum, sum < mergeFraction*b.rows && (b.memory == 0 || mem < mergeFraction*float64(b.memory))
}

// score is a range's load for balancing, in rows per second: its rows per
// second, or its CPU share weighed so that the CPU split bound counts as
// much as the rows split bound, whichever is higher. So a range whose rows
// are cheap is balanced by its rows, one whose rows are costly (wide rows,
// heavy matching) by its CPU, and the hysteresis (--balance-min-rows-per-sec,
// --balance-ratio) keeps its unit. Memory is not in it: what a range holds
// moves with it but is not a rate a move spreads. An older sorter's report
// has no CPU share: its rows per second.
func (b loadBounds) score(rl *metav1.RangeLoad) float64 {
	if b.cpu <= 0 {
		return rl.RowsPerSec
	}
	return max(rl.RowsPerSec, rl.CpuShare*b.rows/b.cpu)
}
