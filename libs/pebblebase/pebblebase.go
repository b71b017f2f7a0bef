// Package pebblebase is the baseline every figure of the ordering core's
// benchmarks is compared with, measured in the same run on the same
// machine: the same rows written to one plain Pebble instance (default
// options, WAL off) in commit order, in batches of BatchRows rows, then read
// back in order. It is what the storage engine alone does with the rows; a
// sorter that does less than that per row is wasting the machine.
package pebblebase

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// BatchRows is the rows per Pebble batch.
const BatchRows = 1000

// DB is one plain Pebble instance being written.
type DB struct {
	db    *pebble.DB
	batch *pebble.Batch
	n     int
	key   []byte
	rows  int
}

// Open creates a Pebble instance in dir (which must be empty or absent)
// with Pebble's default options and the WAL off.
func Open(dir string) (*DB, error) {
	db, err := pebble.Open(dir, &pebble.Options{DisableWAL: true, Logger: quiet{}})
	if err != nil {
		return nil, fmt.Errorf("pebblebase: %w", err)
	}
	return &DB{db: db, batch: db.NewBatch()}, nil
}

// Add writes one row under commit_ts, start_ts, key (big-endian: byte order
// is commit order), committing every BatchRows rows.
func (d *DB) Add(commitTs, startTs uint64, key, value []byte) error {
	d.key = binary.BigEndian.AppendUint64(d.key[:0], commitTs)
	d.key = binary.BigEndian.AppendUint64(d.key, startTs)
	d.key = append(d.key, key...)
	if err := d.batch.Set(d.key, value, nil); err != nil {
		return err
	}
	d.rows++
	if d.n++; d.n == BatchRows {
		return d.commit()
	}
	return nil
}

func (d *DB) commit() error {
	d.n = 0
	if err := d.batch.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("pebblebase: commit: %w", err)
	}
	d.batch.Reset()
	return nil
}

// Finish commits the rows of the last, partial batch.
func (d *DB) Finish() error {
	if d.n == 0 {
		return nil
	}
	return d.commit()
}

// ReadAll reads every row back in order and checks the count.
func (d *DB) ReadAll() error {
	it, err := d.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("pebblebase: %w", err)
	}
	n, sum := 0, 0
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("pebblebase: read: %w", err)
		}
		n++
		sum += len(it.Key()) + len(v)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("pebblebase: read: %w", err)
	}
	if n != d.rows || sum == 0 && n > 0 {
		return fmt.Errorf("pebblebase: read back %d rows, wrote %d", n, d.rows)
	}
	return nil
}

// Close closes the instance.
func (d *DB) Close() error {
	_ = d.batch.Close()
	return d.db.Close()
}

// quiet drops Pebble's routine info lines ("Found 0 WALs") from benchmark
// output; errors still go to Pebble's default logger.
type quiet struct{}

func (quiet) Infof(string, ...any)           {}
func (quiet) Errorf(format string, a ...any) { pebble.DefaultLogger.Errorf(format, a...) }
func (quiet) Fatalf(format string, a ...any) { pebble.DefaultLogger.Fatalf(format, a...) }
