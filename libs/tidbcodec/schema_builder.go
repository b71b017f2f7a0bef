package tidbcodec

import (
	"fmt"
	"strings"
)

// NewDBInfo is the DBInfo TiDB stores after CREATE DATABASE name (default
// charset utf8mb4, collation utf8mb4_bin).
func NewDBInfo(id int64, name string) *DBInfo {
	return &DBInfo{ID: id, Name: NewCIStr(name), Charset: CharsetUTF8MB4, Collate: CollationUTF8MB4Bin, State: StatePublic}
}

// TableBuilder assembles the TableInfo TiDB's DDL would store for a simple
// CREATE TABLE: columns in order with ids from 1, an optional integer
// primary key that is the row handle (PKIsHandle), and secondary indexes
// with ids from 1. It is meant for simulated clusters and tests.
type TableBuilder struct {
	t   *TableInfo
	err error
}

// NewTableBuilder starts table id named name.
func NewTableBuilder(id int64, name string) *TableBuilder {
	return &TableBuilder{t: &TableInfo{
		ID:      id,
		Name:    NewCIStr(name),
		Charset: CharsetUTF8MB4,
		Collate: CollationUTF8MB4Bin,
		State:   StatePublic,
		Version: CurrentTableInfoVersion,
	}}
}

// Column adds a nullable column without a default.
func (b *TableBuilder) Column(name string, ft FieldType) *TableBuilder {
	b.addColumn(name, ft)
	return b
}

// NotNullColumn adds a NOT NULL column without a default; TiDB marks such a
// column NoDefaultValueFlag.
func (b *TableBuilder) NotNullColumn(name string, ft FieldType) *TableBuilder {
	ft.Flag |= NotNullFlag | NoDefaultValueFlag
	b.addColumn(name, ft)
	return b
}

// IntPrimaryKey adds an integer primary-key column that is the record
// key's handle. A table has at most one.
func (b *TableBuilder) IntPrimaryKey(name string, ft FieldType) *TableBuilder {
	switch {
	case b.t.PKIsHandle:
		b.fail("table %s already has a primary key", b.t.Name.O)
	case !isIntType(ft.Tp):
		b.fail("primary key %s: type 0x%02x is not an integer type", name, ft.Tp)
	}
	ft.Flag |= NotNullFlag | PriKeyFlag | NoDefaultValueFlag
	b.addColumn(name, ft)
	b.t.PKIsHandle = true
	return b
}

// Index adds a secondary index over whole columns.
func (b *TableBuilder) Index(name string, unique bool, columns ...string) *TableBuilder {
	if len(columns) == 0 {
		b.fail("index %s has no columns", name)
		return b
	}
	b.t.MaxIndexID++
	idx := &IndexInfo{
		ID:     b.t.MaxIndexID,
		Name:   NewCIStr(name),
		State:  StatePublic,
		Tp:     IndexTypeBtree,
		Unique: unique,
	}
	for _, cn := range columns {
		c := b.column(cn)
		if c == nil {
			b.fail("index %s: no column %s", name, cn)
			return b
		}
		idx.Columns = append(idx.Columns, &IndexColumn{Name: c.Name, Offset: c.Offset, Length: UnspecifiedLength})
	}
	// TiDB flags the first column of a key: unique only for a one-column
	// unique key, "part of a key" otherwise.
	first := b.column(columns[0])
	if unique && len(columns) == 1 {
		first.FieldType.Flag |= UniqueKeyFlag
	} else if first.FieldType.Flag&(PriKeyFlag|UniqueKeyFlag) == 0 {
		first.FieldType.Flag |= MultipleKeyFlag
	}
	b.t.Indices = append(b.t.Indices, idx)
	return b
}

// Build returns the table or the first error met while building it.
func (b *TableBuilder) Build() (*TableInfo, error) {
	if b.err != nil {
		return nil, b.err
	}
	if len(b.t.Columns) == 0 {
		return nil, fmt.Errorf("tidbcodec: table %s has no columns", b.t.Name.O)
	}
	return b.t, nil
}

func (b *TableBuilder) addColumn(name string, ft FieldType) {
	if b.column(name) != nil {
		b.fail("duplicate column %s", name)
		return
	}
	b.t.MaxColumnID++
	b.t.Columns = append(b.t.Columns, &ColumnInfo{
		ID:        b.t.MaxColumnID,
		Name:      NewCIStr(name),
		Offset:    len(b.t.Columns),
		FieldType: ft,
		State:     StatePublic,
		Version:   CurrentColumnInfoVersion,
	})
}

func (b *TableBuilder) column(name string) *ColumnInfo {
	for _, c := range b.t.Columns {
		if c.Name.L == strings.ToLower(name) {
			return c
		}
	}
	return nil
}

func (b *TableBuilder) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("tidbcodec: "+format, args...)
	}
}

func isIntType(tp byte) bool {
	switch tp {
	case TypeTiny, TypeShort, TypeInt24, TypeLong, TypeLonglong:
		return true
	}
	return false
}
