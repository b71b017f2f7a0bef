package schema_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/schema"
	"github.com/tistream/tistream/libs/tidbcodec"
)

func jobJSON(t testing.TB, id int64, typ tidbcodec.ActionType, version int64, query string) []byte {
	b, err := tidbcodec.EncodeJob(&tidbcodec.Job{ID: id, Type: typ, State: tidbcodec.JobStateSynced, Query: query,
		BinlogInfo: &tidbcodec.HistoryInfo{SchemaVersion: version}})
	require.NoError(t, err)
	return b
}

func jobKV(t testing.TB, id int64, typ tidbcodec.ActionType, version int64, query string) kv {
	return put(tidbcodec.MetaDDLJobHistoryKey(id), jobJSON(t, id, typ, version, query))
}

// ts in TSO units: physical ms << 18, so JobWait (ms) can be reached.
func tso(ms uint64) uint64 { return ms << 18 }

// A change waits for its job: the change log is complete only below it
// until the job (a later transaction, as TiDB writes it) arrives.
func TestChangeWaitsForItsJob(t *testing.T) {
	h := schema.New(7)
	txn(t, h, tso(1000), put(tidbcodec.MetaDBKey(1), dbJSON(t, 1, "d1", "utf8mb4")), version(1))
	txn(t, h, tso(1001), jobKV(t, 50, tidbcodec.ActionCreateSchema, 1, "CREATE DATABASE d1"))
	require.Equal(t, tso(1001), h.ChangesResolved())

	txn(t, h, tso(2000), put(tidbcodec.MetaTableKey(1, 10), tableJSON(t, 10, "t10", 2)), version(2))
	require.Equal(t, tso(2000)-1, h.ChangesResolved(), "held below the change waiting for its job")
	txn(t, h, tso(2100)) // nothing but time passes
	require.Equal(t, tso(2000)-1, h.ChangesResolved())
	txn(t, h, tso(2200), jobKV(t, 51, tidbcodec.ActionCreateTable, 2, "CREATE TABLE t10 (id BIGINT PRIMARY KEY, c1 INT)"))
	require.Equal(t, tso(2200), h.ChangesResolved())
	cs := h.Changes(tso(1500), tso(2200))
	require.Len(t, cs, 1)
	require.Equal(t, int64(51), cs[0].Job.ID)
	require.Equal(t, "CREATE TABLE t10 (id BIGINT PRIMARY KEY, c1 INT)", cs[0].Job.Query)
	require.Equal(t, tso(2200), cs[0].Job.CommitTs)
	require.Equal(t, int64(50), h.Changes(0, tso(1000))[0].Job.ID)

	// Survives persistence, pending or not.
	txn(t, h, tso(3000), put(tidbcodec.MetaTableKey(1, 10), tableJSON(t, 10, "t10x", 3)), version(3))
	got := clone(t, h)
	require.Equal(t, h.Changes(0, tso(3000)), got.Changes(0, tso(3000)))
	require.Equal(t, tso(3000)-1, got.ChangesResolved())
	require.Equal(t, "t10", got.Changes(tso(2999), tso(3000))[0].OldTableName)
}

// The intermediate steps of an online DDL have no job: a later change of
// the same table settles them; the last step gets the job.
func TestIntermediateStepsSettleOnTheNextStep(t *testing.T) {
	h := fixture(t) // table 10 in db 1 at ts 100, version 5
	txn(t, h, tso(2000), put(tidbcodec.MetaTableKey(1, 10), tableJSON(t, 10, "t10", 3)), version(6))
	require.Equal(t, tso(2000)-1, h.ChangesResolved())
	// Another table's change does not settle it.
	txn(t, h, tso(2050), put(tidbcodec.MetaTableKey(1, 11), tableJSON(t, 11, "t11", 1)), version(7))
	require.Equal(t, tso(2000)-1, h.ChangesResolved())
	txn(t, h, tso(2100), put(tidbcodec.MetaTableKey(1, 10), tableJSON(t, 10, "t10", 4)), version(8))
	require.Equal(t, tso(2050)-1, h.ChangesResolved(), "the step at 2000 is settled; table 11 still waits")
	txn(t, h, tso(2150), jobKV(t, 60, tidbcodec.ActionCreateTable, 7, "CREATE TABLE t11 (id BIGINT PRIMARY KEY)"))
	txn(t, h, tso(2200), jobKV(t, 61, tidbcodec.ActionAddIndex, 8, "ALTER TABLE t10 ADD INDEX k(c1)"))
	require.Equal(t, tso(2200), h.ChangesResolved())
	cs := h.Changes(tso(1000), tso(2200))
	require.Len(t, cs, 3)
	require.Nil(t, cs[0].Job)
	require.Equal(t, int64(60), cs[1].Job.GetID())
	require.Equal(t, int64(61), cs[2].Job.GetID())
}

// A job that never comes holds the change log for JobWait of TSO time at
// most; a job that cannot be decoded is counted and ignored; a cancelled
// job (schema version 0) attaches to nothing; a job written in its
// change's own transaction attaches too.
func TestJobWaitAndBadJobs(t *testing.T) {
	h := fixture(t)
	h.JobWait = time.Second
	txn(t, h, tso(2000), put(tidbcodec.MetaTableKey(1, 10), tableJSON(t, 10, "t10", 3)), version(6),
		put(tidbcodec.MetaDDLJobHistoryKey(70), []byte(`{"id":70,"binlog":{"SchemaVersion":"six"}}`)),
		put(tidbcodec.MetaDDLJobHistoryKey(71), jobJSON(t, 71, tidbcodec.ActionDropColumn, 0, "ALTER TABLE t10 DROP COLUMN c9")))
	require.Equal(t, 1, h.BadJobs())
	txn(t, h, tso(2999))
	require.Equal(t, tso(2000)-1, h.ChangesResolved())
	txn(t, h, tso(3000))
	require.Equal(t, tso(3000), h.ChangesResolved(), "settled without a job after JobWait")
	require.Nil(t, h.Changes(tso(1999), tso(2000))[0].Job)

	txn(t, h, tso(4000), put(tidbcodec.MetaTableKey(1, 10), tableJSON(t, 10, "t10", 4)), version(7),
		jobKV(t, 72, tidbcodec.ActionAddColumn, 7, "ALTER TABLE t10 ADD COLUMN c3 INT"))
	require.Equal(t, tso(4000), h.ChangesResolved())
	require.Equal(t, int64(72), h.Changes(tso(3999), tso(4000))[0].Job.GetID())
}
