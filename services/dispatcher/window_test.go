package dispatcher

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tistream/tistream/libs/objstore"
)

// The checkpoint rule on its own: the highest seq such that every file up to
// it is durable in every range it fed, counting only acks of the sorter each
// batch went to.
func TestWindowCheckpointRule(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Security.Insecure = true
	s, err := New(cfg, Deps{Etcd: &clientv3.Client{}, Buffer: objstore.NewMemory()})
	require.NoError(t, err)
	st := newStream(s, streamKey{1, 1}, 1, 1, 0)
	snap := &routeSnap{owners: map[uint64]rangeOwner{1: {sorter: "a", addr: "A", epoch: 1}, 2: {sorter: "b", addr: "B", epoch: 1}},
		changed: make(chan struct{})}
	st.snap = snap
	r := newRunState(context.Background())
	st.run = r
	file := func(seq uint64, pending map[uint64]string) bool {
		p := map[uint64]string{}
		for k, v := range pending {
			p[k] = v
		}
		return st.appendFile(&inflight{seq: seq, maxTs: seq * 10, pending: p, sent: pending}, snap)
	}
	require.True(t, file(1, map[uint64]string{1: "A", 2: "B"}))
	require.True(t, file(2, nil)) // fed no range
	require.True(t, file(3, map[uint64]string{1: "A"}))
	require.Zero(t, st.checkpointSeq())

	st.onDurable("A", 1, 3) // range 1 has 1..3; range 2 still owes file 1
	require.Zero(t, st.checkpointSeq())
	st.onDurable("C", 2, 9) // not the sorter range 2's batch went to
	require.Zero(t, st.checkpointSeq())
	st.onDurable("B", 2, 1)
	require.Equal(t, uint64(3), st.checkpointSeq())
	require.Equal(t, position{3, 30}, st.ckpt)
	require.Zero(t, st.windowLen())

	// A file whose range already acked it needs no ack.
	require.True(t, file(4, map[uint64]string{1: "A", 2: "B"}))
	require.Equal(t, uint64(3), st.checkpointSeq())
	st.onDurable("A", 1, 4)
	require.True(t, file(5, map[uint64]string{1: "A"}))
	require.Equal(t, uint64(3), st.checkpointSeq(), "file 4 still waits for range 2")

	// A refusal of an in-flight file fails the run, even for a range that
	// already acked it; a refusal of a file behind the checkpoint does not.
	st.onNotOwner("A", 1, 2)
	require.False(t, r.ended())
	st.onNotOwner("B", 1, 4) // range 1's batch did not go to B
	require.False(t, r.ended())
	st.onNotOwner("A", 1, 4)
	require.True(t, r.ended())
	require.Equal(t, reasonNotOwner, r.reason())

	// Requests built from a superseded snapshot are not added.
	st.snap = &routeSnap{owners: snap.owners, changed: make(chan struct{})}
	require.False(t, st.appendFile(&inflight{seq: 6, pending: map[uint64]string{}}, snap))
	require.Equal(t, 2, st.windowLen())
}
