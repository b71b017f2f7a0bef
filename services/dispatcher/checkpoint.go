package dispatcher

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/layout"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// gcListPage is the listing page size of buffer garbage collection.
const gcListPage = 100

// gcTarget is a written checkpoint whose files may go after GCGrace,
// except keep: the last file at or below it with a full leader list, which
// the file after it may name as its base (store file format version 2).
type gcTarget struct {
	seq, keep uint64
	// derive: keep is not known (a checkpoint written without
	// leader_base_seq): collect reads it from file seq's header.
	derive bool
	at     time.Time
}

// loadCheckpoint reads the stream's checkpoint from etcd (none: start at 1).
func (st *stream) loadCheckpoint(ctx context.Context) error {
	cp := &metav1.Checkpoint{}
	found, _, err := etcdx.GetProto(ctx, st.s.etcd, etcdx.CheckpointKey(st.tenant, st.store), cp)
	if err != nil {
		return err
	}
	if found && cp.Epoch > st.epoch {
		return fmt.Errorf("%w: checkpoint written at epoch %d, ours is %d", errFenced, cp.Epoch, st.epoch)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if found {
		st.ckpt = position{cp.Seq, cp.MaxTs}
		st.written = st.ckpt
		st.ckptBase, st.writtenBase = cp.LeaderBaseSeq, cp.LeaderBaseSeq
		st.ingest.written = ingestCounts{cp.IngestedRows, cp.IngestedBytes}
		// A previous owner may have stopped before deleting what its last
		// checkpoint covers: collect it too (after the grace, from now).
		if cp.Seq > 0 {
			st.gcQueue = append(st.gcQueue, gcTarget{seq: cp.Seq, keep: cp.LeaderBaseSeq, derive: cp.LeaderBaseSeq == 0, at: time.Now()})
		}
	}
	st.sm.checkpointSeq.Set(float64(st.written.seq))
	st.log.Info("stream starts from its checkpoint", "checkpoint", cp.Seq, "found", found)
	return nil
}

// checkpointOnce writes the checkpoint if it advanced, refreshes the lag
// and deletes the buffer files the written checkpoint covers.
func (st *stream) checkpointOnce(ctx context.Context, final bool) error {
	st.trimPast()
	err := st.writeCheckpoint(ctx)
	if err != nil {
		st.sm.ckptFailures.Inc()
	}
	st.mu.Lock()
	w := st.written
	st.mu.Unlock()
	if w.maxTs > 0 {
		lag := time.Since(time.UnixMilli(int64(w.maxTs >> 18)))
		st.sm.checkpointLag.Set(lag.Seconds())
	}
	if err == nil || final {
		if gerr := st.collect(ctx); gerr != nil && err == nil {
			err = gerr
		}
	}
	return err
}

// trimPast drops what the stream keeps of the files at or below its
// in-memory checkpoint: no run reads them again (the replay cache, the
// notices).
func (st *stream) trimPast() {
	ckpt := st.checkpointSeq()
	st.replay.trim(ckpt)
	st.notes.trim(ckpt)
}

// writeCheckpoint writes the in-memory checkpoint to etcd if it advanced,
// in a transaction that only succeeds while the stream task still names this
// dispatcher at this epoch (compared by the task's mod revision, read just
// before) and this dispatcher's registration still holds the lease the
// stream started under. A previous owner can therefore never move it.
func (st *stream) writeCheckpoint(ctx context.Context) error {
	st.mu.Lock()
	c, w, base := st.ckpt, st.written, st.ckptBase
	totals := st.ingest.upTo(w.seq, c.seq)
	st.mu.Unlock()
	if c.seq <= w.seq {
		return nil
	}
	cp := &metav1.Checkpoint{Seq: c.seq, MaxTs: c.maxTs, Epoch: st.epoch, UpdatedUnixMs: time.Now().UnixMilli(), LeaderBaseSeq: base,
		IngestedRows: totals.rows, IngestedBytes: totals.bytes}
	taskKey := etcdx.StreamKey(st.tenant, st.store)
	workerKey := etcdx.WorkerKey(metav1.WorkerKind_WORKER_KIND_DISPATCHER, st.s.cfg.ID)
	for range 3 {
		task := &metav1.StreamTask{}
		found, rev, err := etcdx.GetProto(ctx, st.s.etcd, taskKey, task)
		if err != nil {
			return err
		}
		if !found || task.Owner != st.s.cfg.ID || task.Epoch != st.epoch {
			return fmt.Errorf("%w: the task names owner %q epoch %d", errFenced, task.Owner, task.Epoch)
		}
		resp, err := st.s.etcd.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(taskKey), "=", rev),
				clientv3.Compare(clientv3.LeaseValue(workerKey), "=", st.lease)).
			Then(clientv3.OpPut(etcdx.CheckpointKey(st.tenant, st.store), etcdx.Marshal(cp))).
			Else(clientv3.OpGet(workerKey)).
			Commit()
		if err != nil {
			return fmt.Errorf("write checkpoint %d: %w", c.seq, err)
		}
		if resp.Succeeded {
			st.mu.Lock()
			st.written, st.writtenBase = c, base
			st.ingest.advance(c.seq, totals)
			st.gcQueue = append(st.gcQueue, gcTarget{seq: c.seq, keep: base, at: time.Now()})
			st.mu.Unlock()
			st.sm.checkpointSeq.Set(float64(c.seq))
			return nil
		}
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) == 0 || clientv3.LeaseID(kvs[0].Lease) != st.lease {
			return fmt.Errorf("%w: the worker lease the stream started under is gone", errFenced)
		}
		// The task changed (typically latest_seq from a notification): reread.
	}
	return fmt.Errorf("write checkpoint %d: the stream task kept changing", c.seq)
}

// ingestLedger meters what the stream ingests (docs/tenants.md, "Metering"):
// the row events and object bytes of each file read and not yet covered by
// the written checkpoint, by seq, and the totals the written checkpoint
// holds. The checkpoint write that moves seq also moves the totals, so a
// file counts once: a re-read (run restart) replaces its entry, and a new
// owner continues from the checkpoint's totals and re-reads only files
// after it. Under stream.mu.
type ingestLedger struct {
	files   map[uint64]ingestCounts
	written ingestCounts
}

type ingestCounts struct{ rows, bytes uint64 }

// read records file seq's counts.
func (l *ingestLedger) read(seq uint64, c ingestCounts) {
	if l.files == nil {
		l.files = map[uint64]ingestCounts{}
	}
	l.files[seq] = c
}

// upTo is the totals of a checkpoint at seq to, given the written one at
// from.
func (l *ingestLedger) upTo(from, to uint64) ingestCounts {
	t := l.written
	for seq, c := range l.files {
		if seq > from && seq <= to {
			t.rows += c.rows
			t.bytes += c.bytes
		}
	}
	return t
}

// advance records that the checkpoint at seq was written with totals t.
func (l *ingestLedger) advance(seq uint64, t ingestCounts) {
	l.written = t
	for s := range l.files {
		if s <= seq {
			delete(l.files, s)
		}
	}
}

// readFile records the usage of store file seq, read and routed: its row
// events and object bytes.
func (st *stream) readFile(seq, rows uint64, size int) {
	st.mu.Lock()
	st.ingest.read(seq, ingestCounts{rows, uint64(size)})
	st.mu.Unlock()
}

// collect deletes the buffer files at or below the newest written
// checkpoint older than GCGrace, except the last one there with a full
// leader list (a reader that starts after the checkpoint may need its
// header), listing from the lowest file not yet deleted (a file kept
// before included). Deleting is idempotent, so a crash midway only repeats
// work.
func (st *stream) collect(ctx context.Context) error {
	now := time.Now()
	st.mu.Lock()
	n := 0
	for n < len(st.gcQueue) && now.Sub(st.gcQueue[n].at) >= st.s.cfg.GCGrace {
		if g := st.gcQueue[n]; g.seq >= st.gcReady {
			st.gcReady, st.gcKeep, st.gcDerive = g.seq, g.keep, g.derive
		}
		n++
	}
	st.gcQueue = st.gcQueue[n:]
	target, keep, from, kept, derive := st.gcReady, st.gcKeep, st.gcDone, st.gcKept, st.gcDerive
	st.mu.Unlock()
	if derive && target > from {
		var err error
		if keep, err = st.baseOf(ctx, target); err != nil {
			return fmt.Errorf("read the header of file %d to keep its base: %w", target, err)
		}
		st.mu.Lock()
		if st.gcReady == target {
			st.gcKeep, st.gcDerive = keep, false
		}
		st.mu.Unlock()
	}
	if target <= from && (kept == 0 || kept == keep) {
		return nil
	}
	if kept != 0 && kept <= from {
		from = kept - 1 // the file kept last time may go now
	}
	prefix := layout.StorePrefix(st.cluster, st.tenant, st.store)
	after := ""
	if from > 0 {
		after = prefix + layout.Pad(from) + "~" // after every key of file `from`
	}
	for {
		objs, more, err := st.buffer().List(ctx, prefix, after, gcListPage)
		if err != nil {
			return fmt.Errorf("list buffer files to delete: %w", err)
		}
		for _, o := range objs {
			after = o.Key
			name, err := layout.ParseStoreFileKey(o.Key)
			if err != nil {
				continue // not a store file: not ours to delete
			}
			if name.Seq > target {
				more = false
				break
			}
			if name.Seq == keep {
				continue
			}
			if err := st.buffer().Delete(ctx, o.Key); err != nil {
				return fmt.Errorf("delete buffer file: %w", err)
			}
			st.sm.filesDeleted.Inc()
		}
		if !more {
			break
		}
	}
	st.mu.Lock()
	st.gcDone, st.gcKept = target, keep
	st.mu.Unlock()
	return nil
}

// baseOf is the file a reader that starts after file seq may need the
// header of: seq itself when its header lists the leaders in full (format
// version 2), the base its delta header names, or 0 (format version 1, or
// the file is gone).
func (st *stream) baseOf(ctx context.Context, seq uint64) (uint64, error) {
	objs, _, err := st.buffer().List(ctx, layout.StoreFileSeqPrefix(st.cluster, st.tenant, st.store, seq), "", 1)
	if err != nil || len(objs) == 0 {
		return 0, err
	}
	h, err := storefile.ReadHeader(ctx, st.buffer(), objs[0].Key)
	if err != nil {
		return 0, err
	}
	switch {
	case h.LeaderBaseSeq != 0:
		return h.LeaderBaseSeq, nil
	case h.FormatVersion >= storefile.FormatVersion:
		return seq, nil
	}
	return 0, nil
}
