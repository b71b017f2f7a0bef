package sim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/tistream/tistream/libs/tidbcodec"
)

// column kinds the simulator writes.
const (
	colInt = iota
	colVarchar
)

type column struct {
	id        int64
	name      string
	kind      int
	size      int  // varchar length written
	writeOnly bool // being dropped: no longer public (TiDB's first step of DROP COLUMN)
}

// index is a secondary index on one column. The simulator writes no index
// keys: consumers of record keys never see them, and TiDB's index KVs are
// not part of the change streams TiStream serves.
type index struct {
	id     int64
	name   string
	column string
	state  tidbcodec.SchemaState
}

// table is a simulated table: its schema and the handles of its live rows.
type table struct {
	id        int64
	db        *database
	name      string
	cols      []column // value columns; the handle column "id" is the record key
	maxColID  int64
	indexes   []index
	maxIdxID  int64
	handles   []int64
	handleIdx map[int64]int
	inflight  int  // transactions writing it
	ddlBusy   bool // a DDL on it is running: no new writes
	jobBusy   bool // its last DDL's job is not in the history yet: no new DDL (TiDB runs one job per table)
	dropped   bool
	updateTS  uint64
}

type database struct {
	id   int64
	name string
}

func newTable(id int64, db *database, valueSize int) *table {
	c := valueSize * 2 / 3
	pad := valueSize - c
	t := &table{id: id, db: db, name: fmt.Sprintf("sbtest%d", id), handleIdx: make(map[int64]int)}
	t.cols = []column{
		{id: 2, name: "k", kind: colInt},
		{id: 3, name: "c", kind: colVarchar, size: max(c, 1)},
		{id: 4, name: "pad", kind: colVarchar, size: max(pad, 1)},
	}
	t.maxColID = 4
	return t
}

// clone copies the schema of t (not its rows) for a DDL to change.
func (t *table) clone() *table {
	c := *t
	c.cols = append([]column(nil), t.cols...)
	c.indexes = append([]index(nil), t.indexes...)
	return &c
}

func (t *table) addColumn() column {
	t.maxColID++
	c := column{id: t.maxColID, name: fmt.Sprintf("col%d", t.maxColID), kind: colInt}
	t.cols = append(t.cols, c)
	return c
}

func (t *table) addHandle(h int64) {
	if _, ok := t.handleIdx[h]; ok {
		return
	}
	t.handleIdx[h] = len(t.handles)
	t.handles = append(t.handles, h)
}

func (t *table) removeHandle(h int64) {
	i, ok := t.handleIdx[h]
	if !ok {
		return
	}
	last := t.handles[len(t.handles)-1]
	t.handles[i] = last
	t.handleIdx[last] = i
	t.handles = t.handles[:len(t.handles)-1]
	delete(t.handleIdx, h)
}

const letters = "abcdefghijklmnopqrstuvwxyz0123456789-"

// value encodes a random row of the table in row format v2.
func (t *table) value(rng *rand.Rand, buf []byte) []byte {
	cols := make([]tidbcodec.ColumnValue, 0, len(t.cols))
	for _, c := range t.cols {
		var v tidbcodec.Value
		switch c.kind {
		case colInt:
			v = tidbcodec.IntValue(rng.Int64N(1 << 31))
		case colVarchar:
			b := make([]byte, c.size)
			for i := range b {
				b[i] = letters[rng.IntN(len(letters))]
			}
			v = tidbcodec.BytesValue(b)
		}
		cols = append(cols, tidbcodec.ColumnValue{ID: c.id, Value: v})
	}
	out, err := tidbcodec.EncodeRow(buf[:0], cols)
	if err != nil {
		panic(fmt.Sprintf("sim: encode row of table %d: %v", t.id, err)) // our own columns always encode
	}
	return out
}

// info is the table's TableInfo as TiDB would store it.
func (t *table) info() *tidbcodec.TableInfo {
	ti := &tidbcodec.TableInfo{
		ID:          t.id,
		Name:        tidbcodec.NewCIStr(t.name),
		Charset:     "utf8mb4",
		Collate:     "utf8mb4_bin",
		State:       tidbcodec.StatePublic,
		PKIsHandle:  true,
		MaxColumnID: t.maxColID,
		UpdateTS:    t.updateTS,
		Version:     5,
	}
	idCol := &tidbcodec.ColumnInfo{ID: 1, Name: tidbcodec.NewCIStr("id"), State: tidbcodec.StatePublic, Version: 2,
		FieldType: tidbcodec.FieldType{Tp: tidbcodec.TypeLonglong, Flag: tidbcodec.PriKeyFlag | tidbcodec.NotNullFlag, Flen: 20, Charset: "binary", Collate: "binary"}}
	ti.Columns = append(ti.Columns, idCol)
	for i, c := range t.cols {
		ci := &tidbcodec.ColumnInfo{ID: c.id, Name: tidbcodec.NewCIStr(c.name), Offset: i + 1, State: tidbcodec.StatePublic, Version: 2}
		if c.writeOnly {
			ci.State = tidbcodec.StateWriteOnly
		}
		switch c.kind {
		case colInt:
			ci.FieldType = tidbcodec.FieldType{Tp: tidbcodec.TypeLong, Flen: 11, Charset: "binary", Collate: "binary"}
		case colVarchar:
			ci.FieldType = tidbcodec.FieldType{Tp: tidbcodec.TypeVarchar, Flen: c.size, Charset: "utf8mb4", Collate: "utf8mb4_bin"}
		}
		ti.Columns = append(ti.Columns, ci)
	}
	ti.MaxIndexID = t.maxIdxID
	for _, x := range t.indexes {
		for _, ci := range ti.Columns {
			if ci.Name.O != x.column {
				continue
			}
			if x.state == tidbcodec.StatePublic {
				ci.FieldType.Flag |= tidbcodec.MultipleKeyFlag
			}
			ti.Indices = append(ti.Indices, &tidbcodec.IndexInfo{ID: x.id, Name: tidbcodec.NewCIStr(x.name), State: x.state,
				Tp: tidbcodec.IndexTypeBtree, Columns: []*tidbcodec.IndexColumn{{Name: ci.Name, Offset: ci.Offset, Length: tidbcodec.UnspecifiedLength}}})
		}
	}
	return ti
}

func (t *table) infoJSON() []byte {
	b, err := json.Marshal(t.info())
	if err != nil {
		panic(fmt.Sprintf("sim: marshal table %d: %v", t.id, err))
	}
	return b
}

func (d *database) infoJSON() []byte {
	b, err := json.Marshal(&tidbcodec.DBInfo{
		ID: d.id, Name: tidbcodec.NewCIStr(d.name), Charset: "utf8mb4", Collate: "utf8mb4_bin", State: tidbcodec.StatePublic,
	})
	if err != nil {
		panic(fmt.Sprintf("sim: marshal db %d: %v", d.id, err))
	}
	return b
}

// liveTables lists tables that can take writes, by id.
func liveTables(tables map[int64]*table) []*table {
	out := make([]*table, 0, len(tables))
	for _, t := range tables {
		if !t.dropped && !t.ddlBusy {
			out = append(out, t)
		}
	}
	// Ids are unique: any sort gives the one order. Built once; DDLs
	// update it (tenant.setLive).
	slices.SortFunc(out, func(a, b *table) int { return cmp.Compare(a.id, b.id) })
	return out
}
