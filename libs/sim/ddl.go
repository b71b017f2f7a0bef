package sim

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/tistream/tistream/libs/tidbcodec"
	"github.com/tistream/tistream/libs/truth"
)

// DDL actions, as the truth file names them. A DDL of several steps (TiDB's
// online schema change: an index is written in WRITE REORGANIZATION before
// it is public, a dropped column is WRITE ONLY before it is gone) writes a
// truth line per step: the intermediate ones as ddlAlterStep, the last one
// as the statement, with its job.
const (
	ddlCreateTable = "create_table"
	ddlAddColumn   = "add_column"
	ddlDropColumn  = "drop_column"
	ddlAddIndex    = "add_index"
	ddlTruncate    = "truncate_table"
	ddlRename      = "rename_table"
	ddlDropTable   = "drop_table"
	ddlAlterStep   = "alter_table"
)

// ddlStep is one schema-change transaction: a TableInfo written, a table
// field deleted (or both: a truncate, a rename to another database) and the
// schema version bumped.
type ddlStep struct {
	put *table
	del *table
}

// ddl is one DDL statement in progress: its steps, then its job.
type ddl struct {
	tn      *tenant
	action  string
	typ     tidbcodec.ActionType
	jobID   int64
	query   string
	before  *table // the table it changes; nil for CREATE TABLE
	oldName string // before's name when the DDL started
	after   *table // the table once done; nil for DROP TABLE
	steps   []ddlStep
	done    int    // steps committed
	startTs uint64 // the job's start ts: that of its first step
	version int64  // the schema version of the last step committed
}

// startDDL runs one DDL statement as TiDB does underneath: one or more
// transactions on the meta range that write the table's TableInfo JSON (or
// delete it) and bump the schema version, then, in a transaction of its own
// (TiDB's "synced" step, after every TiDB node loaded the new version), the
// finished job in hash DDLJobHistory. A table under DDL takes no writes, and
// a DDL only picks a table no transaction is writing, so rows never straddle
// a change.
func (s *Sim) startDDL(tn *tenant) {
	idle := func() *table {
		live := tn.liveTables()
		for tries := 0; tries < 8 && len(live) > 0; tries++ {
			if c := live[s.rng.IntN(len(live))]; c.inflight == 0 && !c.jobBusy {
				return c
			}
		}
		return nil
	}
	d := &ddl{tn: tn}
	switch p := s.rng.IntN(20); {
	case p < 6:
		d.action, d.typ = ddlCreateTable, tidbcodec.ActionCreateTable
	case p < 10:
		d.action, d.typ, d.before = ddlAddColumn, tidbcodec.ActionAddColumn, idle()
	case p < 12:
		d.action, d.typ, d.before = ddlDropColumn, tidbcodec.ActionDropColumn, idle()
	case p < 14:
		d.action, d.typ, d.before = ddlAddIndex, tidbcodec.ActionAddIndex, idle()
	case p < 16:
		d.action, d.typ, d.before = ddlTruncate, tidbcodec.ActionTruncateTable, idle()
	case p < 18:
		d.action, d.typ, d.before = ddlRename, tidbcodec.ActionRenameTable, idle()
	default:
		if len(tn.liveTables()) > 1 {
			d.action, d.typ, d.before = ddlDropTable, tidbcodec.ActionDropTable, idle()
		}
	}
	if d.typ == tidbcodec.ActionNone || (d.before == nil && d.action != ddlCreateTable) || !s.planDDL(d) {
		return
	}
	// TiDB allocates job ids from the same global allocator as tables.
	d.jobID = tn.nextID
	tn.nextID++
	if d.before != nil {
		d.oldName = d.before.name
		d.before.ddlBusy = true
		tn.setLive(d.before, false)
	}
	s.stats.DDLStarted++
	s.runStep(d)
}

// planDDL fills the DDL's steps, resulting table and statement text; false
// when the chosen table cannot take it.
func (s *Sim) planDDL(d *ddl) bool {
	tn, b := d.tn, d.before
	switch d.action {
	case ddlCreateTable:
		d.after = newTable(tn.nextID, tn.dbs[s.rng.IntN(len(tn.dbs))], s.cfg.ValueSize)
		tn.nextID++
		d.steps = []ddlStep{{put: d.after}}
		d.query = createTableQuery(d.after)
	case ddlAddColumn:
		d.after = b.clone()
		c := d.after.addColumn()
		d.steps = []ddlStep{{put: d.after}}
		d.query = fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", qualified(b), quote(c.name), c.sqlType())
	case ddlDropColumn:
		if len(b.cols) < 2 {
			return false
		}
		i := s.rng.IntN(len(b.cols))
		name := b.cols[i].name
		mid := b.clone()
		mid.cols[i].writeOnly = true
		d.after = b.clone()
		d.after.cols = append(d.after.cols[:i], d.after.cols[i+1:]...)
		kept := d.after.indexes[:0]
		for _, x := range d.after.indexes {
			if x.column != name { // TiDB drops a one-column index with its column
				kept = append(kept, x)
			}
		}
		d.after.indexes = kept
		d.steps = []ddlStep{{put: mid}, {put: d.after}}
		d.query = fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", qualified(b), quote(name))
	case ddlAddIndex:
		col := b.cols[s.rng.IntN(len(b.cols))].name
		for _, x := range b.indexes {
			if x.column == col {
				return false
			}
		}
		mid := b.clone()
		mid.maxIdxID++
		x := index{id: mid.maxIdxID, name: "idx_" + col, column: col, state: tidbcodec.StateWriteReorganization}
		mid.indexes = append(mid.indexes, x)
		d.after = mid.clone()
		d.after.indexes[len(d.after.indexes)-1].state = tidbcodec.StatePublic
		d.steps = []ddlStep{{put: mid}, {put: d.after}}
		d.query = fmt.Sprintf("ALTER TABLE %s ADD INDEX %s (%s)", qualified(b), quote(x.name), quote(col))
	case ddlTruncate:
		d.after = b.clone()
		d.after.id = tn.nextID
		tn.nextID++
		d.after.handles, d.after.handleIdx = nil, make(map[int64]int)
		d.steps = []ddlStep{{del: b, put: d.after}}
		d.query = "TRUNCATE TABLE " + qualified(b)
	case ddlRename:
		d.after = b.clone()
		d.after.db = tn.dbs[s.rng.IntN(len(tn.dbs))]
		d.after.name = fmt.Sprintf("sbtest%d_r%d", b.id, tn.schemaVersion+1)
		st := ddlStep{put: d.after}
		if d.after.db != b.db {
			st.del = b // the field moves to the other database's hash
		}
		d.steps = []ddlStep{st}
		d.query = fmt.Sprintf("RENAME TABLE %s TO %s", qualified(b), qualified(d.after))
	case ddlDropTable:
		d.steps = []ddlStep{{del: b}}
		d.query = "DROP TABLE " + qualified(b)
	}
	return true
}

// runStep starts the DDL's next schema-change transaction, or retries
// shortly while another DDL's transaction holds the meta keys.
func (s *Sim) runStep(d *ddl) {
	tn, st := d.tn, d.steps[d.done]
	t := &txn{tn: tn, kind: txnDDL, proto: proto2PC}
	if st.del != nil {
		t.muts = append(t.muts, mutation{key: tidbcodec.MetaTableKey(st.del.db.id, st.del.id), op: cdcpb.Event_Row_DELETE})
	}
	if st.put != nil {
		t.muts = append(t.muts, mutation{key: tidbcodec.MetaTableKey(st.put.db.id, st.put.id), op: cdcpb.Event_Row_PUT})
	}
	version := tn.schemaVersion + 1
	t.muts = append(t.muts, mutation{key: tidbcodec.MetaSchemaVersionKey(), op: cdcpb.Event_Row_PUT,
		value: []byte(strconv.FormatInt(version, 10))})
	for _, m := range t.muts {
		if tn.busy[string(m.key)] {
			s.sched.at(s.now+int64(5+s.rng.IntN(20)), func() { s.runStep(d) })
			return
		}
	}
	for _, m := range t.muts {
		tn.busy[string(m.key)] = true
	}
	s.begin(t)
	if d.done == 0 {
		d.startTs = t.startTs
	}
	// TiDB stamps UpdateTS with the DDL transaction's start ts.
	var info []byte
	if st.put != nil {
		st.put.updateTS = t.startTs
		info = st.put.infoJSON()
		t.muts[len(t.muts)-2].value = info
	}
	t.onCommit = func(commitTs uint64) {
		tn.schemaVersion, d.version = version, version
		tn.ddlHistory = append(tn.ddlHistory, ddlPoint{commitTs: commitTs, version: version})
		d.done++
		final := d.done == len(d.steps)
		s.writeTruthDDL(d, st, commitTs, info, final)
		if !final {
			// The next step waits for every TiDB node to load this version.
			s.sched.at(s.now+int64(20+s.rng.IntN(60)), func() { s.runStep(d) })
			return
		}
		s.finishDDL(d)
		s.sched.at(s.now+int64(10+s.rng.IntN(100)), func() { s.writeJob(d) })
	}
}

// finishDDL applies a DDL's last step to the simulated schema.
func (s *Sim) finishDDL(d *ddl) {
	tn, b, a := d.tn, d.before, d.after
	switch d.action {
	case ddlCreateTable:
		tn.tables[a.id] = a
	case ddlAddColumn, ddlDropColumn, ddlAddIndex, ddlRename:
		// The live table keeps its rows; it takes the new schema.
		b.cols, b.maxColID, b.indexes, b.maxIdxID = a.cols, a.maxColID, a.indexes, a.maxIdxID
		b.name, b.db, b.updateTS = a.name, a.db, a.updateTS
		d.after = b
	case ddlTruncate:
		b.dropped = true
		tn.tables[a.id] = a
	case ddlDropTable:
		b.dropped = true
	}
	if b != nil {
		b.ddlBusy = false
	}
	if d.after != nil {
		d.after.jobBusy = true
	}
	for _, t := range []*table{b, a, d.after} {
		if t != nil {
			tn.setLive(t, tn.tables[t.id] == t && !t.dropped && !t.ddlBusy)
		}
	}
	s.stats.DDLs++
}

// writeJob commits the DDL's finished job to hash DDLJobHistory, in a
// transaction of its own after the last schema change, as TiDB does.
func (s *Sim) writeJob(d *ddl) {
	tn := d.tn
	t := &txn{tn: tn, kind: txnDDL, proto: proto2PC}
	t.muts = []mutation{{key: tidbcodec.MetaDDLJobHistoryKey(d.jobID), op: cdcpb.Event_Row_PUT}}
	tn.busy[string(t.muts[0].key)] = true
	s.begin(t)
	subject := d.after
	if subject == nil {
		subject = d.before
	}
	job := &tidbcodec.Job{ID: d.jobID, Type: d.typ, SchemaID: subject.db.id, TableID: subject.id,
		SchemaName: strings.ToLower(subject.db.name), TableName: strings.ToLower(subject.name),
		State: tidbcodec.JobStateSynced, SchemaState: tidbcodec.StatePublic, StartTS: d.startTs, Query: d.query, Version: 2,
		BinlogInfo: &tidbcodec.HistoryInfo{SchemaVersion: d.version, TableInfo: subject.info(), FinishedTS: t.startTs}}
	switch d.action {
	case ddlTruncate, ddlRename:
		// TiDB names the old table (and, for a rename, the new database).
		job.TableID, job.TableName = d.before.id, strings.ToLower(d.oldName)
	case ddlDropTable:
		job.SchemaState = tidbcodec.StateNone
	}
	b, err := tidbcodec.EncodeJob(job)
	if err != nil {
		s.fail(fmt.Errorf("sim: encode DDL job %d: %w", d.jobID, err))
		return
	}
	t.muts[0].value = b
	t.onCommit = func(uint64) {
		if d.after != nil {
			d.after.jobBusy = false
		}
	}
}

// writeTruthDDL records one committed step of a DDL in the truth.
func (s *Sim) writeTruthDDL(d *ddl, st ddlStep, commitTs uint64, info []byte, final bool) {
	if s.opts.Truth == nil {
		return
	}
	subject := st.put
	if subject == nil {
		subject = st.del
	}
	line := truth.DDL{Tenant: d.tn.id, CommitTs: commitTs, DBID: subject.db.id, TableID: subject.id, Action: ddlAlterStep,
		SchemaVersion: d.version, DBName: subject.db.name, TableName: subject.name, TableInfo: info}
	if final {
		line.Action, line.JobID, line.Query = d.action, d.jobID, d.query
		if d.action == ddlTruncate {
			line.OldTableID = d.before.id
		}
	}
	if err := s.opts.Truth.WriteDDL(line); err != nil {
		s.fail(err)
	}
}

func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

func qualified(t *table) string { return quote(t.db.name) + "." + quote(t.name) }

func (c column) sqlType() string {
	if c.kind == colVarchar {
		return fmt.Sprintf("VARCHAR(%d)", c.size)
	}
	return "INT"
}

// createTableQuery is the statement a user would have typed.
func createTableQuery(t *table) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE " + qualified(t) + " (`id` BIGINT NOT NULL PRIMARY KEY")
	for _, c := range t.cols {
		b.WriteString(", " + quote(c.name) + " " + c.sqlType())
	}
	b.WriteString(")")
	return b.String()
}
