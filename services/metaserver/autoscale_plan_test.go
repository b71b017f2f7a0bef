package metaserver

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The planner's load balancing: hysteresis, the move budget, drain, and no
// move of a pinned, held or catching-up task.
func TestPlanByLoad(t *testing.T) {
	type want struct{ key, owner, reason string }
	opts := planOpts{minDiff: 100, ratio: 0.25, loadMoves: 1}
	ws := func(loads ...float64) []schedWorker {
		out := make([]schedWorker, len(loads))
		for i, l := range loads {
			out[i] = schedWorker{id: string(rune('a'+i)) + "w", load: l}
		}
		return out
	}
	cases := []struct {
		name    string
		workers []schedWorker
		tasks   []*schedTask
		opts    planOpts
		want    []want
	}{
		{"moves the task that best halves the difference",
			ws(1000, 0),
			[]*schedTask{{key: "1", owner: "aw", load: 100}, {key: "2", owner: "aw", load: 450}, {key: "3", owner: "aw", load: 450},
				{key: "4", owner: "bw", load: 0}, {key: "5", owner: "bw", load: 0}},
			opts, []want{{"2", "bw", reasonLoad}}},
		{"within the relative hysteresis: no move",
			ws(1000, 800),
			[]*schedTask{{key: "1", owner: "aw", load: 500}, {key: "2", owner: "aw", load: 500}, {key: "3", owner: "bw", load: 400}, {key: "4", owner: "bw", load: 400}},
			opts, nil},
		{"within the absolute hysteresis: no move",
			ws(90, 0),
			[]*schedTask{{key: "1", owner: "aw", load: 45}, {key: "2", owner: "aw", load: 45}, {key: "3", owner: "bw"}, {key: "4", owner: "bw"}},
			opts, nil},
		{"no move budget: no move",
			ws(1000, 0),
			[]*schedTask{{key: "1", owner: "aw", load: 500}, {key: "2", owner: "aw", load: 500}, {key: "3", owner: "bw"}, {key: "4", owner: "bw"}},
			planOpts{minDiff: 100, ratio: 0.25}, nil},
		{"a single hot task is not swapped back and forth",
			ws(1000, 0),
			[]*schedTask{{key: "1", owner: "aw", load: 1000}, {key: "2", owner: "bw"}},
			opts, nil},
		{"catching-up, pinned and held tasks stay",
			ws(1000, 0),
			[]*schedTask{{key: "1", owner: "aw", load: 500, catchingUp: true}, {key: "2", owner: "aw", load: 300, pinned: true},
				{key: "3", owner: "aw", load: 200, held: true}, {key: "4", owner: "bw"}, {key: "5", owner: "bw"}},
			opts, nil},
		{"a task just moved (no load report from its new owner yet) is not moved back by the count balance",
			ws(1000, 1000),
			[]*schedTask{{key: "1", owner: "aw", load: 300}, {key: "2", owner: "aw", load: 700}, {key: "3", owner: "aw", settling: true},
				{key: "4", owner: "bw", load: 1000}},
			opts, nil},
		{"the count balance does not undo the load balance",
			ws(1000, 1000),
			[]*schedTask{{key: "1", owner: "aw", load: 1000}, {key: "2", owner: "bw", load: 333}, {key: "3", owner: "bw", load: 333},
				{key: "4", owner: "bw", load: 334}},
			opts, nil},
		{"the count balance moves a cold task",
			ws(1000, 1000),
			[]*schedTask{{key: "1", owner: "aw", load: 1000}, {key: "2", owner: "bw", load: 0}, {key: "3", owner: "bw", load: 0},
				{key: "4", owner: "bw", load: 1000}, {key: "5", owner: "bw", load: 0}},
			opts, []want{{"5", "aw", reasonBalance}}},
		{"a draining worker's tasks go, pinned ones stay; it gets nothing",
			[]schedWorker{{id: "aw", draining: true}, {id: "bw"}, {id: "cw"}},
			[]*schedTask{{key: "1", owner: "aw"}, {key: "2", owner: "aw"}, {key: "3", owner: "aw", pinned: true}, {key: "4"}},
			opts, []want{{"1", "bw", reasonDrain}, {"2", "cw", reasonDrain}, {"4", "bw", reasonUnassigned}}},
		{"a draining worker's catching-up task goes too",
			[]schedWorker{{id: "aw", draining: true}, {id: "bw"}},
			[]*schedTask{{key: "1", owner: "aw", load: 10, catchingUp: true}},
			opts, []want{{"1", "bw", reasonDrain}}},
		{"only draining workers: their tasks stay, orphans still get one",
			[]schedWorker{{id: "aw", draining: true}},
			[]*schedTask{{key: "1", owner: "aw"}, {key: "2", owner: "gone"}},
			opts, []want{{"2", "aw", reasonOwnerGone}}},
		{"draining workers are not balanced",
			[]schedWorker{{id: "aw", draining: true, load: 5000}, {id: "bw"}},
			[]*schedTask{{key: "1", owner: "aw", pinned: true, load: 5000}},
			opts, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []want
			for _, a := range plan(tc.workers, tc.tasks, tc.opts) {
				got = append(got, want{a.task.key, a.owner, a.reason})
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// Repeated rounds with the loads following the moves converge and then
// stop moving: no ping-pong.
func TestPlanByLoadConverges(t *testing.T) {
	loads := []float64{900, 700, 500, 300, 200, 100, 100, 50}
	tasks := make([]*schedTask, len(loads))
	for i, l := range loads {
		tasks[i] = &schedTask{key: string(rune('a' + i)), owner: "w1", load: l}
	}
	opts := planOpts{minDiff: 100, ratio: 0.1, loadMoves: 1}
	moves := 0
	for round := 0; round < 50; round++ {
		ws := []schedWorker{{id: "w1"}, {id: "w2"}, {id: "w3"}}
		for _, t := range tasks {
			for i := range ws {
				if ws[i].id == t.owner {
					ws[i].load += t.load
				}
			}
		}
		as := plan(ws, tasks, opts)
		if len(as) == 0 {
			break
		}
		for _, a := range as {
			a.task.owner = a.owner
			moves++
		}
	}
	per := map[string]float64{}
	for _, t := range tasks {
		per[t.owner] += t.load
	}
	require.Less(t, moves, 20, "the rounds converge")
	for _, l := range per {
		require.InDelta(t, 950, l, 400, "loads %v", per)
	}
	// Stable: one more round moves nothing.
	ws := []schedWorker{{id: "w1", load: per["w1"]}, {id: "w2", load: per["w2"]}, {id: "w3", load: per["w3"]}}
	require.Empty(t, plan(ws, tasks, opts))
}
