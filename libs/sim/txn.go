package sim

import (
	"fmt"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/tistream/tistream/libs/tidbcodec"
	"github.com/tistream/tistream/libs/truth"
)

// maxHandle bounds the random int handles of simulated rows.
const maxHandle = 1 << 40

type txnKind int

const (
	txnOrdinary txnKind = iota
	txnLarge
	txnLong
	txnDDL
	txnPipelined
)

// commit protocols
type protocol int

const (
	proto2PC protocol = iota
	protoAsync
	proto1PC
)

type mutation struct {
	key    []byte
	op     cdcpb.Event_Row_OpType
	value  []byte
	table  *table // nil for meta keys
	handle int64
	gen    uint64 // generation of its last prewrite (pipelined DML)
}

// txn is one Percolator transaction in flight.
type txn struct {
	tn       *tenant
	kind     txnKind
	proto    protocol
	startTs  uint64
	commitTs uint64
	muts     []mutation
	rollback bool
	orphan   bool // rolled back before any prewrite reached the stream: ROLLBACK rows only
	tables   []*table
	done     int // mutations prewritten, then committed
	onCommit func(commitTs uint64)

	gen, gens   uint64 // pipelined DML: generation being written, and the last one
	heartbeats  bool   // lock refreshes are scheduled
	rewrites    int    // lock rewrites emitted (heartbeats and min_commit_ts pushes)
	primaryDone bool   // the primary lock is gone: no more refreshes
}

// maxLockValue is the longest value TiKV keeps in a lock (a short value):
// a rewritten lock of a longer one carries no value.
const maxLockValue = 255

// batchRows is how many rows a transaction prewrites or commits per tick:
// large transactions take several ticks, so their rows span change files.
const batchRows = 2000

// startDML begins a transaction of about n row changes.
func (s *Sim) startDML(tn *tenant, n int, kind txnKind) {
	live := tn.liveTables()
	if len(live) == 0 {
		return
	}
	t := &txn{tn: tn, kind: kind}
	if kind == txnOrdinary && s.cfg.HotTableShare > 0 {
		t.tables = s.hotTables(live)
	} else {
		t.tables = []*table{live[s.rng.IntN(len(live))]}
		pinned := kind == txnLong && s.cfg.LongTxnTable > 0
		if pinned {
			if s.cfg.LongTxnTable > len(live) {
				return // fewer tables now: no long transaction
			}
			t.tables[0] = live[s.cfg.LongTxnTable-1]
		}
		if len(live) > 1 && kind != txnLarge && !pinned && s.rng.Float64() < s.cfg.CrossTableRatio {
			if other := live[s.rng.IntN(len(live))]; other != t.tables[0] {
				t.tables = append(t.tables, other)
			}
		}
	}
	for i := 0; i < n; i++ {
		if m, ok := s.pickMutation(tn, t.tables[i%len(t.tables)]); ok {
			t.muts = append(t.muts, m)
			tn.busy[string(m.key)] = true
		}
	}
	if len(t.muts) == 0 {
		return
	}
	for _, tb := range t.tables {
		tb.inflight++
	}
	t.proto = s.pickProtocol(t)
	if kind == txnPipelined {
		t.gen, t.gens = 1, 1
		if g := s.cfg.PipelinedGenerations; g >= 2 {
			t.gens = 2 + uint64(s.rng.IntN(g-1))
		}
	}
	s.begin(t)
	s.stats.Txns++
	switch kind {
	case txnLarge:
		s.stats.LargeTxns++
	case txnLong:
		s.stats.LongTxns++
	case txnPipelined:
		s.stats.PipelinedTxns++
	}
}

// hotTables chooses the tables of an ordinary transaction under
// --hot-table-share: the first live table alone with that probability,
// otherwise one or (--cross-table-ratio) two of the other live tables.
// Only called with the option set (at 0 the simulator draws as before);
// its own decisions come from rng2.
func (s *Sim) hotTables(live []*table) []*table {
	if len(live) == 1 || s.rng2.Float64() < s.cfg.HotTableShare {
		return []*table{live[0]}
	}
	cold := live[1:]
	tables := []*table{cold[s.rng2.IntN(len(cold))]}
	if len(cold) > 1 && s.rng2.Float64() < s.cfg.CrossTableRatio {
		if other := cold[s.rng2.IntN(len(cold))]; other != tables[0] {
			tables = append(tables, other)
		}
	}
	return tables
}

// pickMutation chooses an insert, update or delete of table tb on a key no
// running transaction holds.
func (s *Sim) pickMutation(tn *tenant, tb *table) (mutation, bool) {
	for attempt := 0; attempt < 8; attempt++ {
		m := mutation{table: tb, op: cdcpb.Event_Row_PUT}
		r := s.rng.Float64()
		switch {
		case len(tb.handles) > 0 && r < s.cfg.DeleteRatio:
			m.handle, m.op = tb.handles[s.rng.IntN(len(tb.handles))], cdcpb.Event_Row_DELETE
		case len(tb.handles) > 0 && r < 0.5:
			m.handle = tb.handles[s.rng.IntN(len(tb.handles))]
		default:
			m.handle = 1 + s.rng.Int64N(maxHandle-1)
		}
		m.key = tidbcodec.EncodeRecordKey(tb.id, m.handle)
		if tn.busy[string(m.key)] {
			continue
		}
		if m.op == cdcpb.Event_Row_PUT {
			m.value = tb.value(s.rng, nil)
		}
		return m, true
	}
	return mutation{}, false
}

func (s *Sim) pickProtocol(t *txn) protocol {
	if t.kind != txnOrdinary {
		return proto2PC
	}
	if s.rng.Float64() < s.cfg.OnePCRatio && s.singleRegion(t) {
		return proto1PC
	}
	if s.rng.Float64() < s.cfg.AsyncCommitRatio {
		return protoAsync
	}
	return proto2PC
}

func (s *Sim) singleRegion(t *txn) bool {
	r := t.tn.regions.lookup(t.muts[0].key)
	for _, m := range t.muts[1:] {
		if !r.contains(m.key) {
			return false
		}
	}
	return true
}

// begin takes the start ts and schedules the prewrite (or the 1PC commit).
func (s *Sim) begin(t *txn) {
	s.inflight++
	s.started++
	t.startTs = s.ts()
	delay := int64(1 + s.rng.IntN(20))
	if t.proto == proto1PC {
		s.sched.at(s.now+delay, func() { s.commit1PC(t) })
		return
	}
	t.rollback = t.kind != txnDDL && s.rng.Float64() < s.cfg.RollbackRatio
	// An orphan's locks were pessimistic (never in the stream, never
	// holding a resolved ts) or its prewrite failed: it goes through the
	// same steps, silently, up to its ROLLBACKs.
	t.orphan = t.rollback && t.kind == txnOrdinary && s.rng2.Float64() < s.cfg.OrphanRollbackRatio
	s.sched.at(s.now+delay, func() { s.prewrite(t) })
}

func (s *Sim) prewrite(t *txn) {
	end := min(t.done+batchRows, len(t.muts))
	for i := t.done; i < end; i++ {
		m := &t.muts[i]
		m.gen = t.gen
		if t.orphan {
			continue
		}
		r := t.tn.regions.lookup(m.key)
		r.addLock(m.key, t.startTs)
		s.emit(t.tn, r, &cdcpb.Event_Row{Type: cdcpb.Event_PREWRITE, OpType: m.op, Key: m.key, Value: m.value, StartTs: t.startTs,
			Generation: t.gen})
		s.stats.Prewrites++
	}
	t.done = end
	if t.done < len(t.muts) {
		s.sched.at(s.now+tickMs, func() { s.prewrite(t) })
		return
	}
	s.startHeartbeats(t)
	if t.gen < t.gens {
		s.sched.at(s.now+s.generationGap(), func() { s.nextGeneration(t) })
		return
	}
	s.prewritten(t)
}

// generationGap is the time between two flushes of a pipelined
// transaction: long enough that generations often land in different files,
// and, around region changes and crashes, in different stores' streams.
func (s *Sim) generationGap() int64 { return int64(250 + s.rng.IntN(500)) }

// nextGeneration flushes a pipelined transaction again: about two keys in
// three get a new value, written as a PREWRITE of the next generation; in
// the last generation some existing rows are deleted instead.
func (s *Sim) nextGeneration(t *txn) {
	t.gen++
	last := t.gen == t.gens
	var idx []int
	for i := range t.muts {
		if s.rng.IntN(3) != 0 {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		idx = append(idx, s.rng.IntN(len(t.muts)))
	}
	for _, i := range idx {
		m := &t.muts[i]
		if _, exists := m.table.handleIdx[m.handle]; last && exists && s.rng.IntN(4) == 0 {
			m.op, m.value = cdcpb.Event_Row_DELETE, nil
		} else {
			m.op, m.value = cdcpb.Event_Row_PUT, m.table.value(s.rng, nil)
		}
		m.gen = t.gen
		r := t.tn.regions.lookup(m.key)
		s.emit(t.tn, r, &cdcpb.Event_Row{Type: cdcpb.Event_PREWRITE, OpType: m.op, Key: m.key, Value: m.value, StartTs: t.startTs,
			Generation: t.gen})
		s.stats.Prewrites++
		s.stats.PipelinedPrewrites++
	}
	if !last {
		s.sched.at(s.now+s.generationGap(), func() { s.nextGeneration(t) })
		return
	}
	s.prewritten(t)
}

// startHeartbeats schedules the lock refreshes of a long-running, large or
// pipelined transaction once its primary key is locked.
func (s *Sim) startHeartbeats(t *txn) {
	if s.cfg.HeartbeatEvery <= 0 || t.heartbeats || (t.kind != txnLong && t.kind != txnLarge && t.kind != txnPipelined) {
		return
	}
	t.heartbeats = true
	s.sched.at(s.now+s.cfg.HeartbeatEvery.Milliseconds(), func() { s.heartbeat(t) })
}

// heartbeat is TiKV's TxnHeartBeat on the primary lock: the lock is
// rewritten and the CDC stream gets a PREWRITE of the primary key with op
// PUT and an empty value, same start_ts and generation.
func (s *Sim) heartbeat(t *txn) {
	if t.primaryDone {
		return
	}
	m := t.muts[0]
	r := t.tn.regions.lookup(m.key)
	row := &cdcpb.Event_Row{Type: cdcpb.Event_PREWRITE, OpType: cdcpb.Event_Row_PUT, Key: m.key, StartTs: t.startTs, Generation: m.gen}
	if t.rewrites++; s.cfg.LockValueRewrites && t.rewrites%2 == 0 {
		// A reader pushed its min_commit_ts: TiKV rewrites the lock with
		// its own op, and the value when the lock holds it (short values).
		row.OpType = m.op
		if len(m.value) <= maxLockValue {
			row.Value = m.value
		}
		s.stats.LockRewrites++
	} else {
		s.stats.Heartbeats++
	}
	s.emit(t.tn, r, row)
	s.sched.at(s.now+s.cfg.HeartbeatEvery.Milliseconds(), func() { s.heartbeat(t) })
}

// prewritten waits, then commits: every key is locked with its final value.
func (s *Sim) prewritten(t *txn) {
	if t.proto == protoAsync {
		// Async commit decides commit_ts at prewrite: above start_ts and
		// above TiKV's max_ts, so above every resolved ts already published.
		t.commitTs = max(t.startTs, s.maxReadTs) + 1
	}
	wait := int64(2 + s.rng.IntN(30))
	if t.kind == txnLong {
		wait = s.cfg.LongTxnHold.Milliseconds()
	}
	t.done = 0
	s.sched.at(s.now+wait, func() { s.commitPrimary(t) })
}

// commitPrimary commits (or rolls back) the primary key; the secondaries
// follow a few milliseconds later, possibly in the next change file and
// after region changes.
func (s *Sim) commitPrimary(t *txn) {
	t.primaryDone = true
	if t.rollback {
		s.stats.Rollbacks++
		if t.orphan {
			s.stats.OrphanRollbacks++
		}
	} else if t.proto == proto2PC {
		t.commitTs = s.ts()
		// A DDL's commit_ts must exceed every async/1PC commit_ts already
		// handed out, so the schema version of each row is unambiguous.
		for t.kind == txnDDL && t.commitTs <= s.maxReadTs+1 {
			t.commitTs = s.ts()
		}
	}
	if !t.rollback {
		s.record(t)
	}
	s.finishKeys(t, 1)
	if len(t.muts) == 1 {
		s.end(t)
		return
	}
	s.sched.at(s.now+int64(s.rng.IntN(15)), func() { s.commitSecondaries(t) })
}

func (s *Sim) commitSecondaries(t *txn) {
	s.finishKeys(t, batchRows)
	if t.done < len(t.muts) {
		s.sched.at(s.now+tickMs, func() { s.commitSecondaries(t) })
		return
	}
	s.end(t)
}

// finishKeys emits the commit or rollback of up to n more keys.
func (s *Sim) finishKeys(t *txn, n int) {
	end := min(t.done+n, len(t.muts))
	for _, m := range t.muts[t.done:end] {
		r := t.tn.regions.lookup(m.key)
		if !t.orphan {
			r.removeLock(m.key)
		}
		row := &cdcpb.Event_Row{Type: cdcpb.Event_COMMIT, OpType: m.op, Key: m.key, StartTs: t.startTs, CommitTs: t.commitTs}
		if t.rollback {
			row = &cdcpb.Event_Row{Type: cdcpb.Event_ROLLBACK, Key: m.key, StartTs: t.startTs}
		}
		s.emit(t.tn, r, row)
	}
	t.done = end
}

func (s *Sim) commit1PC(t *txn) {
	if !s.singleRegion(t) { // a split since the start: fall back to 2PC
		t.proto = proto2PC
		s.prewrite(t)
		return
	}
	t.commitTs = max(t.startTs, s.maxReadTs) + 1
	r := t.tn.regions.lookup(t.muts[0].key)
	for _, m := range t.muts {
		s.emit(t.tn, r, &cdcpb.Event_Row{Type: cdcpb.Event_COMMITTED, OpType: m.op, Key: m.key, Value: m.value,
			StartTs: t.startTs, CommitTs: t.commitTs})
	}
	s.stats.OnePC++
	s.record(t)
	s.end(t)
}

// emit appends a row to the stream of the store leading r, checking TiKV's
// resolved ts rule as it goes.
func (s *Sim) emit(tn *tenant, r *region, row *cdcpb.Event_Row) {
	if (row.Type == cdcpb.Event_COMMIT || row.Type == cdcpb.Event_COMMITTED) && row.CommitTs <= resolvedOf(r) {
		s.fail(fmt.Errorf("sim bug: commit of %x at %d in region %d at or below its resolved ts %d", row.Key, row.CommitTs, r.id, resolvedOf(r)))
	}
	tn.streams[r.leader].appendRow(r.id, row)
}

// record writes the committed rows to the truth and applies them to the
// simulated tables.
func (s *Sim) record(t *txn) {
	if t.onCommit != nil {
		t.onCommit(t.commitTs)
	}
	version := t.tn.schemaVersionAt(t.commitTs)
	for _, m := range t.muts {
		if m.table == nil {
			continue
		}
		op := truth.OpPut
		if m.op == cdcpb.Event_Row_DELETE {
			op = truth.OpDelete
			m.table.removeHandle(m.handle)
		} else {
			m.table.addHandle(m.handle)
		}
		s.stats.RowsCommitted++
		if s.opts.Truth != nil {
			if err := s.opts.Truth.WriteRow(truth.Row{Tenant: t.tn.id, TableID: m.table.id, CommitTs: t.commitTs,
				StartTs: t.startTs, Op: op, Key: m.key, Value: m.value, SchemaVersion: version}); err != nil {
				s.fail(fmt.Errorf("write truth: %w", err))
			}
		}
	}
	switch t.proto {
	case protoAsync:
		s.stats.AsyncCommit++
	case proto2PC:
		s.stats.TwoPC++
	}
}

// end releases the transaction's keys and tables.
func (s *Sim) end(t *txn) {
	for _, m := range t.muts {
		delete(t.tn.busy, string(m.key))
	}
	for _, tb := range t.tables {
		tb.inflight--
	}
	s.inflight--
}
