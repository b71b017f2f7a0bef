package metaserver

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

func TestPlan(t *testing.T) {
	type want struct{ key, owner, reason string }
	cases := []struct {
		name    string
		workers []schedWorker
		tasks   []*schedTask
		want    []want
	}{
		{"no workers: nothing", nil, []*schedTask{{key: "a"}}, nil},
		{"fewest tasks, then least load, then id",
			[]schedWorker{{id: "w3", load: 1}, {id: "w2", load: 5}, {id: "w1", load: 1}},
			[]*schedTask{{key: "a", owner: "w2"}, {key: "b"}, {key: "c", owner: "gone"}},
			[]want{{"b", "w1", reasonUnassigned}, {"c", "w3", reasonOwnerGone}}},
		{"held tasks wait, groups stay together",
			[]schedWorker{{id: "w1"}, {id: "w2"}},
			[]*schedTask{{key: "a", owner: "gone", pinned: true, group: "g"}, {key: "b", owner: "gone", pinned: true, group: "g"},
				{key: "c", held: true}},
			[]want{{"a", "w1", reasonOwnerGone}, {"b", "w1", reasonOwnerGone}}},
		{"a live group owner wins",
			[]schedWorker{{id: "w1"}, {id: "w2"}},
			[]*schedTask{{key: "a", owner: "w2", pinned: true, group: "g"}, {key: "b", owner: "gone", pinned: true, group: "g"}},
			[]want{{"b", "w2", reasonOwnerGone}}},
		{"balance moves one unpinned task from the busiest",
			[]schedWorker{{id: "w1"}, {id: "w2"}},
			[]*schedTask{{key: "a", owner: "w1"}, {key: "b", owner: "w1"}, {key: "c", owner: "w1", pinned: true}, {key: "d", owner: "w1"}},
			[]want{{"d", "w2", reasonBalance}}},
		{"a difference of one is balanced",
			[]schedWorker{{id: "w1"}, {id: "w2"}},
			[]*schedTask{{key: "a", owner: "w1"}, {key: "b", owner: "w1"}, {key: "c", owner: "w2"}},
			nil},
		{"only pinned tasks: no move",
			[]schedWorker{{id: "w1"}, {id: "w2"}},
			[]*schedTask{{key: "a", owner: "w1", pinned: true}, {key: "b", owner: "w1", pinned: true}},
			nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []want
			for _, a := range plan(tc.workers, tc.tasks, planOpts{}) {
				got = append(got, want{a.task.key, a.owner, a.reason})
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// Unassigned ranges get the only sorter; a second sorter gets half by
// balancing (one move per round, epoch+1); when the first loses its lease,
// its ranges move to the second.
func TestSchedulerAssignsBalancesAndMoves(t *testing.T) {
	env := newEnv(t)
	_, c := env.leader()
	env.register(c, 1, 4, 101, 102, 103, 104)
	s1 := env.sorter("s1")
	require.Eventually(t, func() bool { return allOwned(env.ranges(1), "s1") }, waitFor, pollEvery)
	for _, r := range env.ranges(1) {
		require.Equal(t, uint64(1), r.Epoch)
	}

	env.sorter("s2")
	require.Eventually(t, func() bool {
		n := map[string]int{}
		for _, r := range env.ranges(1) {
			n[r.Owner]++
		}
		return n["s1"] == 2 && n["s2"] == 2
	}, waitFor, pollEvery)
	before := env.ranges(1)
	for _, r := range before {
		require.Equal(t, map[string]uint64{"s1": 1, "s2": 2}[r.Owner], r.Epoch, "range %d", r.RangeId)
	}

	require.NoError(t, s1.Close())
	require.Eventually(t, func() bool { return allOwned(env.ranges(1), "s2") }, waitFor, pollEvery)
	for id, r := range env.ranges(1) {
		want := before[id].Epoch
		if before[id].Owner == "s1" {
			want++
		}
		require.Equal(t, want, r.Epoch, "range %d", id)
	}
}

// Streams are balanced over dispatchers the same way.
func TestSchedulerBalancesStreams(t *testing.T) {
	env := newEnv(t)
	s, c := env.leader()
	env.register(c, 1, 1, 101)
	for store := uint64(1); store <= 4; store++ {
		s.notes.record(streamNote{cluster: testCluster, tenant: 1, store: store, seq: 1})
	}
	for i := 1; i <= 2; i++ {
		env.worker(metav1.WorkerKind_WORKER_KIND_DISPATCHER, fmt.Sprintf("d%d", i), fmt.Sprintf("d%d:7300", i))
	}
	require.Eventually(t, func() bool {
		n := map[string]int{}
		for _, st := range env.streams(1) {
			n[st.Owner]++
		}
		return n["d1"] == 2 && n["d2"] == 2
	}, waitFor, pollEvery)
}
