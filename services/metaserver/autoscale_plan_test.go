package metaserver

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
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
		{"a round that moves a drained task makes no balance move",
			[]schedWorker{{id: "aw", draining: true}, {id: "bw", load: 1000}, {id: "cw"}},
			[]*schedTask{{key: "1", owner: "aw"}, {key: "2", owner: "bw", load: 300}, {key: "3", owner: "bw", load: 300},
				{key: "4", owner: "bw", load: 400}},
			opts, []want{{"1", "cw", reasonDrain}}},
		{"a settling task anywhere holds the balance until its owner reports it",
			ws(1000, 0),
			[]*schedTask{{key: "1", owner: "aw", load: 500}, {key: "2", owner: "aw", load: 500}, {key: "3", owner: "bw", settling: true}},
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
		{"a sorter back from a restart gets the coldest range the count balance can move, not the hot one",
			// TestFaults (seed 61206): every time a sorter came back empty,
			// the count balance gave it range 4, 4054 of its peer's 4581
			// rows/s, the last in key order: the costliest move there was.
			ws(4581, 0),
			[]*schedTask{{key: "1", owner: "aw", load: 200}, {key: "2", owner: "aw", load: 150}, {key: "3", owner: "aw", load: 177},
				{key: "4", owner: "aw", load: 4054}},
			opts, []want{{"2", "bw", reasonBalance}}},
		{"among equally loaded ranges the count balance moves the last in key order",
			ws(4000, 0),
			[]*schedTask{{key: "1", owner: "aw", load: 100}, {key: "2", owner: "aw", load: 100}, {key: "3", owner: "aw", load: 3800}},
			opts, []want{{"2", "bw", reasonBalance}}},
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
	moves := len(planRounds(50, []string{"w1", "w2", "w3"}, tasks, opts))
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

// A sorter back from a restart with nothing, its peer holding every range
// and one hot: rounds with the loads following the moves give it cold
// ranges until the counts are even, never move the hot range, and stop
// (the services' default hysteresis).
func TestPlanRestartedSorterGetsColdRanges(t *testing.T) {
	tasks := []*schedTask{{key: "1", owner: "w1", load: 200}, {key: "2", owner: "w1", load: 150},
		{key: "3", owner: "w1", load: 177}, {key: "4", owner: "w1", load: 4054}}
	opts := planOpts{minDiff: 2000, ratio: 0.25, loadMoves: 1}
	require.Equal(t, []string{"2@balance", "3@balance"}, planRounds(10, []string{"w1", "w2"}, tasks, opts))
	require.Equal(t, "w1", tasks[3].owner, "the hot range stayed")
}

// planRounds runs up to n scheduling rounds over workers whose loads are
// their tasks' loads, applying each round's moves, until a round moves
// nothing; it returns the moves as "key@reason".
func planRounds(n int, workers []string, tasks []*schedTask, opts planOpts) []string {
	var moved []string
	for round := 0; round < n; round++ {
		ws := make([]schedWorker, len(workers))
		for i, id := range workers {
			ws[i].id = id
			for _, t := range tasks {
				if t.owner == id {
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
			moved = append(moved, a.task.key+"@"+a.reason)
		}
	}
	return moved
}

// The split bounds: rows, CPU share and memory each make a range hot;
// pull fan-out is no bound; a zero CPU or memory bound is off.
func TestSplitBounds(t *testing.T) {
	b := loadBounds{rows: 20_000, cpu: 0.5, memory: 256 << 20, merge: 1000}
	cases := []struct {
		name string
		rl   *metav1.RangeLoad
		want string
	}{
		{"cool on every measure", &metav1.RangeLoad{RowsPerSec: 19_000, CpuShare: 0.4, MemoryBytes: 200 << 20}, ""},
		{"over the rows bound", &metav1.RangeLoad{RowsPerSec: 20_001, CpuShare: 0.1}, hotRows},
		{"few rows but costly ones: over the CPU bound", &metav1.RangeLoad{RowsPerSec: 3000, CpuShare: 0.6}, hotCPU},
		{"cold but holding a lot: over the memory bound", &metav1.RangeLoad{RowsPerSec: 10, CpuShare: 0.01, MemoryBytes: 300 << 20}, hotMemory},
		{"an older sorter's report (rows only)", &metav1.RangeLoad{RowsPerSec: 5000}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, b.hot(tc.rl)) })
	}
	off := loadBounds{rows: 20_000}
	require.Empty(t, off.hot(&metav1.RangeLoad{RowsPerSec: 100, CpuShare: 0.9, MemoryBytes: 1 << 40}), "CPU and memory bounds off")
	require.Equal(t, 100.0, off.score(&metav1.RangeLoad{RowsPerSec: 100, CpuShare: 0.9}), "without a CPU bound the score is rows")
}

// The balancing score is rows per second, or the CPU share weighed so the
// CPU bound counts as the rows bound, whichever is higher; merging uses it
// and keeps a merged range far from every split bound.
func TestLoadScoreAndMerge(t *testing.T) {
	b := loadBounds{rows: 20_000, cpu: 0.5, memory: 256 << 20, merge: 1000}
	require.Equal(t, 8000.0, b.score(&metav1.RangeLoad{RowsPerSec: 8000, CpuShare: 0.1}), "cheap rows: rows (0.1 core weighs 4000)")
	require.Equal(t, 16_000.0, b.score(&metav1.RangeLoad{RowsPerSec: 2000, CpuShare: 0.4}), "costly rows: CPU (0.4 core weighs 16000)")
	require.Equal(t, 20_000.0, b.score(&metav1.RangeLoad{CpuShare: 0.5}), "the CPU bound weighs the rows bound")

	require.True(t, b.cold(&metav1.RangeLoad{RowsPerSec: 500, CpuShare: 0.01}))
	require.False(t, b.cold(&metav1.RangeLoad{RowsPerSec: 500, CpuShare: 0.1}), "few rows but 0.1 core (weighs 4000): not cold")
	require.False(t, b.cold(&metav1.RangeLoad{RowsPerSec: 500, MemoryBytes: 100 << 20}), "holds over a quarter of the memory bound")
	require.False(t, b.cold(&metav1.RangeLoad{RowsPerSec: 0, CatchingUp: true}), "catching up")

	_, ok := b.mergeable(&metav1.RangeLoad{RowsPerSec: 900}, &metav1.RangeLoad{RowsPerSec: 900})
	require.True(t, ok)
	_, ok = b.mergeable(&metav1.RangeLoad{RowsPerSec: 900, MemoryBytes: 40 << 20}, &metav1.RangeLoad{RowsPerSec: 900, MemoryBytes: 40 << 20})
	require.False(t, ok, "together they hold over a quarter of the memory bound")
	sum, ok := b.mergeable(&metav1.RangeLoad{RowsPerSec: 100, CpuShare: 0.02}, &metav1.RangeLoad{RowsPerSec: 100})
	require.True(t, ok)
	require.Equal(t, 900.0, sum, "scores add: 800 (0.02 core) + 100")
}

// Balancing by the combined score: two sorters applying the same rows per
// second, one of them with rows that cost four times the CPU, move a range
// from the CPU-heavy one; with rows only they would look balanced.
func TestPlanByCombinedScore(t *testing.T) {
	b := loadBounds{rows: 20_000, cpu: 0.5}
	opts := planOpts{minDiff: 2000, ratio: 0.25, loadMoves: 1}
	loads := map[string]*metav1.RangeLoad{
		"1": {RowsPerSec: 4000, CpuShare: 0.3}, // scores 12000
		"2": {RowsPerSec: 4000, CpuShare: 0.3}, // 12000
		"3": {RowsPerSec: 4000, CpuShare: 0.05},
		"4": {RowsPerSec: 4000, CpuShare: 0.05},
	}
	owners := map[string]string{"1": "aw", "2": "aw", "3": "bw", "4": "bw"}
	round := func(score func(*metav1.RangeLoad) float64) []assignment {
		var tasks []*schedTask
		ws := []schedWorker{{id: "aw"}, {id: "bw"}}
		for _, k := range []string{"1", "2", "3", "4"} {
			tasks = append(tasks, &schedTask{key: k, owner: owners[k], load: score(loads[k])})
			ws[int(owners[k][0]-'a')].load += score(loads[k])
		}
		return plan(ws, tasks, opts)
	}
	require.Empty(t, round(func(rl *metav1.RangeLoad) float64 { return rl.RowsPerSec }), "by rows alone: balanced")
	as := round(b.score)
	require.Len(t, as, 1)
	require.Equal(t, "aw", as[0].task.owner)
	require.Equal(t, "bw", as[0].owner)
	require.Equal(t, reasonLoad, as[0].reason)
}

// Rounds of the planner with every load reported (nothing settling) over
// random fleets converge: after at most a bounded number of moves a round
// moves nothing, with at most two moves per task.
func TestPlanRandomFleetsConverge(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	opts := planOpts{minDiff: 1000, ratio: 0.1, loadMoves: 1}
	for n := 0; n < 3000; n++ {
		nw, nt := 2+rng.Intn(3), 2+rng.Intn(8)
		tasks := make([]*schedTask, nt)
		for i := range tasks {
			load := float64(rng.Intn(4)) * float64(rng.Intn(20000))
			tasks[i] = &schedTask{key: fmt.Sprintf("%02d", i), owner: fmt.Sprintf("w%d", rng.Intn(nw)), load: load}
		}
		moves := 0
		desc := fmt.Sprint(nw, " workers:")
		for _, tk := range tasks {
			desc += fmt.Sprintf(" %s@%s=%.0f", tk.key, tk.owner, tk.load)
		}
		stable := false
		for round := 0; round < 60 && !stable; round++ {
			ws := make([]schedWorker, nw)
			for i := range ws {
				ws[i].id = fmt.Sprintf("w%d", i)
				for _, tk := range tasks {
					if tk.owner == ws[i].id {
						ws[i].load += tk.load
					}
				}
			}
			as := plan(ws, tasks, opts)
			stable = len(as) == 0
			for _, a := range as {
				moves++
				a.task.owner = a.owner
			}
		}
		if moves > 2*nt {
			t.Fatalf("fleet %d (%s): %d moves for %d tasks", n, desc, moves, nt)
		}
		if !stable {
			t.Fatalf("fleet %d (%s): still moving after 60 rounds", n, desc)
		}
	}
}
