package schema

import (
	"time"

	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// Job is the finished DDL job a change belongs to: what TiDB wrote to hash
// DDLJobHistory of the meta range when the job finished.
type Job struct {
	ID         int64
	Type       tidbcodec.ActionType
	State      tidbcodec.JobState
	SchemaID   int64
	TableID    int64 // for TRUNCATE TABLE, the old table
	SchemaName string
	TableName  string
	Query      string // the statement as the client sent it
	CommitTs   uint64 // when the job was written to the history
}

// DefaultJobWait is how long (in TSO time past a change's commit ts) a
// change waits for its job before it is complete without one. TiDB writes a
// job once every TiDB node loaded the version of its last change: well
// under a second normally, up to the schema lease (45 s) when a node hangs.
const DefaultJobWait = 10 * time.Second

// tsoDelta is d in TSO units (physical milliseconds << 18).
func tsoDelta(d time.Duration) uint64 { return uint64(d.Milliseconds()) << 18 }

// TiDB writes a finished job after the transaction of its last schema
// change (in the job's "synced" step), so a change at ts S learns its job
// only at a later ts H. Until then the change is pending: it may still get a
// job. It is settled when
//
//   - its job arrives (matched by the schema version the job produced),
//   - a later change of the same object commits (so it was an intermediate
//     step of an online DDL, which has no job of its own: TiDB runs one job
//     per object at a time and writes its history before the next starts),
//   - or the history has read JobWait past it (a job that never came).
//
// Changes below the first pending one are complete: ChangesResolved.

// applyJob attaches a finished job to the changes of the schema version
// it produced. A job that cannot be decoded, changed nothing (cancelled) or
// matches no change is counted and ignored: it must not stop the history.
func (h *History) applyJob(ts uint64, op formatv1.Op, value []byte) {
	if op != formatv1.Op_OP_PUT {
		return
	}
	j, err := tidbcodec.DecodeJob(value)
	if err != nil {
		h.badJobs++
		return
	}
	v := j.SchemaVersion()
	if v <= 0 || j.State == tidbcodec.JobStateCancelled {
		return
	}
	job := &Job{ID: j.ID, Type: j.Type, State: j.State, SchemaID: j.SchemaID, TableID: j.TableID,
		SchemaName: j.SchemaName, TableName: j.TableName, Query: j.Query, CommitTs: ts}
	if h.tail.open && h.tail.ts == ts {
		// Written with its change (not TiDB's way, but harmless): attach
		// when the transaction closes and its version is known.
		h.tail.jobs = append(h.tail.jobs, job)
		return
	}
	h.attachJob(job, v)
}

func (h *History) attachJob(job *Job, version int64) {
	for i := len(h.changes) - 1; i >= 0; i-- {
		c := &h.changes[i]
		if c.SchemaVersion < version {
			break
		}
		if c.SchemaVersion == version && c.Kind != ChangeVersion && c.Job == nil {
			c.Job, c.settled = job, true
		}
	}
}

// settleObject settles the pending changes of the object the change at i
// changed, committed before it: they were steps without a job.
func (h *History) settleObject(i int) {
	c := &h.changes[i]
	for k := h.pendingStart(); k < i; k++ {
		p := &h.changes[k]
		if !p.settled && p.CommitTs < c.CommitTs && p.sameObject(c) {
			p.settled = true
		}
	}
}

func (c *Change) sameObject(o *Change) bool {
	if (c.TableID != 0) != (o.TableID != 0) {
		return false
	}
	if c.TableID != 0 {
		return c.TableID == o.TableID
	}
	return c.DBID == o.DBID && c.DBID != 0
}

// settleWaited settles the changes the history has read JobWait past.
func (h *History) settleWaited() {
	wait := tsoDelta(h.JobWait)
	for k := h.pendingStart(); k < len(h.changes); k++ {
		if c := &h.changes[k]; !c.settled && c.CommitTs+wait <= h.resolved {
			c.settled = true
		}
	}
}

// pendingStart is the index of the first pending change (len when none).
func (h *History) pendingStart() int {
	if h.scan > len(h.changes) {
		h.scan = 0
	}
	for h.scan < len(h.changes) && h.changes[h.scan].settled {
		h.scan++
	}
	return h.scan
}

// ChangesResolved is how far the change log is complete, jobs included:
// every change committed at or before it is in Changes with the job it will
// ever get. It is the resolved ts, held below the first change still
// waiting for its job.
func (h *History) ChangesResolved() uint64 {
	if i := h.pendingStart(); i < len(h.changes) && (!h.tail.open || i < h.tail.start) {
		return min(h.resolved, h.changes[i].CommitTs-1)
	}
	return h.resolved
}

// BadJobs counts DDL history entries that could not be decoded.
func (h *History) BadJobs() int { return h.badJobs }

// GetID is the job's id, 0 for none.
func (j *Job) GetID() int64 {
	if j == nil {
		return 0
	}
	return j.ID
}
