package apiserver

import (
	"encoding/json"
	"slices"

	"github.com/tistream/tistream/libs/tidbcodec"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	schemav1 "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
)

// alterKinds name an ALTER TABLE change by the type of the job that
// finished with it; other job types, and changes without a job, stay
// KIND_ALTER_TABLE.
var alterKinds = map[tidbcodec.ActionType]apiv1.DDL_Kind{
	tidbcodec.ActionAddColumn:              apiv1.DDL_KIND_ADD_COLUMN,
	tidbcodec.ActionDropColumn:             apiv1.DDL_KIND_DROP_COLUMN,
	tidbcodec.ActionAddIndex:               apiv1.DDL_KIND_ADD_INDEX,
	tidbcodec.ActionAddPrimaryKey:          apiv1.DDL_KIND_ADD_INDEX,
	tidbcodec.ActionDropIndex:              apiv1.DDL_KIND_DROP_INDEX,
	tidbcodec.ActionDropPrimaryKey:         apiv1.DDL_KIND_DROP_INDEX,
	tidbcodec.ActionModifyColumn:           apiv1.DDL_KIND_MODIFY_COLUMN,
	tidbcodec.ActionRenameTable:            apiv1.DDL_KIND_RENAME_TABLE,
	tidbcodec.ActionRenameTables:           apiv1.DDL_KIND_RENAME_TABLE,
	tidbcodec.ActionAddTablePartition:      apiv1.DDL_KIND_ADD_PARTITION,
	tidbcodec.ActionDropTablePartition:     apiv1.DDL_KIND_DROP_PARTITION,
	tidbcodec.ActionTruncateTablePartition: apiv1.DDL_KIND_TRUNCATE_PARTITION,
}

func jobType(c *schemav1.SchemaChange) tidbcodec.ActionType {
	return tidbcodec.ActionType(c.GetJob().GetType())
}

// isTruncateHalf: the drop of the old table in a TRUNCATE TABLE, which the
// new table's event carries (KIND_TRUNCATE_TABLE with old_table_id).
func isTruncateHalf(c *schemav1.SchemaChange) bool {
	return c.Kind == schemav1.SchemaChange_KIND_DROP_TABLE && jobType(c) == tidbcodec.ActionTruncateTable
}

// ddlEvent is the DDL event of a change, or nil when a change is not one
// (schema version moves, altered databases, a truncate's dropped half).
func ddlEvent(c *schemav1.SchemaChange) *apiv1.DDL {
	d := &apiv1.DDL{CommitTs: c.CommitTs, DbId: c.DbId, TableId: c.TableId, DbName: c.DbName, TableName: c.TableName,
		OldDbId: c.OldDbId, OldDbName: c.OldDbName, OldTableName: c.OldTableName}
	if j := c.GetJob(); j != nil {
		d.Query, d.JobId, d.JobType, d.JobState = j.Query, j.Id, j.Type, j.State
	}
	switch c.Kind {
	case schemav1.SchemaChange_KIND_CREATE_DATABASE:
		d.Kind, d.DbInfoJson = apiv1.DDL_KIND_CREATE_DATABASE, c.InfoJson
	case schemav1.SchemaChange_KIND_DROP_DATABASE:
		d.Kind = apiv1.DDL_KIND_DROP_DATABASE
	case schemav1.SchemaChange_KIND_CREATE_TABLE:
		d.Kind, d.TableInfoJson = apiv1.DDL_KIND_CREATE_TABLE, c.InfoJson
		if jobType(c) == tidbcodec.ActionTruncateTable {
			d.Kind, d.OldTableId = apiv1.DDL_KIND_TRUNCATE_TABLE, c.Job.TableId
			d.OldDbId, d.OldDbName, d.OldTableName = c.DbId, c.DbName, c.TableName
		}
	case schemav1.SchemaChange_KIND_ALTER_TABLE:
		d.Kind, d.TableInfoJson = apiv1.DDL_KIND_ALTER_TABLE, c.InfoJson
		if k, ok := alterKinds[jobType(c)]; ok {
			d.Kind = k
		}
		if d.Kind == apiv1.DDL_KIND_ALTER_TABLE && (c.OldDbId != c.DbId || c.OldTableName != c.TableName) {
			d.Kind = apiv1.DDL_KIND_RENAME_TABLE // a rename whose job did not come
		}
	case schemav1.SchemaChange_KIND_DROP_TABLE:
		if isTruncateHalf(c) {
			return nil
		}
		d.Kind = apiv1.DDL_KIND_DROP_TABLE
	default:
		return nil
	}
	return d
}

// members are the tables a database pull (or a table pull of a partitioned
// table) follows, and the physical ids their rows are keyed by: the
// partition ids of a partitioned table, else its id. A database pull starts
// from the registry's listing of ids: the tables keyed by their own id stay
// a sorted list (8 bytes a table: a database of 1,000,000 tables costs 8
// MB, not the maps' ~100 bytes a table); the tables changes touch since, and
// the partitioned ones, are kept in maps.
type members struct {
	base    []int64           // sorted: tables keyed by their own id, as listed
	dropped map[int64]bool    // base tables no longer followed as listed
	phys    map[int64][]int64 // other tables: table id -> its partitions' ids (nil: its own id)
	wanted  map[int64]bool    // physical ids of phys's tables
}

func newMembers() *members {
	return &members{dropped: map[int64]bool{}, phys: map[int64][]int64{}, wanted: map[int64]bool{}}
}

// setBase starts from a listing's tables keyed by their own id (sorted).
func (m *members) setBase(ids []int64) { m.base = ids }

func (m *members) inBase(tableID int64) bool {
	_, ok := slices.BinarySearch(m.base, tableID)
	return ok && !m.dropped[tableID]
}

// set follows a table with the physical ids of its TableInfo (the table id
// alone when the JSON does not name partitions).
func (m *members) set(tableID int64, infoJSON []byte) {
	var ids []int64
	var info tidbcodec.TableInfo
	if len(infoJSON) > 0 && json.Unmarshal(infoJSON, &info) == nil {
		if p, err := info.PhysicalIDs(); err == nil && len(p) > 0 && info.ID == tableID {
			ids = p
		}
	}
	m.setPhys(tableID, ids)
}

// add follows a listed table: by the physical ids the registry named (a
// listing without TableInfos), else by its TableInfo.
func (m *members) add(t *schemav1.Table) {
	if len(t.PhysicalIds) > 0 || len(t.InfoJson) == 0 {
		m.setPhys(t.Id, t.PhysicalIds)
		return
	}
	m.set(t.Id, t.InfoJson)
}

// setPhys follows a table keyed by ids (empty or just the table's id: by
// its own id).
func (m *members) setPhys(tableID int64, ids []int64) {
	m.remove(tableID)
	if len(ids) == 1 && ids[0] == tableID {
		ids = nil
	}
	m.phys[tableID] = ids
	if ids == nil {
		m.wanted[tableID] = true
	}
	for _, id := range ids {
		m.wanted[id] = true
	}
}

func (m *members) remove(tableID int64) {
	if m.inBase(tableID) {
		m.dropped[tableID] = true
	}
	ids, ok := m.phys[tableID]
	if !ok {
		return
	}
	if ids == nil {
		delete(m.wanted, tableID)
	}
	for _, id := range ids {
		delete(m.wanted, id)
	}
	delete(m.phys, tableID)
}

func (m *members) has(tableID int64) bool {
	_, ok := m.phys[tableID]
	return ok || m.inBase(tableID)
}

// wants tells whether rows keyed by physical id are followed.
func (m *members) wants(id int64) bool { return m.wanted[id] || m.inBase(id) }

func (m *members) clear() { m.base = nil; clear(m.dropped); clear(m.phys); clear(m.wanted) }

// partitioned reports whether a TableInfo names partitions.
func partitioned(infoJSON []byte) bool {
	var info struct {
		Partition json.RawMessage `json:"partition"`
	}
	return json.Unmarshal(infoJSON, &info) == nil && !tidbcodec.IsNullJSON(info.Partition)
}
