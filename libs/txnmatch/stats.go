package txnmatch

// Stats describes what a matcher holds.
type Stats struct {
	Txns             int   // transactions with prewrites in memory
	Prewrites        int   // prewrites in memory
	SpilledTxns      int   // transactions in the spill store
	SpilledPrewrites int64 // prewrites in the spill store
	PendingCommits   int
	PendingRollbacks int
	// Bytes is this matcher's share of the budget: in-memory prewrites and
	// waiting commits and rollbacks, with bookkeeping overhead.
	Bytes   int64
	Emitted uint64 // rows emitted so far, re-emitted ones included
	Spills  uint64 // transactions moved to the spill store so far
	// Corrections are rows emitted from a prewrite that a later one of the
	// same (key, start_ts) may outrank (a lock refresh, a pipelined DML
	// generation), kept until Forget passes their commit_ts.
	Corrections int
	// Reemitted counts rows emitted again because a prewrite of higher rank
	// arrived after the row was emitted.
	Reemitted uint64
	// Superseded counts prewrites that lost to another of the same (key,
	// start_ts): dropped on arrival (a repeat, a lower rank) or replaced.
	Superseded uint64
	// Refreshes counts lock refreshes ignored (a PUT prewrite with an empty
	// value: a heartbeat re-sending the lock; it carries nothing).
	Refreshes uint64
}

// Stats is O(1).
func (m *Matcher) Stats() Stats {
	return Stats{
		Txns:             m.txns.len(),
		Prewrites:        m.prewrites,
		SpilledTxns:      len(m.spilled),
		SpilledPrewrites: m.spilledN,
		PendingCommits:   m.commits.len(),
		PendingRollbacks: m.rollbacks.n,
		Bytes:            m.charged,
		Emitted:          m.emitted,
		Spills:           m.spills,
		Corrections:      m.corrections.len(),
		Reemitted:        m.reemitted,
		Superseded:       m.superseded,
		Refreshes:        m.refreshes,
	}
}

// Close empties the matcher and returns its share of the budget (the range
// moved away or stopped). Its spilled rows are the caller's to drop with the
// range's buffer.
func (m *Matcher) Close() {
	m.charge(-m.charged)
	m.Settle()
	m.txns, m.spilled = txnTable{}, make(map[uint64]*spilledTxn)
	m.commits, m.rollbacks, m.corrections = newPendingCommits(), newPendingRollbacks(), newPendingCommits()
	m.prewrites, m.spilledN = 0, 0
}
