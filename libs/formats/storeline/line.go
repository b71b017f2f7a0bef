package storeline

// Line types: the "t" field of every line.
const (
	TypeHello    = "hello"    // first line: cluster, tenant, producer
	TypeSchema   = "schema"   // the tenant's schema snapshot, before any store line
	TypeStart    = "start"    // a store starts leading a region incarnation
	TypeEnd      = "end"      // a store stops leading one
	TypeRows     = "rows"     // row events of one led region
	TypeResolved = "resolved" // resolved ts of led regions
	TypeCut      = "cut"      // the end of a store's file
)

// Row event types, as TiKV's cdcpb.Event.LogType.
const (
	RowPrewrite  = "prewrite"
	RowCommit    = "commit"
	RowRollback  = "rollback"
	RowCommitted = "committed"
)

// Row ops.
const (
	OpPut    = "put"
	OpDelete = "delete"
)

// Region change reasons, as the store change file's RegionChange.Reason.
const (
	ReasonBootstrap      = "bootstrap"
	ReasonLeaderTransfer = "leader_transfer"
	ReasonSplit          = "split"
	ReasonMerge          = "merge"
	ReasonRollbackMerge  = "rollback_merge"
)

// Line is one line of the protocol. T says which fields are set; the
// others are omitted.
type Line struct {
	T string `json:"t"`

	// hello
	Cluster  uint64 `json:"cluster,omitempty"`
	Tenant   uint64 `json:"tenant,omitempty"`
	Producer string `json:"producer,omitempty"`

	// schema
	Schema *Schema `json:"schema,omitempty"`

	// start, end, rows, resolved, cut: the store whose stream the line
	// belongs to.
	Store uint64 `json:"store,omitempty"`

	// start: the incarnation, why, and what precedes it.
	Region *Region `json:"region,omitempty"`
	Term   uint64  `json:"term,omitempty"`
	Reason string  `json:"reason,omitempty"`
	Preds  []Ref   `json:"preds,omitempty"`

	// end and rows: the led region's id. end: its last resolved ts.
	RegionID uint64 `json:"region_id,omitempty"`
	Resolved uint64 `json:"resolved,omitempty"`

	// rows
	Rows []Row `json:"rows,omitempty"`

	// resolved: ts for each listed region id.
	Ts      uint64   `json:"ts,omitempty"`
	Regions []uint64 `json:"regions,omitempty"`

	// cut: the file's max_ts (a TSO taken at the cut, >= every ts in it)
	// and the producer's wall clock.
	MaxTs  uint64 `json:"max_ts,omitempty"`
	UnixMs int64  `json:"unix_ms,omitempty"`
}

// Region is a region incarnation's metapb.Region, with raw (not
// memcomparable-encoded) boundaries: the writer encodes them. Empty Start
// or End means unbounded.
type Region struct {
	ID      uint64 `json:"id"`
	Start   []byte `json:"start,omitempty"`
	End     []byte `json:"end,omitempty"`
	Version uint64 `json:"version"`
	ConfVer uint64 `json:"conf_ver"`
	Peers   []Peer `json:"peers,omitempty"`
}

// Peer is a replica of a region.
type Peer struct {
	ID    uint64 `json:"id"`
	Store uint64 `json:"store"`
}

// Ref names an incarnation.
type Ref struct {
	ID      uint64 `json:"id"`
	Version uint64 `json:"version"`
	Term    uint64 `json:"term"`
}

// Row is one cdcpb.Event.Row. Key and Value are raw TiDB bytes (base64 in
// JSON).
type Row struct {
	Type     string `json:"type"`
	Op       string `json:"op,omitempty"`
	StartTs  uint64 `json:"start_ts"`
	CommitTs uint64 `json:"commit_ts,omitempty"`
	Key      []byte `json:"key"`
	Value    []byte `json:"value,omitempty"`
	OldValue []byte `json:"old_value,omitempty"`
	Gen      uint64 `json:"gen,omitempty"`
}

// Schema is the tenant's schema snapshot at Ts: every database followed by
// its tables, as TiDB stores their JSON (byte for byte, as a string).
type Schema struct {
	Ts            uint64   `json:"ts"`
	SchemaVersion int64    `json:"schema_version"`
	UnixMs        int64    `json:"unix_ms"`
	Objects       []Object `json:"objects"`
}

// Object is one database or table of a Schema.
type Object struct {
	Kind string `json:"kind"` // "db" or "table"
	DBID int64  `json:"db_id"`
	Info string `json:"info"` // DBInfo or TableInfo JSON
}
