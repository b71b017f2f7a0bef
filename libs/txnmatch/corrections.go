package txnmatch

import "github.com/tistream/tistream/libs/sortbuf"

// TiKV can write several prewrites of one (key, start_ts), and they reach
// a range through several store streams in no fixed order:
//   - a lock refresh: a heartbeat or lock update re-sends the prewrite as a
//     PUT with an empty value. It carries nothing: Prewrite ignores it (a
//     real write never has an empty PUT value; store-change-file spec). So
//     a refresh read before the real prewrite (the new leader's stream read
//     first) or after it was matched changes nothing and holds nothing.
//   - pipelined DML: each flush of the transaction writes the key again
//     with a higher generation.
//
// The effective prewrite is the one of highest generation, the first seen at
// an equal one, in every arrival order: also after its commit matched a
// lower one, up to the flush of the row. So a row emitted from a pipelined
// prewrite (generation > 0) is remembered in the correction index until the
// range has published past its commit_ts (Forget); a later prewrite of a
// higher generation re-emits it (same commit_ts, start_ts and key: it
// replaces the row in the sorter buffer), a lower or equal one is dropped.

// rank orders the prewrites of one (key, start_ts): by generation.
type rank struct {
	gen uint64
}

func rankOf(gen uint64) rank { return rank{gen: gen} }

func (a rank) less(b rank) bool { return a.gen < b.gen }

// supersedable reports whether a row emitted with this rank goes into the
// correction index: only pipelined ones. No pipelined generation follows a
// non-pipelined prewrite, and the common path must not pay for the index.
func (a rank) supersedable() bool { return a.gen > 0 }

// isRefresh reports whether a prewrite is a lock refresh.
func isRefresh(op sortbuf.Op, value []byte) bool { return op == sortbuf.OpPut && len(value) == 0 }

// remember puts a matched commit into the correction index; c is owned by
// the index from now on.
func (m *Matcher) remember(c *pendingCommit, r rank) {
	c.rank = r
	m.corrections.add(c)
	m.charge(commitSize(c.key))
}

// correct applies a prewrite of a row already emitted: a higher rank
// re-emits the row with its content, anything else is dropped.
func (m *Matcher) correct(e *pendingCommit, key []byte, op sortbuf.Op, value, old []byte, r rank) error {
	if !e.rank.less(r) {
		m.superseded++
		return nil
	}
	rowOp := e.op
	if !rowOp.Valid() {
		rowOp = op
	}
	err := m.emitRow(sortbuf.Row{CommitTs: e.commitTs, StartTs: e.startTs, Op: rowOp,
		Key: key, Value: nilIfEmpty(value), OldValue: nilIfEmpty(old)})
	if err != nil {
		return err
	}
	e.rank = r
	m.reemitted++
	m.superseded++
	return nil
}

// Forget is told that the range has published a flush up to upTo. Every
// prewrite of a transaction with start_ts < upTo has been delivered by then:
// a region's resolved ts cannot pass a lock, and the range's watermark only
// passes a region's resolved ts once every incarnation that could have
// carried the lock is read (docs/watermarks.md). So Forget drops
//   - the correction index's rows with commit_ts <= upTo: their prewrites
//     are all in, and a row re-emitted at or below the flushed floor would
//     be ignored by the sorter buffer anyway;
//   - the rollbacks waiting for a prewrite with start_ts < upTo: it is not
//     coming (ROLLBACKs come for prewrites that failed and for pessimistic
//     or Lock-type locks, which have no PREWRITE row, and TiKV refuses a
//     prewrite of a (key, start_ts) after its rollback);
//   - the records of commits dropped as late with commit_ts <= upTo
//     (DropCommit).
//
// upTo must be at or below what this matcher's input has passed, not only
// what the range published: a range restored from a snapshot is fed again
// the files after it, with prewrites of rows a previous owner published,
// and what Forget drops would no longer meet them (the sorter passes
// min(published, its watermark map's watermark) at restore).
//
// O(log n) per correction dropped; O(transactions with waiting rollbacks).
func (m *Matcher) Forget(upTo uint64) {
	for m.corrections.len() > 0 && m.corrections.heap[0].commitTs <= upTo {
		c := m.corrections.heap[0]
		m.corrections.remove(c)
		m.charge(-commitSize(c.key))
	}
	if m.rollbacks.n > 0 {
		m.charge(-m.rollbacks.dropBelow(upTo))
	}
	m.Settle()
}
