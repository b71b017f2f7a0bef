package tidbcodec

import (
	"encoding/json"
	"strings"
)

// TiDB's schema definitions as it stores them (JSON) in the meta range.
// Field names, order and types follow TiDB's pkg/meta/model so that
// json.Marshal produces TiDB's bytes. Sub-structures this package does not
// interpret (partitioning, TTL, placement, foreign keys, ...) are kept as
// json.RawMessage: nil marshals as TiDB's null, and anything TiDB wrote
// comes back byte-for-byte. Fields TiDB adds after the pinned version are
// dropped on decode.

// SchemaState is the DDL state of a schema object; readers act only on
// StatePublic objects.
type SchemaState byte

// Schema states (online DDL steps).
const (
	StateNone SchemaState = iota
	StateDeleteOnly
	StateWriteOnly
	StateWriteReorganization
	StateDeleteReorganization
	StatePublic
	StateReplicaOnly
	StateGlobalTxnOnly
)

// Index types (IndexInfo.Tp).
const (
	IndexTypeInvalid = iota
	IndexTypeBtree
	IndexTypeHash
	IndexTypeRtree
)

// Versions TiDB stamps on the objects it creates today.
const (
	CurrentTableInfoVersion  = 5
	CurrentColumnInfoVersion = 2
)

// CIStr is a case-insensitive name: the original spelling and its lower case.
type CIStr struct {
	O string `json:"O"`
	L string `json:"L"`
}

// NewCIStr makes a CIStr from a name.
func NewCIStr(s string) CIStr { return CIStr{O: s, L: strings.ToLower(s)} }

func (c CIStr) String() string { return c.O }

// UnmarshalJSON also accepts a bare string, as TiDB does for names written
// by old versions.
func (c *CIStr) UnmarshalJSON(b []byte) error {
	type plain CIStr
	if err := json.Unmarshal(b, (*plain)(c)); err == nil {
		return nil
	}
	if err := json.Unmarshal(b, &c.O); err != nil {
		return err
	}
	c.L = strings.ToLower(c.O)
	return nil
}

// FieldType is a column's type. TiDB marshals it without JSON tags, so the
// keys are the Go field names.
type FieldType struct {
	Tp               byte
	Flag             uint
	Flen             int
	Decimal          int
	Charset          string
	Collate          string
	Elems            []string
	ElemsIsBinaryLit []bool
	Array            bool
}

// DBInfo is a database definition: the value of hash DBs, field DB:{id}.
type DBInfo struct {
	ID      int64  `json:"id"`
	Name    CIStr  `json:"db_name"`
	Charset string `json:"charset"`
	Collate string `json:"collate"`
	// Deprecated is TiDB's empty leftover of a table list; TiDB writes it
	// as "Deprecated":{}.
	Deprecated         struct{}        `json:"Deprecated"`
	State              SchemaState     `json:"state"`
	PlacementPolicyRef json.RawMessage `json:"policy_ref_info"`
}

// TableInfo is a table (or view or sequence) definition: the value of hash
// DB:{dbID}, field Table:{id}.
type TableInfo struct {
	ID                    int64           `json:"id"`
	Name                  CIStr           `json:"name"`
	Charset               string          `json:"charset"`
	Collate               string          `json:"collate"`
	Columns               []*ColumnInfo   `json:"cols"`
	Indices               []*IndexInfo    `json:"index_info"`
	Constraints           json.RawMessage `json:"constraint_info"`
	ForeignKeys           json.RawMessage `json:"fk_info"`
	State                 SchemaState     `json:"state"`
	PKIsHandle            bool            `json:"pk_is_handle"`
	IsCommonHandle        bool            `json:"is_common_handle"`
	CommonHandleVersion   uint16          `json:"common_handle_version"`
	Comment               string          `json:"comment"`
	AutoIncID             int64           `json:"auto_inc_id"`
	AutoIncIDExtra        int64           `json:"auto_inc_id_extra,omitempty"`
	AutoIDCache           int64           `json:"auto_id_cache"`
	AutoRandID            int64           `json:"auto_rand_id"`
	MaxColumnID           int64           `json:"max_col_id"`
	MaxIndexID            int64           `json:"max_idx_id"`
	MaxForeignKeyID       int64           `json:"max_fk_id"`
	MaxConstraintID       int64           `json:"max_cst_id"`
	UpdateTS              uint64          `json:"update_timestamp"`
	AutoIDSchemaID        int64           `json:"old_schema_id,omitempty"`
	ShardRowIDBits        uint64          `json:"ShardRowIDBits"` // untagged in TiDB
	MaxShardRowIDBits     uint64          `json:"max_shard_row_id_bits"`
	AutoRandomBits        uint64          `json:"auto_random_bits"`
	AutoRandomRangeBits   uint64          `json:"auto_random_range_bits"`
	PreSplitRegions       uint64          `json:"pre_split_regions"`
	Partition             json.RawMessage `json:"partition"`
	Compression           string          `json:"compression"`
	View                  json.RawMessage `json:"view"`
	Sequence              json.RawMessage `json:"sequence"`
	Lock                  json.RawMessage `json:"Lock"`
	Version               uint16          `json:"version"`
	TiFlashReplica        json.RawMessage `json:"tiflash_replica"`
	IsColumnar            bool            `json:"is_columnar"`
	TempTableType         byte            `json:"temp_table_type"`
	CacheTableStatus      int             `json:"cache_table_status"`
	PlacementPolicyRef    json.RawMessage `json:"policy_ref_info"`
	StatsOptions          json.RawMessage `json:"stats_options"`
	ExchangePartitionInfo json.RawMessage `json:"exchange_partition_info"`
	TTLInfo               json.RawMessage `json:"ttl_info"`
	IsActiveActive        bool            `json:"is_active_active,omitempty"`
	SoftdeleteInfo        json.RawMessage `json:"softdelete_info,omitempty"`
	Revision              uint64          `json:"revision"`
	Mode                  byte            `json:"mode,omitempty"`
}

// ColumnInfo is one column of a table.
type ColumnInfo struct {
	ID     int64 `json:"id"`
	Name   CIStr `json:"name"`
	Offset int   `json:"offset"`
	// OriginDefaultValue is the default for rows written before the column
	// was added (what a row missing this column reads as); DefaultValue is
	// the default for new inserts. Both are JSON as TiDB wrote them, usually
	// a string or null.
	OriginDefaultValue    json.RawMessage     `json:"origin_default"`
	OriginDefaultValueBit []byte              `json:"origin_default_bit"`
	DefaultValue          json.RawMessage     `json:"default"`
	DefaultValueBit       []byte              `json:"default_bit"`
	DefaultIsExpr         bool                `json:"default_is_expr"`
	GeneratedExprString   string              `json:"generated_expr_string"`
	GeneratedStored       bool                `json:"generated_stored"`
	Dependences           map[string]struct{} `json:"dependences"`
	FieldType             FieldType           `json:"type"`
	ChangingFieldType     *FieldType          `json:"changing_type,omitempty"`
	State                 SchemaState         `json:"state"`
	Comment               string              `json:"comment"`
	Hidden                bool                `json:"hidden"`
	ChangeStateInfo       json.RawMessage     `json:"change_state_info"`
	Version               uint64              `json:"version"`
}

// IndexInfo is one index of a table. An int primary key with PKIsHandle
// has no IndexInfo: it is the record key's handle.
type IndexInfo struct {
	ID                  int64           `json:"id"`
	Name                CIStr           `json:"idx_name"`
	Table               CIStr           `json:"tbl_name"`
	Columns             []*IndexColumn  `json:"idx_cols"`
	State               SchemaState     `json:"state"`
	BackfillState       byte            `json:"backfill_state"`
	Comment             string          `json:"comment"`
	Tp                  int             `json:"index_type"`
	Unique              bool            `json:"is_unique"`
	Primary             bool            `json:"is_primary"`
	Invisible           bool            `json:"is_invisible"`
	Global              bool            `json:"is_global"`
	MVIndex             bool            `json:"mv_index"`
	VectorInfo          json.RawMessage `json:"vector_index"`
	InvertedInfo        json.RawMessage `json:"inverted_index"`
	FullTextInfo        json.RawMessage `json:"full_text_index"`
	ConditionExprString string          `json:"condition_expr_string"`
	AffectColumn        []*IndexColumn  `json:"affect_column,omitempty"`
}

// IndexColumn is one column of an index.
type IndexColumn struct {
	Name   CIStr `json:"name"`
	Offset int   `json:"offset"` // into TableInfo.Columns
	// Length is the prefix length, or UnspecifiedLength for the whole value.
	Length          int  `json:"length"`
	UseChangingType bool `json:"using_changing_type,omitempty"`
}

// IsNullJSON reports whether a raw sub-structure is absent (nil or null).
func IsNullJSON(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// HandleColumn returns the int primary-key column that is the record key's
// handle, or nil when rows are keyed by _tidb_rowid or a common handle.
func (t *TableInfo) HandleColumn() *ColumnInfo {
	if !t.PKIsHandle {
		return nil
	}
	for _, c := range t.Columns {
		if c.FieldType.Flag&PriKeyFlag != 0 {
			return c
		}
	}
	return nil
}

// PhysicalIDs returns the ids that appear in the table's record keys: the
// partition ids of a partitioned table, else the table id. Partitions being
// added or dropped by a running DDL are not included.
func (t *TableInfo) PhysicalIDs() ([]int64, error) { return PhysicalIDs(t.ID, t.Partition) }

// PhysicalIDs is TableInfo.PhysicalIDs of the table id whose TableInfo has
// partition (its "partition" member, JSON; null or empty: not partitioned).
func PhysicalIDs(id int64, partition json.RawMessage) ([]int64, error) {
	if IsNullJSON(partition) {
		return []int64{id}, nil
	}
	var p struct {
		Definitions []struct {
			ID int64 `json:"id"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(partition, &p); err != nil {
		return nil, err
	}
	ids := make([]int64, len(p.Definitions))
	for i, d := range p.Definitions {
		ids[i] = d.ID
	}
	return ids, nil
}
