package sorter

import (
	"testing"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/route"
)

func withGeneration(ev route.Event, gen uint64) route.Event {
	ev.Row.Generation = gen
	return ev
}

// A leader transfer while a transaction holds a lock: the new leader (store
// B) re-sends the lock on a heartbeat as a PREWRITE with an empty value (a
// lock refresh) and then commits; the old leader (store A) wrote the real
// prewrite. Whichever store is read first, the published row carries the
// real value, never the refresh's empty one.
func TestLockRefreshFromNewLeader(t *testing.T) {
	storeA := []step{
		{1, []route.Event{start(1, 1, 5, "a", "c"), row(cdcpb.Event_PREWRITE, "b", "real", 40, 0), resolved(1, 1, 5, 39)}},
		{1, []route.Event{end(1, 1, 5, 39)}},
	}
	storeB := []step{
		{2, []route.Event{start(1, 1, 6, "a", "c", ref(1, 1, 5)), row(cdcpb.Event_PREWRITE, "b", "", 40, 0),
			row(cdcpb.Event_COMMIT, "b", "", 40, 50), resolved(1, 1, 6, 60)}},
	}
	seen := false
	runInterleavings(t, storeA, storeB, map[uint64][]string{50: {"b@50=real"}}, 60, func(order string, _ []uint64) {
		seen = seen || order == "B1 A1 A2 "
	})
	require.True(t, seen, "the refresh and the commit are read before the real prewrite")
}

// Pipelined DML: the old leader wrote generation 1 and 2 of key b, the new
// leader generation 3, then the commit. Generation 3 wins in every order:
// also when the old leader's generations are read after it, before or after
// the commit.
func TestPipelinedGenerationsAcrossLeaders(t *testing.T) {
	storeA := []step{
		{1, []route.Event{start(1, 1, 5, "a", "c"), withGeneration(row(cdcpb.Event_PREWRITE, "b", "g1", 40, 0), 1)}},
		{1, []route.Event{withGeneration(row(cdcpb.Event_PREWRITE, "b", "g2", 40, 0), 2), resolved(1, 1, 5, 39), end(1, 1, 5, 39)}},
	}
	storeB := []step{
		{2, []route.Event{start(1, 1, 6, "a", "c", ref(1, 1, 5)), withGeneration(row(cdcpb.Event_PREWRITE, "b", "g3", 40, 0), 3)}},
		{2, []route.Event{row(cdcpb.Event_COMMIT, "b", "", 40, 50), resolved(1, 1, 6, 60)}},
	}
	runInterleavings(t, storeA, storeB, map[uint64][]string{50: {"b@50=g3"}}, 60, nil)
}
