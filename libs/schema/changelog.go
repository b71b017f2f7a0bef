package schema

import (
	"encoding/json"
	"slices"
	"sort"
)

// ChangeKind is what a schema change did. The values 1-6 are those of
// tistream.schema.v1.SchemaChange.Kind.
type ChangeKind uint8

const (
	ChangeCreateDB    ChangeKind = 1
	ChangeDropDB      ChangeKind = 2
	ChangeCreateTable ChangeKind = 3
	ChangeAlterTable  ChangeKind = 4
	ChangeDropTable   ChangeKind = 5
	// ChangeVersion: only the schema version moved (a DDL that changed no
	// database or table definition the registry follows).
	ChangeVersion ChangeKind = 6
	// ChangeAlterDB: an existing database's DBInfo was rewritten (ALTER
	// DATABASE, placement). The API has no kind for it yet.
	ChangeAlterDB ChangeKind = 7

	maxChangeKind = ChangeAlterDB
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeCreateDB:
		return "create_database"
	case ChangeDropDB:
		return "drop_database"
	case ChangeCreateTable:
		return "create_table"
	case ChangeAlterTable:
		return "alter_table"
	case ChangeDropTable:
		return "drop_table"
	case ChangeVersion:
		return "version"
	case ChangeAlterDB:
		return "alter_database"
	}
	return "unknown"
}

// Change is one committed change of a database or table (or of the schema
// version only). A transaction that changes several objects yields one
// Change per object, all with its commit ts, in the order their keys were
// applied.
type Change struct {
	CommitTs      uint64
	SchemaVersion int64 // the tenant's schema version at CommitTs
	Kind          ChangeKind
	DBID          int64 // 0 for ChangeVersion
	TableID       int64 // 0 for database changes and ChangeVersion
	DBName        string
	TableName     string
	// Info is the new DBInfo (database changes) or TableInfo (table
	// changes) JSON; nil for drops and ChangeVersion.
	Info json.RawMessage
	// The table's database and name just before the change (what a
	// rename, an alter or a drop changed); empty for creations and
	// database changes.
	OldDBID      int64
	OldDBName    string
	OldTableName string
	// Job is the finished DDL job whose last change this is; nil for the
	// intermediate steps of an online DDL, for changes whose job never
	// came, and while the job may still come (jobs.go).
	Job *Job
	// settled: no job will be attached any more.
	settled bool
}

// objKey names a database or a table in the open transaction's changes.
type objKey struct {
	table bool
	id    int64
}

// txnTail tracks the transaction being applied: the changes it has made so
// far (their names and schema version are filled in when it closes, when
// every key of the transaction is known).
type txnTail struct {
	open    bool
	ts      uint64
	start   int            // index in changes of its first entry
	objs    map[objKey]int // entry of each object it touched
	version bool           // it moved the schema version
	jobs    []*Job         // finished jobs written in the same transaction
}

func (h *History) openTail(ts uint64) {
	if h.tail.open && h.tail.ts == ts {
		return
	}
	h.closeTail()
	h.tail = txnTail{open: true, ts: ts, start: len(h.changes), objs: map[objKey]int{}}
}

// closeTail completes the open transaction's entries, or records a
// version-only change if it touched no object.
func (h *History) closeTail() {
	t := &h.tail
	if !t.open {
		return
	}
	if len(t.objs) == 0 && t.version {
		h.changes = append(h.changes, Change{CommitTs: t.ts, Kind: ChangeVersion})
	}
	kept := h.changes[:t.start]
	for _, c := range h.changes[t.start:] {
		if c.Kind != 0 {
			kept = append(kept, h.complete(c))
		}
	}
	h.changes = kept
	jobs := t.jobs
	for i := t.start; i < len(h.changes); i++ {
		h.changes[i].settled = h.changes[i].Kind == ChangeVersion
		h.settleObject(i)
	}
	h.tail = txnTail{}
	for _, j := range jobs {
		if len(h.changes) > 0 {
			h.attachJob(j, h.changes[len(h.changes)-1].SchemaVersion)
		}
	}
}

// set records (or replaces) the open transaction's entry for an object; a
// zero Kind marks an entry that turned out to change nothing.
func (h *History) setTail(k objKey, c Change) {
	if i, ok := h.tail.objs[k]; ok {
		h.changes[i] = c
		return
	}
	if c.Kind == 0 {
		return
	}
	h.tail.objs[k] = len(h.changes)
	h.changes = append(h.changes, c)
}

func (h *History) noteVersion(ts uint64) {
	h.openTail(ts)
	h.tail.version = true
}

// noteDB records the change the last version of database id (at ts) made.
func (h *History) noteDB(ts uint64, id int64) {
	h.openTail(ts)
	vs := h.dbs[id]
	cur := vs[len(vs)-1]
	existed := len(vs) > 1 && vs[len(vs)-2].Info != nil
	c := Change{CommitTs: ts, DBID: id, Info: cur.Raw}
	switch {
	case !existed && cur.Info == nil:
		c.Kind = 0
	case !existed:
		c.Kind = ChangeCreateDB
	case cur.Info == nil:
		c.Kind = ChangeDropDB
	default:
		c.Kind = ChangeAlterDB
	}
	h.setTail(objKey{id: id}, c)
}

// noteTable records the change the last version of table id (at ts) made.
func (h *History) noteTable(ts uint64, id int64) {
	h.openTail(ts)
	vs := h.tables[id]
	cur := vs[len(vs)-1]
	var prev *Table
	if n := len(vs); n > 1 && vs[n-2].Info != nil {
		prev = &vs[n-2]
	}
	c := Change{CommitTs: ts, TableID: id, DBID: cur.DBID, Info: cur.Raw}
	switch {
	case prev == nil && cur.Info == nil:
		c.Kind = 0
	case prev == nil:
		c.Kind = ChangeCreateTable
	case cur.Info == nil:
		c.Kind, c.DBID = ChangeDropTable, prev.DBID
	default:
		c.Kind = ChangeAlterTable
	}
	h.setTail(objKey{table: true, id: id}, c)
}

// complete fills a change's schema version and names from the history:
// the objects as of the change, or just before it for drops.
func (h *History) complete(c Change) Change {
	c.SchemaVersion = h.SchemaVersionAt(c.CommitTs)
	if c.DBID != 0 {
		if d, ok := h.DB(c.DBID, c.CommitTs); ok {
			c.DBName = d.Info.Name.O
		} else if d, ok := h.DB(c.DBID, c.CommitTs-1); ok {
			c.DBName = d.Info.Name.O
		}
	}
	if c.TableID != 0 {
		if t, ok := h.Table(c.TableID, c.CommitTs); ok {
			c.TableName = t.Info.Name.O
		} else if t, ok := h.Table(c.TableID, c.CommitTs-1); ok {
			c.TableName = t.Info.Name.O
		}
		if t, ok := h.Table(c.TableID, c.CommitTs-1); ok {
			c.OldDBID, c.OldTableName = t.DBID, t.Info.Name.O
			if d, ok := h.DB(t.DBID, c.CommitTs-1); ok {
				c.OldDBName = d.Info.Name.O
			}
		}
	}
	return c
}

// Changes returns the changes committed in (from, to], in commit order.
// The last transaction applied with ApplyMeta alone appears once the next
// one is applied or SetResolved passes it (ApplyBatch does that).
func (h *History) Changes(from, to uint64) []Change {
	if to <= from {
		return nil
	}
	i := sort.Search(len(h.changes), func(i int) bool { return h.changes[i].CommitTs > from })
	j := sort.Search(len(h.changes), func(i int) bool { return h.changes[i].CommitTs > to })
	end := j
	if h.tail.open {
		end = min(j, h.tail.start)
	}
	if i >= end {
		return nil
	}
	return slices.Clone(h.changes[i:end])
}

// ChangeCount is the number of changes the history holds.
func (h *History) ChangeCount() int { return len(h.changes) }
