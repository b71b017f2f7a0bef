package txnmatch

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
)

// DropCommit (a commit at or below the range's published watermark) drops
// its prewrite in every arrival order — held in memory, spilled, arriving
// after, several times (re-sent, pipelined generations) — ends a commit of
// it that waits, never emits a row, and leaves nothing behind once Forget
// passes its commit_ts. Before that, its record drops every prewrite of
// (key, start_ts) that comes; Forget below the commit_ts keeps it even
// when past the start_ts.
func TestDropCommitEveryOrder(t *testing.T) {
	const startTs, commitTs = 40, 50
	prewrite := func(h *harness, value string, gen uint64) {
		t.Helper()
		require.NoError(t, h.m.Prewrite([]byte("k"), sortbuf.OpPut, []byte(value), nil, startTs, gen))
	}
	drop := func(h *harness) {
		t.Helper()
		require.NoError(t, h.m.DropCommit([]byte("k"), startTs, commitTs))
	}
	cases := map[string]func(h *harness){
		"prewrite then drop":           func(h *harness) { prewrite(h, "v", 0); drop(h) },
		"drop then prewrite":           func(h *harness) { drop(h); prewrite(h, "v", 0) },
		"drop then prewrite twice":     func(h *harness) { drop(h); prewrite(h, "v", 0); prewrite(h, "v", 0) },
		"drop then generations 1, 2":   func(h *harness) { drop(h); prewrite(h, "g1", 1); prewrite(h, "g2", 2) },
		"generation 1, drop, then 2":   func(h *harness) { prewrite(h, "g1", 1); drop(h); prewrite(h, "g2", 2) },
		"commit waits, drop, prewrite": func(h *harness) { h.commit("k", startTs, commitTs); drop(h); prewrite(h, "v", 0) },
		"rollback waits, drop, prewrite twice": func(h *harness) {
			h.rollback("k", startTs)
			drop(h)
			prewrite(h, "v", 0)
			prewrite(h, "v", 0)
		},
		"drop, rollback, prewrite twice": func(h *harness) {
			drop(h)
			h.rollback("k", startTs)
			prewrite(h, "v", 0)
			prewrite(h, "v", 0)
		},
		"drop twice, prewrite": func(h *harness) { drop(h); drop(h); prewrite(h, "v", 0) },
	}
	for name, run := range cases {
		for _, budget := range []int64{1 << 40, 1} { // 1: every prewrite is spilled
			h := newHarness(t, budget)
			run(h)
			h.requireConsistent()
			st := h.m.Stats()
			require.Empty(t, h.out.rows, "%s: nothing emitted", name)
			require.Zero(t, st.Prewrites+st.Txns+st.SpilledTxns+st.PendingCommits, "%s budget %d", name, budget)
			require.Zero(t, st.SpilledPrewrites, "%s budget %d", name, budget)
			require.Zero(t, h.spillCount(), name)
			require.Equal(t, 1, st.PendingRollbacks, "%s: the record of the dropped commit stays", name)

			h.m.Forget(commitTs - 1) // past its start_ts, not its commit_ts
			prewrite(h, "again", 0)
			require.Zero(t, h.m.Stats().Prewrites+h.m.Stats().SpilledTxns, "%s: still dropped", name)
			h.m.Forget(commitTs)
			require.Zero(t, h.m.Stats().PendingRollbacks, name)
			require.Zero(t, h.m.Stats().Bytes, name)
			require.Zero(t, h.used(), name)
		}
	}
}

// The record of a dropped commit survives Snapshot and Restore, and the
// split of a matcher by key (SnapshotKeys) and the merge of snapshots;
// a version 2 snapshot's rollbacks restore as rollbacks (used up by the
// prewrite they meet).
func TestDropCommitSnapshots(t *testing.T) {
	h := newUnlimited(t)
	require.NoError(t, h.m.DropCommit([]byte("k"), 40, 50))
	h.rollback("r", 41)
	var full, part bytes.Buffer
	require.NoError(t, h.m.Snapshot(&full))
	require.NoError(t, h.m.SnapshotKeys(&part, func(k []byte) bool { return string(k) == "k" }))
	var merged bytes.Buffer
	require.NoError(t, MergeSnapshots(&merged, nil, part.Bytes()))

	for name, snap := range map[string][]byte{"full": full.Bytes(), "part": part.Bytes(), "merged": merged.Bytes()} {
		r := newUnlimited(t)
		require.NoError(t, r.m.Restore(bytes.NewReader(snap)), name)
		for range 2 {
			require.NoError(t, r.m.Prewrite([]byte("k"), sortbuf.OpPut, []byte("v"), nil, 40, 0))
		}
		require.Zero(t, r.m.Stats().Prewrites, name)
		r.m.Forget(49)
		require.NoError(t, r.m.Prewrite([]byte("k"), sortbuf.OpPut, []byte("v"), nil, 40, 0))
		require.Zero(t, r.m.Stats().Prewrites, "%s: kept until its commit_ts", name)
		r.requireConsistent()
	}

	r := newUnlimited(t)
	require.NoError(t, r.m.Restore(bytes.NewReader(v2Snapshot())))
	require.Equal(t, 1, r.m.Stats().PendingRollbacks)
	require.NoError(t, r.m.Prewrite([]byte("e"), sortbuf.OpPut, []byte("v"), nil, 13, 0))
	require.Zero(t, r.m.Stats().PendingRollbacks, "a version 2 rollback is used up by its prewrite")
	require.Zero(t, r.m.Stats().Prewrites)
	require.NoError(t, r.m.Prewrite([]byte("e"), sortbuf.OpPut, []byte("v"), nil, 13, 0))
	require.Equal(t, 1, r.m.Stats().Prewrites, "as before version 3")
	r.requireConsistent()
}

// v2Snapshot is a version 2 snapshot (before dropped commits): a rollback
// of e waiting at 13, nothing else.
func v2Snapshot() []byte {
	none := []byte{0}
	return snapshotBody(2, none, none, none, []byte{1, 1, 'e', 13}, none)
}
