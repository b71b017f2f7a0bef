package txnmatch

import (
	"errors"
	"fmt"

	"github.com/tistream/tistream/libs/sortbuf"
)

// ErrInvalidEvent is returned for an event no upstream can have produced
// (an unknown op, a zero commit_ts). The matcher's state is unchanged.
var ErrInvalidEvent = errors.New("txnmatch: invalid event")

// Matcher is the prewrite buffer of one range.
type Matcher struct {
	spill  sortbuf.SpillStore
	budget *Budget
	emit   func(sortbuf.Row) error

	txns      txnTable               // in-memory prewrites by start_ts
	spilled   map[uint64]*spilledTxn // transactions in the spill store
	commits   pendingCommits
	rollbacks pendingRollbacks
	// corrections are rows emitted from a prewrite that a later one may
	// outrank, until Forget (corrections.go).
	corrections pendingCommits

	prewrites  int   // in memory
	charged    int64 // bytes this matcher holds in the budget
	unsettled  int64 // of charged, not yet passed on to the budget
	spilledN   int64 // prewrites in the spill store
	emitted    uint64
	spills     uint64 // transactions moved to the spill store so far
	reemitted  uint64
	superseded uint64
	refreshes  uint64 // lock refreshes ignored
	scratch    []byte // spill value encoding
	pool       txnPool
}

// New returns an empty matcher of one range that emits committed rows to
// emit and spills to spill when budget is exceeded.
func New(spill sortbuf.SpillStore, budget *Budget, emit func(sortbuf.Row) error) *Matcher {
	return &Matcher{
		spill: spill, budget: budget, emit: emit,
		spilled:     make(map[uint64]*spilledTxn),
		commits:     newPendingCommits(),
		rollbacks:   newPendingRollbacks(),
		corrections: newPendingCommits(),
	}
}

// Prewrite records a prewrite, or completes the commit or rollback that
// arrived before it. generation is the pipelined DML generation (0 if not
// pipelined). Of several prewrites of one (key, start_ts) the one of
// highest generation wins, whatever their order; a lock refresh (a PUT
// with an empty value) is ignored (corrections.go).
func (m *Matcher) Prewrite(key []byte, op sortbuf.Op, value, oldValue []byte, startTs, generation uint64) error {
	if !op.Valid() {
		return fmt.Errorf("%w: prewrite with %s", ErrInvalidEvent, op)
	}
	if n := len(key) + len(value) + len(oldValue); n > sortbuf.MaxRowBytes {
		return fmt.Errorf("%w: prewrite of %d bytes", ErrInvalidEvent, n)
	}
	if isRefresh(op, value) {
		m.refreshes++
		return nil
	}
	rk := rankOf(generation)
	if c := m.commits.get(startTs, key); c != nil {
		rowOp := c.op
		if !rowOp.Valid() {
			rowOp = op
		}
		r := sortbuf.Row{
			CommitTs: c.commitTs, StartTs: startTs, Op: rowOp,
			Key: key, Value: nilIfEmpty(value), OldValue: nilIfEmpty(oldValue),
		}
		if err := m.emitRow(r); err != nil {
			return err
		}
		m.commits.remove(c)
		m.charge(-commitSize(c.key))
		if m.rollbacks.remove(startTs, key) { // commit wins; see doc.go
			m.charge(-rollbackSize(len(key)))
		}
		if rk.supersedable() {
			m.remember(c, rk)
		}
		return nil
	}
	if m.corrections.len() > 0 {
		if e := m.corrections.get(startTs, key); e != nil {
			return m.correct(e, key, op, value, oldValue, rk)
		}
	}
	if drop, usedUp := m.rollbacks.meet(startTs, key); drop {
		if usedUp {
			m.charge(-rollbackSize(len(key)))
		}
		return nil
	}
	if st := m.spilled[startTs]; st != nil {
		return m.putSpilled(st, startTs, key, op, value, oldValue, generation)
	}
	t := m.txns.get(startTs)
	var delta int64
	if t == nil {
		t = m.pool.get()
		m.txns.add(startTs, t)
	}
	old, held := t.rows.get(key)
	if held { // a repeated prewrite: the first of the highest rank wins
		m.superseded++
		if !old.rank().less(rk) {
			return nil
		}
		delta -= old.size()
	} else {
		m.prewrites++
	}
	p := makePrewrite(t.alloc(len(key)+len(value)+len(oldValue)), key, op, generation, value, oldValue)
	delta += p.size()
	t.rows.set(p, held)
	t.bytes += delta
	m.charge(delta)
	if m.used() > m.budget.limit {
		return m.spillLargest()
	}
	return nil
}

// Commit emits the row if its prewrite is known; otherwise the commit
// waits for it (see MinPendingCommit). op may be 0 to take the prewrite's.
func (m *Matcher) Commit(key []byte, op sortbuf.Op, startTs, commitTs uint64) error {
	if commitTs == 0 || (op != 0 && !op.Valid()) {
		return fmt.Errorf("%w: commit with commit_ts %d and %s", ErrInvalidEvent, commitTs, op)
	}
	if t := m.txns.get(startTs); t != nil {
		if p, ok := t.rows.get(key); ok {
			if err := m.emitRow(p.row(op, startTs, commitTs)); err != nil {
				return err
			}
			if rk := p.rank(); rk.supersedable() {
				m.remember(&pendingCommit{key: string(key), startTs: startTs, commitTs: commitTs, op: op}, rk)
			}
			m.dropInMemory(t, startTs, key, p)
			return nil
		}
	}
	if st := m.spilled[startTs]; st != nil {
		r, gen, ok, err := m.takeSpilled(st, startTs, key, true)
		if err != nil || ok {
			if ok {
				rk := rankOf(gen)
				if op.Valid() {
					r.Op = op
				}
				r.CommitTs = commitTs
				if err = m.emitRow(r); err == nil && rk.supersedable() {
					m.remember(&pendingCommit{key: string(key), startTs: startTs, commitTs: commitTs, op: op}, rk)
				}
			}
			return err
		}
	}
	if m.corrections.len() > 0 {
		if e := m.corrections.get(startTs, key); e != nil && e.commitTs == commitTs {
			return nil // a repeated commit of a row emitted already
		}
	}
	if m.commits.get(startTs, key) != nil {
		return nil // a repeated commit: it waits once
	}
	m.commits.add(&pendingCommit{key: string(key), startTs: startTs, commitTs: commitTs, op: op})
	m.charge(commitSize(string(key)))
	return nil
}

// Rollback drops the prewrite, or waits for it to drop it on arrival.
func (m *Matcher) Rollback(key []byte, startTs uint64) error {
	if t := m.txns.get(startTs); t != nil {
		if p, ok := t.rows.get(key); ok {
			m.dropInMemory(t, startTs, key, p)
			return nil
		}
	}
	if st := m.spilled[startTs]; st != nil {
		if _, _, ok, err := m.takeSpilled(st, startTs, key, false); err != nil || ok {
			return err
		}
	}
	if m.commits.get(startTs, key) != nil {
		return nil // the commit wins; see doc.go
	}
	if m.rollbacks.add(startTs, string(key), 0) {
		m.charge(rollbackSize(len(key)))
	}
	return nil
}

// DropCommit is told that the commit of (key, start_ts) at commit_ts will
// never be emitted: it is at or below the watermark the range published,
// so its row is published already (or was lost upstream, which no later
// event can repair). Its prewrite can then never match: DropCommit drops
// it now — in memory or spilled — with a waiting commit of it, and keeps a
// record that drops every prewrite of (key, start_ts) that arrives later,
// until Forget passes commit_ts. The sorter calls it for such a commit on
// arrival and for such a commit restored from a snapshot, so that the
// prewrite goes in every arrival order.
//
// Why the record lives until commit_ts, not start_ts: a prewrite arriving
// after DropCommit cannot be told apart from the prewrite of a commit that
// is still to come (both have start_ts below the watermark; TiKV can
// prewrite with a start_ts the resolved ts has already passed, with a
// commit_ts above it), so only what is remembered can drop it. And a
// prewrite precedes its commit in the stream of the region that writes
// them, which the range's watermark passes only after reading it: once the
// range's input is past commit_ts — Forget's upTo, which the sorter keeps at
// or below its watermark map's — no first delivery of the prewrite is still
// to come. A record dropped too early costs a prewrite kept in memory
// (never a row); one kept costs a few bytes until the next flush.
func (m *Matcher) DropCommit(key []byte, startTs, commitTs uint64) error {
	m.DropPendingCommit(key, startTs)
	if t := m.txns.get(startTs); t != nil {
		if p, ok := t.rows.get(key); ok {
			m.dropInMemory(t, startTs, key, p)
		}
	}
	if st := m.spilled[startTs]; st != nil {
		if _, _, _, err := m.takeSpilled(st, startTs, key, false); err != nil {
			return err
		}
	}
	if m.rollbacks.add(startTs, string(key), commitTs) {
		m.charge(rollbackSize(len(key)))
	}
	return nil
}

// Committed emits a row committed in one phase (1PC, async commit).
func (m *Matcher) Committed(row sortbuf.Row) error {
	if row.CommitTs == 0 || !row.Op.Valid() {
		return fmt.Errorf("%w: committed row with commit_ts %d and %s", ErrInvalidEvent, row.CommitTs, row.Op)
	}
	return m.emitRow(row)
}

// MinPendingCommit is the smallest commit_ts of the commits waiting for
// their prewrite, 0 if none: the range must not flush at or past it. O(1).
func (m *Matcher) MinPendingCommit() uint64 { return m.commits.min() }

// PendingCommits calls fn for each waiting commit, in no particular order,
// until fn returns false. fn must not change the matcher; collect what to
// drop and call DropPendingCommit afterwards.
func (m *Matcher) PendingCommits(fn func(key []byte, startTs, commitTs uint64) bool) {
	for _, c := range m.commits.heap {
		if !fn([]byte(c.key), c.startTs, c.commitTs) {
			return
		}
	}
}

// DropPendingCommit forgets a waiting commit the caller found to be a
// duplicate of an already emitted row.
func (m *Matcher) DropPendingCommit(key []byte, startTs uint64) {
	if c := m.commits.get(startTs, key); c != nil {
		m.commits.remove(c)
		m.charge(-commitSize(c.key))
		m.Settle()
	}
}

// PendingRollbacks calls fn for each waiting rollback until fn returns
// false. fn must not change the matcher.
func (m *Matcher) PendingRollbacks(fn func(key []byte, startTs uint64) bool) {
	for startTs, keys := range m.rollbacks.byTxn {
		for k := range keys {
			if !fn([]byte(k), startTs) {
				return
			}
		}
	}
}

// DropPendingRollback forgets a waiting rollback (one that repeated a
// rollback already applied, or whose prewrite can no longer arrive).
func (m *Matcher) DropPendingRollback(key []byte, startTs uint64) {
	if m.rollbacks.remove(startTs, key) {
		m.charge(-rollbackSize(len(key)))
		m.Settle()
	}
}

func (m *Matcher) emitRow(r sortbuf.Row) error {
	if err := m.emit(r); err != nil {
		return fmt.Errorf("txnmatch: emit: %w", err)
	}
	m.emitted++
	return nil
}

func (m *Matcher) dropInMemory(t *txn, startTs uint64, key []byte, p prewrite) {
	t.rows.remove(key)
	t.bytes -= p.size()
	m.prewrites--
	m.charge(-p.size())
	if t.rows.len() == 0 {
		m.txns.remove(startTs)
		m.pool.put(t)
	}
}

// charge adds n bytes to this matcher's share of the budget, passing its
// unsettled charges on once they reach the budget's step (see Budget).
func (m *Matcher) charge(n int64) {
	m.charged += n
	m.unsettled += n
	if m.unsettled > m.budget.step || m.unsettled < -m.budget.step {
		m.Settle()
	}
}

// Settle passes on to the budget what this matcher has charged and not yet
// passed on. The per-event methods (Prewrite, Commit, Committed, Rollback,
// DropCommit) may leave up to the budget's step unsettled; their caller
// settles at the end of each batch of events. Every other method leaves
// the matcher settled.
func (m *Matcher) Settle() {
	if m.unsettled != 0 {
		m.budget.used.Add(m.unsettled)
		m.unsettled = 0
	}
}

// used is the budget's total as this matcher sees it: what every matcher
// settled and what this one has not.
func (m *Matcher) used() int64 { return m.budget.Used() + m.unsettled }

// Waiting commits and rollbacks are small but unbounded in count, so they
// are charged too (they cannot be spilled; they end when their prewrite
// arrives or the caller drops them).
func commitSize(key string) int64 { return int64(len(key)) + rowOverhead }
func rollbackSize(klen int) int64 { return int64(klen) + rowOverhead/2 }
