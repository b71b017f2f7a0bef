package capture

import (
	"io"
	"log/slog"
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/tidbcodec"
)

func newArmed(t *testing.T, split []byte) *Capture {
	t.Helper()
	c := New(Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	enc := tidbcodec.EncodeRegionKey(split)
	require.NoError(t, c.Arm([]uint64{1, 2, 3}, []Region{
		{ID: 2, Version: 1, ConfVer: 1, End: enc},
		{ID: 3, Version: 1, ConfVer: 1, Start: enc},
	}))
	go func() {
		for range c.Batches() {
		}
	}()
	return c
}

// TestMergeKeepsFloorsPerKey: a region held back by a lock merges with one
// that published a later resolved ts; the lock's commit, above what its
// own region published, is no violation, though it is below what the
// other half published.
func TestMergeKeepsFloorsPerKey(t *testing.T) {
	split := tidbcodec.EncodeRecordKey(100, 50)
	key := tidbcodec.EncodeRecordKey(100, 1) // in the left region
	c := newArmed(t, split)
	start := tso()
	c.apply(start, 0, []applied{{kind: opPrewrite, key: key, lockOp: kvrpcpb.Op_Put, value: []byte("v")}})
	commit := tso()
	require.NoError(t, c.Cut()) // left publishes <= start, right publishes now (> commit)
	c.mu.Lock()
	c.merge(0, false)
	c.mu.Unlock()
	c.apply(start, commit, []applied{{kind: opCommit, key: key, lockOp: kvrpcpb.Op_Put, value: []byte("v")}})
	require.Zero(t, c.Stats().Violations)

	// A commit below what the key's own region published is one.
	c.apply(start, 0, []applied{{kind: opPrewrite, key: split, lockOp: kvrpcpb.Op_Put}})
	c.apply(start, commit, []applied{{kind: opCommit, key: split, lockOp: kvrpcpb.Op_Put}})
	require.Equal(t, int64(1), c.Stats().Violations)
}

// TestRowsTiKVWouldEmit: what each applied write becomes.
func TestRowsTiKVWouldEmit(t *testing.T) {
	c := newArmed(t, tidbcodec.EncodeRecordKey(100, 50))
	k := tidbcodec.EncodeRecordKey(100, 1)
	s := tso()
	c.apply(s, 0, []applied{
		{kind: opLockRewrite, key: k, lockOp: kvrpcpb.Op_PessimisticLock},         // pessimistic lock: nothing
		{kind: opPrewrite, key: k, lockOp: kvrpcpb.Op_Put, value: []byte("v")},    // PREWRITE
		{kind: opLockRewrite, key: k, lockOp: kvrpcpb.Op_Put, value: []byte("v")}, // refresh: PREWRITE with the short value
	})
	c.apply(s, s+5, []applied{{kind: opCommit, key: k, lockOp: kvrpcpb.Op_Put, value: []byte("v")}}) // COMMIT
	k2 := tidbcodec.EncodeRecordKey(100, 2)
	c.apply(s+1, s+6, []applied{{kind: opCommit, key: k2, lockOp: kvrpcpb.Op_Del}}) // no lock: COMMITTED (1PC)
	k3 := tidbcodec.EncodeRecordKey(100, 3)
	c.apply(s+2, 0, []applied{{kind: opPrewrite, key: k3, lockOp: kvrpcpb.Op_Lock}}) // Lock type: nothing
	c.apply(s+2, 0, []applied{{kind: opRollback, key: k3, delLock: true}})           // ROLLBACK
	var rows []string
	c.mu.Lock()
	for _, b := range c.bufs {
		for _, l := range b.lines {
			for _, r := range l.Rows {
				rows = append(rows, r.Type+" "+r.Op+" "+string(r.Value))
			}
		}
	}
	require.Empty(t, c.locks)
	c.mu.Unlock()
	require.Equal(t, []string{"prewrite put v", "prewrite put v", "commit put ", "committed delete ", "rollback  "}, rows)
}
