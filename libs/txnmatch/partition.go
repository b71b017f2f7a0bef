package txnmatch

import (
	"fmt"
	"io"
)

// Splitting and merging sorter ranges moves a matcher's state between
// ranges by key: SnapshotKeys writes the share of one key span, and
// MergeSnapshots joins the snapshots of ranges over disjoint keys. Both
// write the ordinary snapshot format, so the result is restored with
// Restore like any other snapshot.

// SnapshotKeys writes a snapshot of the part of the state whose keys
// satisfy keep: the in-memory prewrites, waiting commits and rollbacks and
// correction index entries of those keys, and the spilled transactions counted by their kept keys only
// (a spilled transaction with no kept key is left out). The spilled rows
// themselves are the caller's to copy, with the same predicate, from the
// SpillStore (ForEach). The matcher is not changed.
func (m *Matcher) SnapshotKeys(w io.Writer, keep func(key []byte) bool) error {
	part := &Matcher{
		spilled:     make(map[uint64]*spilledTxn),
		commits:     newPendingCommits(),
		rollbacks:   newPendingRollbacks(),
		corrections: newPendingCommits(),
	}
	m.txns.each(func(ts uint64, t *txn) bool {
		var kept *txn
		t.rows.each(func(p prewrite) bool {
			if keep(p.key()) {
				if kept == nil {
					kept = &txn{}
					part.txns.add(ts, kept)
				}
				kept.rows.set(p, false) // shared, read-only: Snapshot only reads it
			}
			return true
		})
		return true
	})
	if len(m.spilled) > 0 {
		err := m.spill.ForEach(func(startTs uint64, key, _ []byte) error {
			if _, ok := m.spilled[startTs]; !ok || !keep(key) {
				return nil
			}
			st := part.spilled[startTs]
			if st == nil {
				st = &spilledTxn{}
				part.spilled[startTs] = st
			}
			st.keys++
			return nil
		})
		if err != nil {
			return fmt.Errorf("txnmatch: count spilled keys: %w", err)
		}
	}
	for _, c := range m.commits.heap {
		if keep([]byte(c.key)) {
			cp := *c // the heap index belongs to the copy's heap
			part.commits.add(&cp)
		}
	}
	for ts, keys := range m.rollbacks.byTxn {
		for k, c := range keys {
			if keep([]byte(k)) {
				part.rollbacks.add(ts, k, c)
			}
		}
	}
	for _, c := range m.corrections.heap {
		if keep([]byte(c.key)) {
			cp := *c
			part.corrections.add(&cp)
		}
	}
	return part.Snapshot(w)
}

// MergeSnapshots writes to w the snapshot of one matcher holding the
// states of all snaps, which must be snapshots of matchers over disjoint
// keys (adjacent ranges being merged). A transaction that one input holds
// in memory and another has spilled is spilled whole in the result, so
// that a transaction is never both: its in-memory rows are handed to
// respill (start_ts, key and the spill value, in (start_ts, key) order) for
// the caller to store with the spilled prewrites it copies from the inputs'
// spill stores.
func MergeSnapshots(w io.Writer, respill func(startTs uint64, key, value []byte) error, snaps ...[]byte) error {
	out := &Matcher{
		spilled:     make(map[uint64]*spilledTxn),
		commits:     newPendingCommits(),
		rollbacks:   newPendingRollbacks(),
		corrections: newPendingCommits(),
	}
	for i, b := range snaps {
		st, err := decodeSnapshot(b)
		if err != nil {
			return fmt.Errorf("merge snapshot %d: %w", i, err)
		}
		for ts, t := range st.txns {
			dst := out.txns.get(ts)
			if dst == nil {
				dst = &txn{}
				out.txns.add(ts, dst)
			}
			var dupErr error
			t.rows.each(func(p prewrite) bool {
				if _, dup := dst.rows.get(p.key()); dup {
					dupErr = fmt.Errorf("merge snapshot %d: %w: prewrite of %q at %d in two inputs", i, ErrCorruptSnapshot, p.key(), ts)
					return false
				}
				dst.rows.set(p, false)
				return true
			})
			if dupErr != nil {
				return dupErr
			}
		}
		for ts, s := range st.spilled {
			dst := out.spilled[ts]
			if dst == nil {
				dst = &spilledTxn{}
				out.spilled[ts] = dst
			}
			dst.keys += s.keys
		}
		for _, c := range st.commits {
			if out.commits.get(c.startTs, []byte(c.key)) == nil {
				out.commits.add(c)
			}
		}
		for ts, keys := range st.rollbacks.byTxn {
			for k, c := range keys {
				out.rollbacks.add(ts, k, c)
			}
		}
		for _, c := range st.corrections {
			if out.corrections.get(c.startTs, []byte(c.key)) == nil {
				out.corrections.add(c)
			}
		}
	}
	for _, ts := range sortedKeys(out.spilled) {
		t := out.txns.get(ts)
		if t == nil {
			continue
		}
		rows := t.rows.sorted()
		for _, p := range rows {
			if err := respill(ts, p.key(), appendSpillValue(nil, p.op, p.gen, p.value(), p.old())); err != nil {
				return fmt.Errorf("txnmatch: respill: %w", err)
			}
		}
		out.spilled[ts].keys += int64(len(rows))
		out.txns.remove(ts)
	}
	return out.Snapshot(w)
}
