package tidbcodec

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strconv"
)

// A finished DDL job, as TiDB keeps it in hash DDLJobHistory of the meta
// range (field: the job id as 8 big-endian bytes; value: model.Job JSON,
// written by meta.Mutator.AddHistoryDDLJob). TiDB writes it when the job is
// finished: for a successful job in the "synced" step, a transaction of its
// own committed after the one that made the job's last schema change (and
// after every TiDB node loaded that version); for a cancelled job in the
// transaction that cancels it, which changes no schema. BinlogInfo's
// SchemaVersion is the version the job's last schema change produced: what
// ties the job to that change.

// ActionType is the kind of a DDL job (TiDB model.ActionType).
type ActionType byte

// The DDL job types TiStream names; others keep their number.
const (
	ActionNone                   ActionType = 0
	ActionCreateSchema           ActionType = 1
	ActionDropSchema             ActionType = 2
	ActionCreateTable            ActionType = 3
	ActionDropTable              ActionType = 4
	ActionAddColumn              ActionType = 5
	ActionDropColumn             ActionType = 6
	ActionAddIndex               ActionType = 7
	ActionDropIndex              ActionType = 8
	ActionTruncateTable          ActionType = 11
	ActionModifyColumn           ActionType = 12
	ActionRebaseAutoID           ActionType = 13
	ActionRenameTable            ActionType = 14
	ActionSetDefaultValue        ActionType = 15
	ActionModifyTableComment     ActionType = 17
	ActionRenameIndex            ActionType = 18
	ActionAddTablePartition      ActionType = 19
	ActionDropTablePartition     ActionType = 20
	ActionCreateView             ActionType = 21
	ActionTruncateTablePartition ActionType = 23
	ActionDropView               ActionType = 24
	ActionRecoverTable           ActionType = 25
	ActionAddPrimaryKey          ActionType = 32
	ActionDropPrimaryKey         ActionType = 33
	ActionExchangeTablePartition ActionType = 42
	ActionRenameTables           ActionType = 47
	ActionCreateTables           ActionType = 60
	ActionMultiSchemaChange      ActionType = 61
	ActionReorganizePartition    ActionType = 64
)

// actionNames are TiDB's own names (model.ActionMap) of the types above.
var actionNames = map[ActionType]string{
	ActionNone:                   "none",
	ActionCreateSchema:           "create schema",
	ActionDropSchema:             "drop schema",
	ActionCreateTable:            "create table",
	ActionDropTable:              "drop table",
	ActionAddColumn:              "add column",
	ActionDropColumn:             "drop column",
	ActionAddIndex:               "add index",
	ActionDropIndex:              "drop index",
	ActionTruncateTable:          "truncate table",
	ActionModifyColumn:           "modify column",
	ActionRebaseAutoID:           "rebase auto_increment ID",
	ActionRenameTable:            "rename table",
	ActionSetDefaultValue:        "set default value",
	ActionModifyTableComment:     "modify table comment",
	ActionRenameIndex:            "rename index",
	ActionAddTablePartition:      "add partition",
	ActionDropTablePartition:     "drop partition",
	ActionCreateView:             "create view",
	ActionTruncateTablePartition: "truncate partition",
	ActionDropView:               "drop view",
	ActionRecoverTable:           "recover table",
	ActionAddPrimaryKey:          "add primary key",
	ActionDropPrimaryKey:         "drop primary key",
	ActionExchangeTablePartition: "exchange partition",
	ActionRenameTables:           "rename tables",
	ActionCreateTables:           "create tables",
	ActionMultiSchemaChange:      "alter table multi-schema change",
	ActionReorganizePartition:    "alter table reorganize partition",
}

func (a ActionType) String() string {
	if s, ok := actionNames[a]; ok {
		return s
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// JobState is a DDL job's state (TiDB model.JobState).
type JobState int32

// Job states. A finished job is JobStateSynced (done), JobStateRollbackDone
// (undone: the schema is as before the job) or JobStateCancelled.
const (
	JobStateNone         JobState = 0
	JobStateRunning      JobState = 1
	JobStateRollingback  JobState = 2
	JobStateRollbackDone JobState = 3
	JobStateDone         JobState = 4
	JobStateCancelled    JobState = 5
	JobStateSynced       JobState = 6
	JobStateCancelling   JobState = 7
	JobStateQueueing     JobState = 8
	JobStatePaused       JobState = 9
	JobStatePausing      JobState = 10
)

var jobStateNames = [...]string{"none", "running", "rollingback", "rollback done", "done", "cancelled", "synced",
	"cancelling", "queueing", "paused", "pausing"}

func (s JobState) String() string {
	if s >= 0 && int(s) < len(jobStateNames) {
		return jobStateNames[s]
	}
	return "none" // TiDB's String() says "none" for any unknown state
}

// Succeeded reports whether the job's change took effect (done or synced).
func (s JobState) Succeeded() bool { return s == JobStateDone || s == JobStateSynced }

// HistoryInfo is a finished job's result (TiDB model.HistoryInfo, the
// job's "binlog" field). TiDB marshals it without JSON tags.
type HistoryInfo struct {
	SchemaVersion      int64
	DBInfo             *DBInfo
	TableInfo          *TableInfo
	FinishedTS         uint64
	MultipleTableInfos []*TableInfo
}

// Job is a DDL job: the fields of TiDB's model.Job a consumer needs (others
// are dropped on decode). SchemaName and TableName are what the statement
// named, lower-cased, and differ by job type (for RENAME TABLE, the new
// database and the old table name); the schema history has the exact names
// before and after.
type Job struct {
	ID          int64           `json:"id"`
	Type        ActionType      `json:"type"`
	SchemaID    int64           `json:"schema_id"`
	TableID     int64           `json:"table_id"`
	SchemaName  string          `json:"schema_name"`
	TableName   string          `json:"table_name"`
	State       JobState        `json:"state"`
	RawArgs     json.RawMessage `json:"raw_args"`
	SchemaState SchemaState     `json:"schema_state"`
	StartTS     uint64          `json:"start_ts"`
	Query       string          `json:"query"`
	BinlogInfo  *HistoryInfo    `json:"binlog"`
	Version     int64           `json:"version"` // job args layout: 1 or 2
	Charset     string          `json:"charset"`
	Collate     string          `json:"collate"`
}

// SchemaVersion is the schema version the job's last change produced (0
// when it changed nothing, as a cancelled job).
func (j *Job) SchemaVersion() int64 {
	if j.BinlogInfo == nil {
		return 0
	}
	return j.BinlogInfo.SchemaVersion
}

// DecodeJob decodes a job's JSON (the value of a DDLJobHistory field).
func DecodeJob(b []byte) (*Job, error) {
	const what = "DDL job"
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return nil, malformed(what, 0, "not a JSON object")
	}
	j := &Job{}
	if err := json.Unmarshal(b, j); err != nil {
		return nil, malformed(what, jsonOffset(err), "%v", err)
	}
	if j.ID <= 0 {
		return nil, malformed(what, 0, "job id %d is not positive", j.ID)
	}
	if j.BinlogInfo != nil && j.BinlogInfo.SchemaVersion < 0 {
		return nil, malformed(what, 0, "negative schema version %d", j.BinlogInfo.SchemaVersion)
	}
	return j, nil
}

// EncodeJob is the JSON TiDB's Job.Decode reads back to the same fields.
func EncodeJob(j *Job) ([]byte, error) { return json.Marshal(j) }

func jsonOffset(err error) int {
	switch e := err.(type) {
	case *json.SyntaxError:
		return int(e.Offset)
	case *json.UnmarshalTypeError:
		return int(e.Offset)
	}
	return 0
}

// DDLJobField is the field of job id in hash DDLJobHistory: 8 raw
// big-endian bytes (not the sign-flipped EncodeInt form).
func DDLJobField(jobID int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(jobID))
}

// ParseDDLJobField returns the job id of a DDLJobHistory field.
func ParseDDLJobField(field []byte) (int64, error) {
	if len(field) != 8 {
		return 0, malformed("DDL job field", 0, "%d bytes; a job id takes 8", len(field))
	}
	return int64(binary.BigEndian.Uint64(field)), nil
}
