package mysqlsink

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// MetaDB is the downstream database where the sink keeps its checkpoint
// and syncpoints.
const MetaDB = "tistream_sink"

// position is how far the downstream is applied: every row with commit
// ts below ts, and the first ddls DDLs at ts; resolved is the last
// resolved ts fully applied (the checkpoint a reader can rely on). At a
// resolved ts, ts = resolved and ddls = 0: the downstream is exactly at
// resolved, nothing after it applied. Past it (a batch cut inside the
// next resolved ts, a DDL applied or running — the position is written
// before a DDL's first statement) ts > resolved. A reader that wants the
// downstream exactly at a ts reads it while applied_ts = resolved_ts.
type position struct {
	start    uint64 // the pull's start ts, for a sink that stops before its first resolved ts
	resolved uint64
	ts       uint64
	ddls     int
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func setupMeta(ctx context.Context, db *sql.DB) error {
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS " + Quote(MetaDB),
		"CREATE TABLE IF NOT EXISTS " + QualifiedName(MetaDB, "checkpoint") + ` (
  sink_id VARCHAR(128) NOT NULL PRIMARY KEY,
  start_ts BIGINT UNSIGNED NOT NULL,
  resolved_ts BIGINT UNSIGNED NOT NULL,
  applied_ts BIGINT UNSIGNED NOT NULL,
  applied_ddls INT NOT NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
)`,
		"CREATE TABLE IF NOT EXISTS " + QualifiedName(MetaDB, "syncpoint") + ` (
  sink_id VARCHAR(128) NOT NULL,
  ts BIGINT UNSIGNED NOT NULL,
  created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (sink_id, ts)
)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("set up %s: %w", MetaDB, err)
		}
	}
	return nil
}

// readPosition reads the sink's checkpoint; found is false for a new sink.
func readPosition(ctx context.Context, db *sql.DB, id string) (p position, found bool, err error) {
	err = db.QueryRowContext(ctx, "SELECT start_ts, resolved_ts, applied_ts, applied_ddls FROM "+
		QualifiedName(MetaDB, "checkpoint")+" WHERE sink_id = ?", id).Scan(&p.start, &p.resolved, &p.ts, &p.ddls)
	if errors.Is(err, sql.ErrNoRows) {
		return position{}, false, nil
	}
	if err != nil {
		return position{}, false, fmt.Errorf("read the checkpoint of sink %q: %w", id, err)
	}
	return p, true, nil
}

func writePosition(ctx context.Context, e execer, id string, p position) error {
	_, err := e.ExecContext(ctx, "INSERT INTO "+QualifiedName(MetaDB, "checkpoint")+
		" (sink_id, start_ts, resolved_ts, applied_ts, applied_ddls) VALUES (?, ?, ?, ?, ?)"+
		" ON DUPLICATE KEY UPDATE resolved_ts = VALUES(resolved_ts), applied_ts = VALUES(applied_ts), applied_ddls = VALUES(applied_ddls)",
		id, p.start, p.resolved, p.ts, p.ddls)
	if err != nil {
		return fmt.Errorf("write the checkpoint: %w", err)
	}
	return nil
}

func writeSyncpoint(ctx context.Context, e execer, id string, ts uint64) error {
	_, err := e.ExecContext(ctx, "INSERT IGNORE INTO "+QualifiedName(MetaDB, "syncpoint")+" (sink_id, ts) VALUES (?, ?)", id, ts)
	if err != nil {
		return fmt.Errorf("write a syncpoint: %w", err)
	}
	return nil
}

// ReadCheckpoint is a sink's last fully applied resolved ts (0 when it
// has none): what a reader of the downstream can rely on.
func ReadCheckpoint(ctx context.Context, db *sql.DB, id string) (uint64, error) {
	p, _, err := readPosition(ctx, db, id)
	return p.resolved, err
}
