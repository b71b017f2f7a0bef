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
	Emitted uint64 // rows emitted so far
	Spills  uint64 // transactions moved to the spill store so far
}

// Stats is O(1).
func (m *Matcher) Stats() Stats {
	return Stats{
		Txns:             len(m.txns),
		Prewrites:        m.prewrites,
		SpilledTxns:      len(m.spilled),
		SpilledPrewrites: m.spilledN,
		PendingCommits:   m.commits.len(),
		PendingRollbacks: m.rollbacks.n,
		Bytes:            m.charged,
		Emitted:          m.emitted,
		Spills:           m.spills,
	}
}

// Close empties the matcher and returns its share of the budget (the range
// moved away or stopped). Its spilled rows are the caller's to drop with the
// range's buffer.
func (m *Matcher) Close() {
	m.charge(-m.charged)
	m.txns, m.spilled = make(map[uint64]*txn), make(map[uint64]*spilledTxn)
	m.commits, m.rollbacks = newPendingCommits(), newPendingRollbacks()
	m.prewrites, m.spilledN = 0, 0
}
