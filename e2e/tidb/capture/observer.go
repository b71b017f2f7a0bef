package capture

import (
	"bytes"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/tidb/pkg/store/mockstore/unistore/tikv/mvcc"
)

// opKind is one write a store applies to a key.
type opKind uint8

const (
	opPrewrite    opKind = iota + 1 // a lock (Put, Del, Lock) is written
	opCommit                        // the lock's value is committed (2PC commit, resolve, 1PC)
	opRollback                      // a rollback record is written, the lock removed if delLock
	opLockRewrite                   // a pessimistic lock, or a lock rewritten (heartbeat, min_commit_ts push)
	opLockDelete                    // a pessimistic lock removed without a record
)

// applied is one write of a batch, copied: the store reuses its buffers.
type applied struct {
	kind    opKind
	key     []byte
	lockOp  kvrpcpb.Op
	value   []byte
	delLock bool
}

// observedWriter wraps unistore's DBWriter: every batch the store writes
// successfully is handed to the capture, with its start and commit ts.
type observedWriter struct {
	mvcc.DBWriter
	c *Capture
}

type observedBatch struct {
	inner    mvcc.WriteBatch
	startTs  uint64
	commitTs uint64
	ops      []applied
}

func (w *observedWriter) NewWriteBatch(startTS, commitTS uint64, ctx *kvrpcpb.Context) mvcc.WriteBatch {
	return &observedBatch{inner: w.DBWriter.NewWriteBatch(startTS, commitTS, ctx), startTs: startTS, commitTs: commitTS}
}

// Write writes the batch, then hands it to the capture while the caller
// still holds the keys' latches, so writes to one key reach the capture in
// the order the store applied them.
func (w *observedWriter) Write(batch mvcc.WriteBatch) error {
	b, ok := batch.(*observedBatch)
	if !ok {
		return w.DBWriter.Write(batch)
	}
	if err := w.DBWriter.Write(b.inner); err != nil {
		w.c.writeFailed(err)
		return err
	}
	if len(b.ops) > 0 {
		if d := time.Duration(w.c.commitDelay.Load()); b.commitTs != 0 && d > 0 {
			time.Sleep(d)
		}
		w.c.apply(b.startTs, b.commitTs, b.ops)
	}
	return nil
}

func (b *observedBatch) add(kind opKind, key []byte, lock *mvcc.Lock, delLock bool) {
	a := applied{kind: kind, key: bytes.Clone(key), delLock: delLock}
	if lock != nil {
		a.lockOp = kvrpcpb.Op(lock.Op)
		a.value = bytes.Clone(lock.Value)
	}
	b.ops = append(b.ops, a)
}

func (b *observedBatch) Prewrite(key []byte, lock *mvcc.Lock) {
	b.inner.Prewrite(key, lock)
	b.add(opPrewrite, key, lock, false)
}

func (b *observedBatch) Commit(key []byte, lock *mvcc.Lock) {
	b.inner.Commit(key, lock)
	b.add(opCommit, key, lock, false)
}

func (b *observedBatch) Rollback(key []byte, deleteLock bool) {
	b.inner.Rollback(key, deleteLock)
	b.add(opRollback, key, nil, deleteLock)
}

func (b *observedBatch) PessimisticLock(key []byte, lock *mvcc.Lock) {
	b.inner.PessimisticLock(key, lock)
	b.add(opLockRewrite, key, lock, false)
}

func (b *observedBatch) PessimisticRollback(key []byte) {
	b.inner.PessimisticRollback(key)
	b.add(opLockDelete, key, nil, true)
}

// DeleteRange removes every version of a key range without the
// transaction layer (KvDeleteRange, unsafe destroy). TiKV's CDC emits
// nothing for it either; it is counted so a run can tell it happened.
func (w *observedWriter) DeleteRange(start, end []byte, latches mvcc.LatchHandle) error {
	w.c.deleteRange(start, end)
	return w.DBWriter.DeleteRange(start, end, latches)
}
