package sortbuf

import (
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
)

// errInvalidRow is returned for rows no upstream can have produced.
var errInvalidRow = errors.New("sortbuf: invalid row")

// ErrBatchFull is returned by Batch.Add when the batch holds MaxBatchBytes:
// commit it first. (Pebble cannot take a batch of 4 GiB.)
var ErrBatchFull = errors.New("sortbuf: batch full")

const (
	// MaxRowBytes bounds one row's key + value + old value (TiDB's own
	// limit on an entry is far lower).
	MaxRowBytes = 1 << 30
	// MaxBatchBytes bounds the encoded size of one batch.
	MaxBatchBytes = 2 << 30
)

// addRows writes rows in one batch of b: Buffer.Add.
func addRows(b Buffer, rows []Row) error {
	batch := b.NewBatch()
	defer batch.Close()
	for _, r := range rows {
		if err := batch.Add(r); err != nil {
			return err
		}
	}
	return batch.Commit()
}

func validateRow(r *Row) error {
	if r.CommitTs == 0 {
		return fmt.Errorf("%w: commit_ts 0", errInvalidRow)
	}
	if !r.Op.Valid() {
		return fmt.Errorf("%w: %s", errInvalidRow, r.Op)
	}
	if r.Size() > MaxRowBytes {
		return fmt.Errorf("%w: %d bytes", errInvalidRow, r.Size())
	}
	return nil
}

// pebbleBatch encodes rows straight into a Pebble batch (SetDeferred: no
// intermediate key or value buffer) and is reused after each Commit.
type pebbleBatch struct {
	buf   *pebbleBuffer
	pb    *pebble.Batch
	n     int
	bytes int
	minTs uint64
	delta statDelta
}

func (b *pebbleBuffer) NewBatch() Batch {
	return &pebbleBatch{buf: b, pb: b.s.db.NewBatch(), minTs: math.MaxUint64}
}

func (b *pebbleBatch) Len() int   { return b.n }
func (b *pebbleBatch) Bytes() int { return b.bytes }

func (b *pebbleBatch) Add(r Row) error {
	if b.pb == nil {
		return ErrClosed
	}
	if err := validateRow(&r); err != nil {
		return err
	}
	if r.CommitTs <= b.buf.floor.Load() {
		b.delta.late++
		return nil
	}
	if b.pb.Len()+rowHeaderLen+encodedValueLen(&r)+len(r.Key) > MaxBatchBytes {
		return ErrBatchFull
	}
	op := b.pb.SetDeferred(rowHeaderLen+len(r.Key), encodedValueLen(&r))
	putRowKey(op.Key, b.buf.uid, &r)
	putValue(op.Value, &r)
	if err := op.Finish(); err != nil {
		return fmt.Errorf("sortbuf: batch add: %w", err)
	}
	b.n++
	b.bytes += r.Size()
	b.minTs = min(b.minTs, r.CommitTs)
	b.delta.add(r.CommitTs, r.Size())
	return nil
}

func (b *pebbleBatch) Commit() error {
	if b.pb == nil {
		return ErrClosed
	}
	if b.n > 0 {
		if err := b.commit(); err != nil {
			return err
		}
	}
	b.buf.stats.apply(&b.delta)
	b.delta.reset()
	b.n, b.bytes, b.minTs = 0, 0, math.MaxUint64
	return nil
}

func (b *pebbleBatch) commit() error {
	buf := b.buf
	if err := buf.enter(); err != nil {
		return err
	}
	defer buf.e.release()
	size := b.pb.Len()
	if err := b.pb.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("sortbuf: commit batch of range %d: %w", buf.uid, err)
	}
	b.pb.Reset()
	if err := buf.s.gc.wrote(buf.s.db, &buf.e.cfg, size, buf.e.now()); err != nil {
		return err
	}
	// A DeleteUpTo between Add and Commit may have passed rows of this
	// batch: they are hidden already, and this queues their deletion.
	if floor := buf.floor.Load(); b.minTs <= floor {
		return buf.s.gc.add(buf.s.db, &buf.e.cfg, buf.uid, floor, buf.e.now())
	}
	return nil
}

func (b *pebbleBatch) Close() {
	if b.pb != nil {
		_ = b.pb.Close() // only fails on a double close, which pb == nil rules out
		b.pb = nil
	}
}
