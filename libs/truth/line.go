package truth

import "bytes"

// Op values of a row.
const (
	OpPut    = "put"
	OpDelete = "delete"
)

// Line types, as written in the "type" field.
const (
	TypeRow      = "row"
	TypeResolved = "resolved"
	TypeEnd      = "end"
	TypeDDL      = "ddl"
)

// Row is one committed row change.
type Row struct {
	Tenant   uint64
	TableID  int64
	CommitTs uint64
	StartTs  uint64
	Op       string // OpPut or OpDelete
	Key      []byte
	Value    []byte // empty for OpDelete
	// SchemaVersion is the schema version the row was encoded with; 0 means
	// the line did not carry one (the field is omitted when writing).
	SchemaVersion int64
}

// Clone returns a copy of r that does not share Key and Value, for callers
// that keep a row the Reader returned past the next call to Next.
func (r Row) Clone() Row {
	r.Key = bytes.Clone(r.Key)
	r.Value = bytes.Clone(r.Value)
	return r
}

// Resolved promises that no row with commit_ts <= Ts follows it in a pulled
// stream (for the tables the stream covers).
type Resolved struct {
	Ts uint64
}

// End is the last line of a truth file: every committed row change with
// commit_ts <= ResolvedTs is in the file.
type End struct {
	ResolvedTs uint64
}

// DDL records a committed schema change in a truth file, so a checker can
// tell which schema version each row's commit_ts falls under.
type DDL struct {
	Tenant        uint64
	CommitTs      uint64
	DBID          int64
	TableID       int64
	Action        string // e.g. "create_table", "add_column", "drop_table"
	SchemaVersion int64  // the tenant's schema version after the change

	// Optional (omitted when empty): the database and table names after
	// the change (before it, for drops); the dropped table of a truncate;
	// the DDL job that finished with this change and its statement; the
	// table's TableInfo JSON after the change (empty for drops).
	DBName     string
	TableName  string
	OldTableID int64
	JobID      int64
	Query      string
	TableInfo  []byte
}

// Kind tells which field of a Line is set.
type Kind uint8

const (
	KindRow Kind = iota + 1
	KindResolved
	KindEnd
	KindDDL
	// KindOther is a line of a type this package does not know (Line.Type
	// names it); readers skip it so new line types do not break old tools.
	KindOther
)

func (k Kind) String() string {
	switch k {
	case KindRow:
		return TypeRow
	case KindResolved:
		return TypeResolved
	case KindEnd:
		return TypeEnd
	case KindDDL:
		return TypeDDL
	case KindOther:
		return "other"
	}
	return "invalid"
}

// Line is one decoded line. Only the field named by Kind is meaningful.
type Line struct {
	Num      int64 // 1-based line number in the input
	Kind     Kind
	Row      Row
	Resolved Resolved
	End      End
	DDL      DDL
	Type     string // the "type" of a KindOther line
}
