package schema

import (
	"bytes"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/tidbcodec"
)

// decoder rebuilds a history from its records, checking the order and the
// invariants the encoder keeps, so a file that decodes answers like the
// history that wrote it.
type decoder struct {
	r        *container.Reader
	h        *History
	progress *LoadProgress

	section       byte // tag of the last record
	lastID        int64
	lastTs        uint64
	seen          bool // a record of the current section was read
	counts        [4]uint64
	wantCounts    [4]uint64
	lastChangeTs  uint64
	lastVersionTs uint64
	version       uint64 // the file's format version
}

// Decode reads a history written by Encode. Every problem is a
// *container.CorruptError naming the object and the offset of the block
// that holds the bad record. The history may keep parts of data (blocks
// stored uncompressed): data must not change while it lives.
func Decode(name string, data []byte) (*History, error) { return DecodeWith(name, data, nil) }

// DecodeWith is Decode counting the table versions it reads in p.
func DecodeWith(name string, data []byte, p *LoadProgress) (*History, error) {
	r, err := container.Open(name, data, container.KindSchemaHistory)
	if err != nil {
		return nil, err
	}
	// Table versions keep their TableInfo JSON where the reader put it:
	// every block in memory of its own (or data itself, for a block stored
	// uncompressed), not one copy per table — a million copies were a third
	// of a 1,000,000-table registry's load. A block stays while any table
	// version in it does; all of them together are the file's size.
	r.KeepBlocks()
	d := &decoder{r: r, progress: p}
	rec, err := r.Next()
	if err == io.EOF {
		return nil, &container.CorruptError{Object: name, Reason: "no header record"}
	}
	if err != nil {
		return nil, err
	}
	if err := d.header(rec); err != nil {
		return nil, err
	}
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := d.record(rec); err != nil {
			return nil, err
		}
	}
	if d.counts != d.wantCounts {
		return nil, &container.CorruptError{Object: name, Offset: r.Offset(), Reason: fmt.Sprintf(
			"header counts %v (db versions, table versions, version points, changes), the file has %v", d.wantCounts, d.counts)}
	}
	return d.h, nil
}

func (d *decoder) header(rec []byte) error {
	if len(rec) == 0 || rec[0] != recHeader {
		return d.r.Corrupt(nil, "first record is not the header")
	}
	f := fields{b: rec[1:]}
	if d.version = f.uvarint("format version"); f.err == "" && (d.version < 1 || d.version > HistoryFormatVersion) {
		return d.r.Corrupt(nil, "history format version %d, this reader knows 1 to %d", d.version, HistoryFormatVersion)
	}
	h := New(f.uvarint("tenant"))
	h.base, h.floor, h.last, h.resolved = f.uvarint("base ts"), f.uvarint("floor ts"), f.uvarint("last applied ts"), f.uvarint("resolved ts")
	for i := range d.wantCounts {
		d.wantCounts[i] = f.uvarint("count")
	}
	if msg := f.done(); msg != "" {
		return d.r.Corrupt(nil, "header: %s", msg)
	}
	if h.floor < h.base || h.last < h.base || h.resolved < h.last || h.resolved < h.floor {
		return d.r.Corrupt(nil, "header: inconsistent ts: base %d, floor %d, last applied %d, resolved %d", h.base, h.floor, h.last, h.resolved)
	}
	d.h, d.section = h, recHeader
	d.progress.announce(d.wantCounts[1])
	return nil
}

// sectionIndex orders the record kinds; records come section by section.
func sectionIndex(tag byte) int {
	return bytes.IndexByte([]byte{recDB, recTable, recVersion, recChange}, tag)
}

func (d *decoder) record(rec []byte) error {
	if len(rec) == 0 || sectionIndex(rec[0]) < 0 {
		return d.r.Corrupt(nil, "unknown record tag")
	}
	tag := rec[0]
	if tag != d.section {
		if d.section != recHeader && sectionIndex(tag) < sectionIndex(d.section) {
			return d.r.Corrupt(nil, "%c record after %c records", tag, d.section)
		}
		d.section, d.seen = tag, false
	}
	d.counts[sectionIndex(tag)]++
	f := fields{b: rec[1:]}
	var err error
	switch tag {
	case recDB:
		err = d.db(&f)
	case recTable:
		err = d.table(&f)
	case recVersion:
		err = d.versionPoint(&f)
	case recChange:
		err = d.change(&f)
	}
	d.seen = true
	return err
}

// objectVersion checks that (id, ts) follows the previous version record
// and that ts lies within what the history can hold.
func (d *decoder) objectVersion(what string, id int64, ts uint64) error {
	if d.seen && (id < d.lastID || id == d.lastID && ts <= d.lastTs) {
		return d.r.Corrupt(nil, "%s %d at %d out of order (after %d at %d)", what, id, ts, d.lastID, d.lastTs)
	}
	if ts < d.h.base || ts > d.h.last {
		return d.r.Corrupt(nil, "%s %d at %d outside [base %d, last applied %d]", what, id, ts, d.h.base, d.h.last)
	}
	d.lastID, d.lastTs = id, ts
	return nil
}

func (d *decoder) db(f *fields) error {
	id, ts, raw := f.varint("db id"), f.uvarint("ts"), f.bytes("info")
	if msg := f.done(); msg != "" {
		return d.r.Corrupt(nil, "db version: %s", msg)
	}
	if err := d.objectVersion("db", id, ts); err != nil {
		return err
	}
	v := DB{Ts: ts}
	if len(raw) > 0 {
		info, err := parseDBInfo(raw)
		if err != nil {
			return d.r.Corrupt(err, "db %d at %d: DBInfo", id, ts)
		}
		if info.ID != id {
			return d.r.Corrupt(nil, "db %d at %d: DBInfo has id %d", id, ts, info.ID)
		}
		v.Info, v.Raw = info, bytes.Clone(raw)
	}
	d.h.dbs[id] = append(d.h.dbs[id], v)
	return nil
}

func (d *decoder) table(f *fields) error {
	id, dbID, ts, raw := f.varint("table id"), f.varint("db id"), f.uvarint("ts"), f.bytes("info")
	if msg := f.done(); msg != "" {
		return d.r.Corrupt(nil, "table version: %s", msg)
	}
	if err := d.objectVersion("table", id, ts); err != nil {
		return err
	}
	v := Table{Ts: ts, DBID: dbID}
	if len(raw) > 0 {
		info, err := tableHeadOf(raw)
		if err != nil {
			return d.r.Corrupt(err, "table %d at %d: TableInfo", id, ts)
		}
		if info.ID != id {
			return d.r.Corrupt(nil, "table %d at %d: TableInfo has id %d", id, ts, info.ID)
		}
		v.Info, v.Raw = info, raw // in the kept block (Decode)
	}
	d.h.tables[id] = append(d.h.tables[id], v) // a new History, not indexed until it is first listed
	d.progress.table()
	return nil
}

func (d *decoder) versionPoint(f *fields) error {
	ts, v := f.uvarint("ts"), f.varint("schema version")
	if msg := f.done(); msg != "" {
		return d.r.Corrupt(nil, "version point: %s", msg)
	}
	if d.seen && ts <= d.lastVersionTs {
		return d.r.Corrupt(nil, "version point at %d out of order (after %d)", ts, d.lastVersionTs)
	}
	if ts < d.h.base || ts > d.h.last {
		return d.r.Corrupt(nil, "version point at %d outside [base %d, last applied %d]", ts, d.h.base, d.h.last)
	}
	d.lastVersionTs = ts
	d.h.versions = append(d.h.versions, versionPoint{ts: ts, version: v})
	return nil
}

func (d *decoder) change(f *fields) error {
	c := Change{CommitTs: f.uvarint("commit ts"), SchemaVersion: f.varint("schema version"), Kind: ChangeKind(f.byte("kind")),
		DBID: f.varint("db id"), TableID: f.varint("table id")}
	dbName, tableName, info := f.bytes("db name"), f.bytes("table name"), f.bytes("info")
	c.settled = true // version 1 had no jobs to wait for
	var names [][]byte
	if d.version >= 2 {
		names = readChangeV2(f, &c)
	}
	if msg := f.done(); msg != "" {
		return d.r.Corrupt(nil, "change: %s", msg)
	}
	if c.Kind == 0 || c.Kind > maxChangeKind {
		return d.r.Corrupt(nil, "change at %d: unknown kind %d", c.CommitTs, c.Kind)
	}
	if d.seen && c.CommitTs < d.lastChangeTs {
		return d.r.Corrupt(nil, "change at %d out of commit order (after %d)", c.CommitTs, d.lastChangeTs)
	}
	if c.CommitTs <= d.h.base || c.CommitTs < d.h.floor || c.CommitTs > d.h.last {
		return d.r.Corrupt(nil, "change at %d outside (base %d, last applied %d] or below the floor %d", c.CommitTs, d.h.base, d.h.last, d.h.floor)
	}
	for _, n := range append(names, dbName, tableName) {
		if !utf8.Valid(n) {
			return d.r.Corrupt(nil, "change at %d: names are not UTF-8", c.CommitTs)
		}
	}
	d.lastChangeTs = c.CommitTs
	c.DBName, c.TableName = string(dbName), string(tableName)
	if len(names) > 0 {
		c.OldDBName, c.OldTableName = string(names[0]), string(names[1])
	}
	if c.Job != nil {
		c.Job.SchemaName, c.Job.TableName, c.Job.Query = string(names[2]), string(names[3]), string(names[4])
	}
	if len(info) > 0 {
		c.Info = bytes.Clone(info)
	}
	d.h.changes = append(d.h.changes, c)
	return nil
}

// readChangeV2 reads what format version 2 added to a change record and
// returns its strings (old db name, old table name and, with a job, its
// schema name, table name and query) for the caller to check.
func readChangeV2(f *fields, c *Change) [][]byte {
	c.settled = f.byte("settled") == 1
	c.OldDBID = f.varint("old db id")
	names := [][]byte{f.bytes("old db name"), f.bytes("old table name")}
	switch f.byte("job flag") {
	case 0:
		return names
	case 1:
	default:
		f.fail("job flag", "not 0 or 1")
		return names
	}
	j := &Job{ID: f.varint("job id"), Type: tidbcodec.ActionType(f.byte("job type")), State: tidbcodec.JobState(f.varint("job state")),
		SchemaID: f.varint("job schema id"), TableID: f.varint("job table id")}
	names = append(names, f.bytes("job schema name"), f.bytes("job table name"), f.bytes("job query"))
	j.CommitTs = f.uvarint("job commit ts")
	if f.err == "" {
		c.Job = j
	}
	return names
}
