package metaserver

import (
	"cmp"
	"slices"
)

// Assignment reasons (the assignments metric's label).
const (
	reasonUnassigned = "unassigned"
	reasonOwnerGone  = "owner_gone"
	reasonBalance    = "balance"
	reasonSuccessor  = "successor"
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
	ref  any // the caller's task, handed back in the assignment
}

type schedWorker struct {
	id    string
	load  float64
	tasks int
}

type assignment struct {
	task   *schedTask
	owner  string
	reason string
}

// plan decides one scheduling round for the workers and tasks of one kind:
// every assignable task without a live owner goes to the worker with the
// fewest tasks (ties: least load, then smallest id) — or to its group's
// owner — and then, if the busiest and the idlest worker differ by more than
// one task, one unpinned task moves from the busiest to the idlest. Tasks
// are visited in key order so that a round is deterministic.
func plan(workers []schedWorker, tasks []*schedTask) []assignment {
	if len(workers) == 0 {
		return nil
	}
	live := make(map[string]*schedWorker, len(workers))
	for i := range workers {
		w := &workers[i]
		w.tasks = 0
		live[w.id] = w
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
		if _, ok := live[t.owner]; ok {
			continue
		}
		reason := reasonOwnerGone
		if t.owner == "" {
			reason = reasonUnassigned
		}
		target, ok := groupOwner[t.group]
		if t.group == "" || !ok {
			target = idlest(workers).id
		}
		live[target].tasks++
		if t.group != "" {
			groupOwner[t.group] = target
		}
		moved[t] = true
		out = append(out, assignment{task: t, owner: target, reason: reason})
	}
	from, to := busiest(workers), idlest(workers)
	if from.tasks-to.tasks <= 1 {
		return out
	}
	// Move the last movable task of the busiest worker (key order), so that
	// repeated rounds move different tasks in a predictable order.
	for i := len(tasks) - 1; i >= 0; i-- {
		t := tasks[i]
		if t.owner == from.id && !t.pinned && !t.held && !moved[t] {
			out = append(out, assignment{task: t, owner: to.id, reason: reasonBalance})
			break
		}
	}
	return out
}

func idlest(ws []schedWorker) *schedWorker {
	best := &ws[0]
	for i := range ws {
		w := &ws[i]
		if c := cmp.Or(cmp.Compare(w.tasks, best.tasks), cmp.Compare(w.load, best.load), cmp.Compare(w.id, best.id)); c < 0 {
			best = w
		}
	}
	return best
}

func busiest(ws []schedWorker) *schedWorker {
	best := &ws[0]
	for i := range ws {
		w := &ws[i]
		if c := cmp.Or(cmp.Compare(w.tasks, best.tasks), cmp.Compare(w.load, best.load), cmp.Compare(w.id, best.id)); c > 0 {
			best = w
		}
	}
	return best
}
