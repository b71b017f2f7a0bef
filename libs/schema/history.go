package schema

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// DB is one version of a database: Info is nil from a drop on.
type DB struct {
	Ts   uint64
	Info *tidbcodec.DBInfo
	Raw  json.RawMessage
}

// Table is one version of a table: Info is nil from a drop on.
type Table struct {
	Ts   uint64
	DBID int64
	Info *TableHead
	Raw  json.RawMessage // TiDB's TableInfo; Decode reads all of it
}

// TableHead is what a history keeps decoded of a TableInfo: what it answers
// with (the id, the name, the partitions' ids). The rest of the TableInfo —
// columns, indexes, options, most of its bytes — stays in Table.Raw,
// TiDB's own JSON, which the history serves and its readers decode: kept
// decoded too, a registry held a TableInfo's JSON twice over, 4 KB a table
// (4 GiB at 1,000,000 tables), and decoding it was most of a snapshot's
// load.
type TableHead struct {
	ID   int64           `json:"id"`
	Name tidbcodec.CIStr `json:"name"`
	// Partition is the TableInfo's "partition" member, nil when it is null
	// or absent (not partitioned); PhysicalIDs reads it.
	Partition json.RawMessage `json:"partition"`
}

// PhysicalIDs returns the ids that appear in the table's record keys, as
// tidbcodec.TableInfo.PhysicalIDs.
func (h *TableHead) PhysicalIDs() ([]int64, error) { return tidbcodec.PhysicalIDs(h.ID, h.Partition) }

// Decode decodes the whole TableInfo of a version that has one (Raw).
func (t Table) Decode() (*tidbcodec.TableInfo, error) {
	if t.Info == nil || len(t.Raw) == 0 {
		return nil, fmt.Errorf("table version at %d has no TableInfo", t.Ts)
	}
	info := &tidbcodec.TableInfo{}
	if err := json.Unmarshal(t.Raw, info); err != nil {
		return nil, fmt.Errorf("TableInfo of table %d at %d: %w", t.Info.ID, t.Ts, err)
	}
	return info, nil
}

// History is the schema of one tenant over time. Changes must be applied in
// commit order. It is not safe for concurrent use.
type History struct {
	Tenant   uint64
	dbs      map[int64][]DB
	tables   map[int64][]Table
	versions []versionPoint
	base     uint64 // ts of the schema snapshot the history was built from
	floor    uint64 // the history answers for ts >= floor
	last     uint64 // commit ts of the last applied change
	resolved uint64 // every meta change with commit_ts <= resolved is applied
	changes  []Change
	tail     txnTail
	// JobWait: how long a change waits for its DDL job (jobs.go).
	JobWait time.Duration
	scan    int // changes below it are settled
	badJobs int // DDL history entries that did not decode
	// byDB indexes tables by database for Tables and TableIDsSince.
	byDB tableIndex
}

// tableIndex lists, for every database, the ids of the tables with a
// version in it (sorted; a table moved to another database is in both),
// so that listing a database walks its own tables, not the tenant's (at
// 1,000,000 tables a registry's ListTables spent ~1 s walking them all). It
// is derived from History.tables: built on first use, and kept up to date
// as versions are added (tableAdded: a table's id joins its database's
// list, so a listing after a CREATE TABLE does not rebuild the whole index,
// ~0.3 s at 1,000,000 tables; Decode makes a new History, not indexed until
// it is first listed). It may hold more than the tables with a version in a
// database, never fewer: a version rewritten at the same ts into another
// database, and Truncate, which only removes versions, leave ids behind,
// which its readers filter anyway (they ask each table's version at their
// ts). Its own mutex lets readers that share a History (the schema
// registry's, under a read lock) build it.
type tableIndex struct {
	mu  sync.Mutex
	ids map[int64][]int64 // nil: to be built
}

// tableAdded puts table id in database dbID's list, if the index is built;
// every version added to h.tables calls it.
func (h *History) tableAdded(dbID, id int64) {
	h.byDB.mu.Lock()
	defer h.byDB.mu.Unlock()
	if h.byDB.ids == nil {
		return
	}
	l := h.byDB.ids[dbID]
	switch i, found := slices.BinarySearch(l, id); {
	case found:
	case i == len(l): // new tables' ids grow: the common case
		h.byDB.ids[dbID] = append(l, id)
	default:
		// A new array: a listing's callers may still hold the old one.
		h.byDB.ids[dbID] = slices.Concat(l[:i], []int64{id}, l[i:])
	}
}

// tableIDsIn returns the sorted ids of the tables with a version in
// database dbID, which the caller must not modify.
func (h *History) tableIDsIn(dbID int64) []int64 {
	h.byDB.mu.Lock()
	defer h.byDB.mu.Unlock()
	h.indexLocked()
	return h.byDB.ids[dbID]
}

// IndexTables builds the per-database table index now, if it is not built
// yet, instead of at the first listing (~0.3 s at 1,000,000 tables): the
// schema registry calls it when it loads a history, before serving it.
func (h *History) IndexTables() {
	h.byDB.mu.Lock()
	defer h.byDB.mu.Unlock()
	h.indexLocked()
}

// indexLocked builds the index if it is not built; h.byDB.mu is held.
func (h *History) indexLocked() {
	if h.byDB.ids == nil {
		ids := map[int64][]int64{}
		for id, vs := range h.tables {
			for _, v := range vs {
				ids[v.DBID] = append(ids[v.DBID], id)
			}
		}
		for db, l := range ids {
			slices.Sort(l)
			ids[db] = slices.Compact(l) // a table with several versions in one database
		}
		h.byDB.ids = ids
	}
}

type versionPoint struct {
	ts      uint64
	version int64
}

// New returns an empty history; load a snapshot before applying changes.
func New(tenant uint64) *History {
	return &History{Tenant: tenant, dbs: map[int64][]DB{}, tables: map[int64][]Table{}, JobWait: DefaultJobWait}
}

// Floor is the oldest ts the history can answer for.
func (h *History) Floor() uint64 { return h.floor }

// LastApplied is the commit ts of the last meta change applied (the
// snapshot's ts before any).
func (h *History) LastApplied() uint64 { return h.last }

// Resolved is how far the history is complete: every meta change committed
// at or before it has been applied.
func (h *History) Resolved() uint64 { return h.resolved }

// BaseTs is the ts of the schema snapshot the history was built from.
func (h *History) BaseTs() uint64 { return h.base }

// SetResolved records that every meta change committed at or before ts has
// been applied. It never moves back.
func (h *History) SetResolved(ts uint64) {
	h.closeTail()
	h.resolved = max(h.resolved, ts)
	h.settleWaited()
}

// LoadSnapshot sets the schema at the snapshot's ts.
func (h *History) LoadSnapshot(s *schemasnap.Snapshot) error {
	if err := h.snapshotHeader(s.Header); err != nil {
		return err
	}
	for _, o := range s.Objects {
		if err := h.snapshotObject(s.Header.Ts, o, false); err != nil {
			return err
		}
	}
	h.snapshotLoaded(s.Header)
	return nil
}

// LoadSnapshotFile sets the schema at the ts of the snapshot file data
// (named name), reading it object by object (schemasnap.ScanWithHeader):
// only the history's own copy of each TableInfo is held, not the decoded
// file's as well (half of a registry's peak memory at 1,000,000 tables).
// On an error the history is left part loaded: drop it.
func (h *History) LoadSnapshotFile(name string, data []byte) error {
	return h.loadSnapshotFile(name, data, nil)
}

// loadSnapshotFile is LoadSnapshotFile counting the tables in p.
func (h *History) loadSnapshotFile(name string, data []byte, p *LoadProgress) error {
	var ts uint64
	hdr, err := schemasnap.ScanWithHeader(name, data, func(hdr *formatv1.SchemaSnapshotHeader) error {
		ts = hdr.Ts
		p.announce(hdr.TableCount)
		return h.snapshotHeader(hdr)
	}, func(o *formatv1.SchemaObject) error {
		if o.Kind == formatv1.SchemaObject_KIND_TABLE {
			p.table()
		}
		return h.snapshotObject(ts, o, true) // each object is new: its info is the history's to keep
	})
	if err != nil {
		return err
	}
	h.snapshotLoaded(hdr)
	return nil
}

func (h *History) snapshotHeader(hdr *formatv1.SchemaSnapshotHeader) error {
	if hdr.TenantId != h.Tenant {
		return fmt.Errorf("schema snapshot of tenant %d loaded into tenant %d", hdr.TenantId, h.Tenant)
	}
	return nil
}

// snapshotObject puts a snapshot's database or table at ts; own: the
// object's info_json may be kept as it is (not copied).
func (h *History) snapshotObject(ts uint64, o *formatv1.SchemaObject, own bool) error {
	switch o.Kind {
	case formatv1.SchemaObject_KIND_DATABASE:
		return h.putDB(ts, o.DbId, o.InfoJson)
	case formatv1.SchemaObject_KIND_TABLE:
		raw := o.InfoJson
		if !own {
			raw = slices.Clone(raw)
		}
		info, err := tableHeadOf(raw) // its Partition points into raw
		if err != nil {
			return fmt.Errorf("TableInfo in db %d of the snapshot at %d: %w", o.DbId, ts, err)
		}
		h.putTableRaw(ts, o.DbId, info, raw)
	}
	return nil
}

func (h *History) snapshotLoaded(hdr *formatv1.SchemaSnapshotHeader) {
	ts := hdr.Ts
	h.versions = append(h.versions[:0], versionPoint{ts: ts, version: hdr.SchemaVersion})
	h.base, h.floor, h.last, h.resolved = ts, ts, ts, ts
}

// SeedTableID adds a table of the snapshot the history was loaded from,
// known only by its id and database, to a history loaded from part of the
// snapshot: a pull of a database keeps the ids of its tables, not their
// TableInfos, and adds each one a later change touches before that change
// is applied, so the change reads as in a history of the whole snapshot
// (an alter, a move to another database, a drop). The version's Info holds
// only the id and its Raw is nil: such a history answers which database a
// table is in, not what it looks like. The table must have no version yet.
func (h *History) SeedTableID(dbID, id int64) error {
	if len(h.tables[id]) > 0 {
		return fmt.Errorf("table %d seeded after it has versions", id)
	}
	h.putTable(h.base, dbID, &TableHead{ID: id}, nil)
	return nil
}

// parseDBInfo decodes a DBInfo as TiDB stores it (a JSON object).
func parseDBInfo(raw []byte) (*tidbcodec.DBInfo, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("DBInfo is not a JSON object")
	}
	info := &tidbcodec.DBInfo{}
	if err := json.Unmarshal(raw, info); err != nil {
		return nil, err
	}
	return info, nil
}

// tableHeadOf reads the head of a TableInfo that was checked to be valid
// JSON where it entered the project (a schema snapshot, by the meta-server
// before it copied the snapshot into the pool; a persisted history, by the
// registry that built it; both files carry checksums): its top-level id,
// name and partition members, the rest checked as the walk goes but not
// decoded (decoding was three quarters of a 1,000,000-table load's CPU
// profile, the walk is a fifth of the now shorter one's). What the walk
// does not take (an escaped key, an id that is not a plain integer) goes
// to parseTableHead.
func tableHeadOf(raw []byte) (*TableHead, error) {
	h := &TableHead{}
	var id, name, part []byte
	if len(raw) == 0 || raw[0] != '{' || !tidbcodec.WalkObject(raw, func(key, v []byte) {
		switch {
		case tidbcodec.KeyIs(key, "id"):
			id = v
		case tidbcodec.KeyIs(key, "name"):
			name = v
		case tidbcodec.KeyIs(key, "partition"):
			part = v
		}
	}) {
		return parseTableHead(raw)
	}
	var ok bool
	if id != nil {
		if h.ID, ok = tidbcodec.JSONInt(id); !ok {
			return parseTableHead(raw)
		}
	}
	if name != nil {
		if err := json.Unmarshal(name, &h.Name); err != nil {
			return parseTableHead(raw) // its error names what is wrong
		}
	}
	if !tidbcodec.IsNullJSON(part) {
		h.Partition = part
	}
	return h, nil
}

// parseTableHead decodes the head of a TableInfo as TiDB stores it (a
// JSON object): the whole of it must be JSON, its id a number, its name a
// string; the rest is not decoded.
func parseTableHead(raw []byte) (*TableHead, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("TableInfo is not a JSON object")
	}
	h := &TableHead{}
	if err := json.Unmarshal(raw, h); err != nil {
		return nil, err
	}
	if tidbcodec.IsNullJSON(h.Partition) {
		h.Partition = nil
	}
	return h, nil
}

func (h *History) putDB(ts uint64, id int64, raw []byte) error {
	info, err := parseDBInfo(raw)
	if err != nil {
		return fmt.Errorf("DBInfo of db %d at %d: %w", id, ts, err)
	}
	if info.ID != id {
		return fmt.Errorf("DBInfo at field DB:%d has id %d", id, info.ID)
	}
	h.dbs[id] = appendVersion(h.dbs[id], DB{Ts: ts, Info: info, Raw: slices.Clone(raw)}, dbTs)
	return nil
}

func (h *History) putTable(ts uint64, dbID int64, info *TableHead, raw []byte) {
	h.putTableRaw(ts, dbID, info, slices.Clone(raw))
}

// putTableRaw is putTable keeping raw itself.
func (h *History) putTableRaw(ts uint64, dbID int64, info *TableHead, raw []byte) {
	h.tables[info.ID] = appendVersion(h.tables[info.ID], Table{Ts: ts, DBID: dbID, Info: info, Raw: raw}, tableTs)
	h.tableAdded(dbID, info.ID)
}

func dbTs(d DB) uint64              { return d.Ts }
func tableTs(t Table) uint64        { return t.Ts }
func pointTs(p versionPoint) uint64 { return p.ts }

// appendVersion adds v, replacing a version at the same ts (one transaction
// writing a key twice keeps the last write).
func appendVersion[T any](vs []T, v T, ts func(T) uint64) []T {
	if n := len(vs); n > 0 && ts(vs[n-1]) == ts(v) {
		vs[n-1] = v
		return vs
	}
	return append(vs, v)
}

// ApplyMeta applies one committed change of the meta range. Keys the schema
// does not depend on (DDL job queues, id allocators, ...) are ignored.
// It reports whether the schema changed. The change log records each
// transaction's changes; they are complete once a later transaction is
// applied or SetResolved passes the transaction's commit ts.
func (h *History) ApplyMeta(commitTs uint64, key []byte, op formatv1.Op, value []byte) (bool, error) {
	if commitTs < h.last {
		return false, fmt.Errorf("meta change at %d applied after %d: changes must come in commit order", commitTs, h.last)
	}
	if commitTs <= h.base {
		return false, nil // already in the snapshot
	}
	mk, err := tidbcodec.DecodeMetaKey(key)
	if err != nil {
		return false, fmt.Errorf("meta key %x at %d: %w", key, commitTs, err)
	}
	h.last = commitTs
	if h.tail.open && h.tail.ts != commitTs {
		h.closeTail()
	}
	switch {
	case mk.Type == tidbcodec.MetaStringData && string(mk.Key) == tidbcodec.MetaSchemaVersion:
		if op != formatv1.Op_OP_PUT {
			return false, nil
		}
		v, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil {
			return false, fmt.Errorf("schema version %q at %d: %w", value, commitTs, err)
		}
		h.versions = appendVersion(h.versions, versionPoint{ts: commitTs, version: v}, pointTs)
		h.noteVersion(commitTs)
		return true, nil
	case mk.Type != tidbcodec.MetaHashData:
		return false, nil
	case string(mk.Key) == tidbcodec.MetaDDLJobHistory:
		h.applyJob(commitTs, op, value)
		return false, nil
	case string(mk.Key) == tidbcodec.MetaDBs:
		id, err := tidbcodec.ParseDBField(string(mk.Field))
		if err != nil {
			return false, nil // another field of hash DBs
		}
		if op == formatv1.Op_OP_DELETE {
			return h.dropDB(commitTs, id), nil
		}
		if err := h.putDB(commitTs, id, value); err != nil {
			return false, err
		}
		h.noteDB(commitTs, id)
		return true, nil
	}
	dbID, err := tidbcodec.ParseDBField(string(mk.Key))
	if err != nil {
		return false, nil
	}
	tableID, err := tidbcodec.ParseTableField(string(mk.Field))
	if err != nil {
		return false, nil // auto-id counters and other fields of the hash
	}
	if op == formatv1.Op_OP_DELETE {
		return h.dropTable(commitTs, dbID, tableID), nil
	}
	info, err := parseTableHead(value)
	if err != nil {
		return false, fmt.Errorf("TableInfo in db %d at %d: %w", dbID, commitTs, err)
	}
	if info.ID != tableID {
		return false, fmt.Errorf("TableInfo at field DB:%d/Table:%d has id %d", dbID, tableID, info.ID)
	}
	h.putTable(commitTs, dbID, info, value)
	h.noteTable(commitTs, tableID)
	return true, nil
}

func (h *History) dropDB(ts uint64, id int64) bool {
	vs := h.dbs[id]
	if len(vs) == 0 || vs[len(vs)-1].Info == nil {
		return false // not there: nothing to drop
	}
	h.dbs[id] = appendVersion(vs, DB{Ts: ts}, dbTs)
	h.noteDB(ts, id)
	return true
}

// dropTable deletes table id from database dbID. A delete from a database
// the table no longer lives in is ignored: moving a table to another
// database (RENAME TABLE a.t TO b.t) deletes the old field and writes the new
// one in one transaction, and the two arrive in key order, not write order.
func (h *History) dropTable(ts uint64, dbID, id int64) bool {
	vs := h.tables[id]
	if len(vs) == 0 {
		return false
	}
	if last := vs[len(vs)-1]; last.Info == nil || last.DBID != dbID {
		return false
	}
	h.tables[id] = appendVersion(vs, Table{Ts: ts, DBID: dbID}, tableTs)
	h.tableAdded(dbID, id) // already listed there (its last version is): a no-op
	h.noteTable(ts, id)
	return true
}

// at returns the version of vs valid at ts (the last with Ts <= ts).
func at[T any](vs []T, ts uint64, tsOf func(T) uint64) (T, bool) {
	i := sort.Search(len(vs), func(i int) bool { return tsOf(vs[i]) > ts })
	if i == 0 {
		var zero T
		return zero, false
	}
	return vs[i-1], true
}

// SchemaVersionAt is the schema version valid for a row committed at ts.
func (h *History) SchemaVersionAt(ts uint64) int64 {
	p, ok := at(h.versions, ts, pointTs)
	if !ok {
		return 0
	}
	return p.version
}

// Table returns the table's schema valid at ts.
func (h *History) Table(id int64, ts uint64) (Table, bool) {
	t, ok := at(h.tables[id], ts, tableTs)
	return t, ok && t.Info != nil
}

// DB returns the database valid at ts.
func (h *History) DB(id int64, ts uint64) (DB, bool) {
	d, ok := at(h.dbs[id], ts, dbTs)
	return d, ok && d.Info != nil
}

// DBs lists the databases that exist at ts, by id.
func (h *History) DBs(ts uint64) []DB {
	var out []DB
	for _, id := range slices.Sorted(maps.Keys(h.dbs)) {
		if d, ok := h.DB(id, ts); ok {
			out = append(out, d)
		}
	}
	return out
}

// DBByName finds a database by name (case-insensitive, as MySQL) at ts.
func (h *History) DBByName(name string, ts uint64) (DB, bool) {
	l := tidbcodec.NewCIStr(name).L
	for _, d := range h.DBs(ts) {
		if d.Info.Name.L == l {
			return d, true
		}
	}
	return DB{}, false
}

// Tables lists the tables of a database at ts, by id.
func (h *History) Tables(dbID int64, ts uint64) []Table {
	ids := h.tableIDsIn(dbID)
	var out []Table
	for _, id := range ids {
		if t, ok := h.Table(id, ts); ok && t.DBID == dbID {
			if out == nil {
				out = make([]Table, 0, len(ids)) // at most: growing it took a third of a 500,000-table listing
			}
			out = append(out, t)
		}
	}
	return out
}

// TableIDsSince lists every table that belongs to the database at ts or at
// any later point: what a pull of the database from ts must cover.
func (h *History) TableIDsSince(dbID int64, ts uint64) []int64 {
	var out []int64
	for _, id := range h.tableIDsIn(dbID) {
		if inDBSince(h.tables[id], dbID, ts) {
			out = append(out, id)
		}
	}
	return out
}

// inDBSince reports whether a table of versions vs belongs to database
// dbID at ts or at any later point.
func inDBSince(vs []Table, dbID int64, ts uint64) bool {
	for i, v := range vs {
		end := ^uint64(0)
		if i+1 < len(vs) {
			end = vs[i+1].Ts
		}
		if v.Info != nil && v.DBID == dbID && end > ts {
			return true
		}
	}
	return false
}
