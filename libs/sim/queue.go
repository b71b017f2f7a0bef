package sim

import "container/heap"

// action is work scheduled on the simulated clock. Actions due at the same
// millisecond run in the order they were scheduled.
type action struct {
	at  int64
	seq uint64
	fn  func()
}

type actionHeap []action

func (h actionHeap) Len() int { return len(h) }
func (h actionHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h actionHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *actionHeap) Push(x any)   { *h = append(*h, x.(action)) }
func (h *actionHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	*h = old[:len(old)-1]
	return a
}

type scheduler struct {
	h   actionHeap
	seq uint64
}

func (s *scheduler) at(ms int64, fn func()) {
	s.seq++
	heap.Push(&s.h, action{at: ms, seq: s.seq, fn: fn})
}

// runDue runs every action due at or before now, including ones they schedule.
func (s *scheduler) runDue(now int64) {
	for len(s.h) > 0 && s.h[0].at <= now {
		a := heap.Pop(&s.h).(action)
		a.fn()
	}
}

func (s *scheduler) empty() bool { return len(s.h) == 0 }
