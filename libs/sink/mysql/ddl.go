package mysqlsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tistream/tistream/client"
	tc "github.com/tistream/tistream/libs/tidbcodec"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

// RefusedError is a DDL the sink cannot apply: the sink stops before it,
// with every earlier change applied and checkpointed.
type RefusedError struct {
	DDL    *apiv1.DDL
	Reason string
}

func (e *RefusedError) Error() string {
	d := e.DDL
	q := d.Query
	if q == "" {
		q = "(no statement text)"
	}
	return fmt.Sprintf("sink: cannot apply %s of %s.%s (table %d) at commit ts %d, %q: %s",
		d.Kind, d.DbName, d.TableName, d.TableId, d.CommitTs, q, e.Reason)
}

func parseInfo(raw []byte) (*tc.TableInfo, error) {
	info := &tc.TableInfo{}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, errors.New("TableInfo is not a JSON object")
	}
	if err := json.Unmarshal(raw, info); err != nil {
		return nil, err
	}
	return info, nil
}

// ddl applies a DDL event after the rows before it, and checkpoints its
// position, so a restart neither repeats rows across it nor misses it. A
// restarted sink passes the DDLs it applied already, learning their tables.
func (s *Sink) ddl(ctx context.Context, ev client.Event) error {
	d := ev.DDL
	if s.ddlTs != d.CommitTs {
		s.ddlTs, s.ddlN = d.CommitTs, 0
	}
	s.ddlN++
	done := d.CommitTs < s.skip.ts || (d.CommitTs == s.skip.ts && s.ddlN <= s.skip.ddls)
	if !done && len(s.buf) > 0 {
		p := s.positionBefore(d.CommitTs)
		p.ddls = s.ddlN - 1
		if err := s.flush(ctx, p, false); err != nil {
			return err
		}
	}
	stmts, err := s.translate(d)
	if err != nil {
		return err
	}
	if done {
		s.log.Info("sink passes a DDL applied before its restart", "kind", d.Kind.String(), "commit_ts", d.CommitTs)
		return nil
	}
	if len(stmts) > 0 {
		// DDL statements are not transactional: before the first one
		// runs, the checkpoint says the downstream is past its last
		// resolved ts (every row below the DDL, the DDLs before it at its
		// ts), so that no reader takes a half-applied DDL for the state
		// at resolved_ts.
		if err := s.mark(ctx, position{start: s.pos.start, resolved: s.pos.resolved, ts: d.CommitTs, ddls: s.ddlN - 1}); err != nil {
			return err
		}
	}
	for _, q := range stmts {
		if err := s.exec(ctx, q, d); err != nil {
			return fmt.Errorf("apply %s at %d (%q): %s: %w", d.Kind, d.CommitTs, d.Query, q, err)
		}
	}
	if !systemDB(d.DbName) {
		s.m.ddls.WithLabelValues(d.Kind.String()).Inc()
		s.log.Info("sink applied a DDL", "kind", d.Kind.String(), "commit_ts", d.CommitTs, "db", d.DbName, "table", d.TableName,
			"statements", len(stmts), "query", d.Query)
	}
	return s.mark(ctx, position{start: s.pos.start, resolved: s.pos.resolved, ts: d.CommitTs, ddls: s.ddlN})
}

// mark writes a position that has no rows to commit with it (a DDL's),
// unless it is the one written last.
func (s *Sink) mark(ctx context.Context, pos position) error {
	if pos == s.pos {
		return nil
	}
	if err := writePosition(ctx, s.db, s.id, pos); err != nil {
		return err
	}
	s.pos = pos
	return nil
}

// SystemDBs are TiDB's own databases: the sink never replicates them, as
// TiCDC does not (mysql holds TiDB's users, statistics, DDL job queues
// and tables with JSON columns; the others are memory tables).
var SystemDBs = []string{"mysql", "sys", "information_schema", "performance_schema", "metrics_schema"}

func systemDB(name string) bool {
	for _, s := range SystemDBs {
		if equalFold(name, s) {
			return true
		}
	}
	return false
}

// Why the rows of a physical table are passed.
const (
	skipSystem  = "system"  // a table of TiDB's system databases
	skipDropped = "dropped" // a table dropped or truncated upstream
)

// skipTable remembers the physical ids of a table whose rows the sink
// passes; why "" forgets them (a table that exists again: TiDB's RECOVER
// TABLE brings a dropped table back under its id).
func (s *Sink) skipTable(info *tc.TableInfo, why string) {
	ids, err := info.PhysicalIDs()
	if err != nil {
		ids = nil
	}
	for _, id := range append(ids, info.ID) {
		if why == "" {
			delete(s.skipped, id)
		} else {
			s.skipped[id] = why
		}
	}
}

// translate turns a DDL event into MySQL statements and moves the sink's
// view of the downstream tables past it.
func (s *Sink) translate(d *apiv1.DDL) ([]string, error) {
	refuse := func(format string, args ...any) error {
		return &RefusedError{DDL: d, Reason: fmt.Sprintf(format, args...)}
	}
	if equalFold(d.DbName, MetaDB) {
		return nil, refuse("database %s is the sink's own", MetaDB)
	}
	var info *tc.TableInfo
	if len(d.TableInfoJson) > 0 {
		var err error
		if info, err = parseInfo(d.TableInfoJson); err != nil {
			return nil, refuse("TableInfo: %v", err)
		}
	}
	if systemDB(d.DbName) || (d.Kind == apiv1.DDL_KIND_RENAME_TABLE && systemDB(d.OldDbName)) {
		if d.Kind == apiv1.DDL_KIND_RENAME_TABLE && systemDB(d.DbName) != systemDB(d.OldDbName) {
			return nil, refuse("the table moves between TiDB's system database and a replicated one")
		}
		if info != nil {
			s.skipTable(info, skipSystem)
		}
		return nil, nil // TiDB's own tables are not replicated
	}
	cur := s.tables[d.TableId]
	switch d.Kind {
	case apiv1.DDL_KIND_CREATE_DATABASE:
		return []string{"CREATE DATABASE IF NOT EXISTS " + Quote(d.DbName)}, nil
	case apiv1.DDL_KIND_DROP_DATABASE:
		for id, t := range s.tables {
			if equalFold(t.db, d.DbName) {
				s.skipTable(t.info, skipDropped)
				delete(s.tables, id)
			}
		}
		return []string{"DROP DATABASE IF EXISTS " + Quote(d.DbName)}, nil
	case apiv1.DDL_KIND_DROP_TABLE:
		db, name := d.DbName, d.TableName
		if cur != nil {
			db, name = cur.db, cur.info.Name.O
			s.skipTable(cur.info, skipDropped)
		}
		delete(s.tables, d.TableId)
		return []string{"DROP TABLE IF EXISTS " + QualifiedName(db, name)}, nil
	case apiv1.DDL_KIND_DROP_PARTITION, apiv1.DDL_KIND_TRUNCATE_PARTITION:
		return nil, refuse("downstream tables are not partitioned, so the sink cannot tell which rows the partition held")
	}
	if info == nil {
		return nil, refuse("the event carries no TableInfo")
	}
	if !tc.IsNullJSON(info.View) || !tc.IsNullJSON(info.Sequence) {
		return nil, nil // views and sequences hold no rows
	}
	if d.Kind == apiv1.DDL_KIND_ALTER_TABLE && tc.ActionType(d.JobType) == tc.ActionExchangeTablePartition {
		return nil, refuse("EXCHANGE PARTITION swaps the rows of a partition and a table without a row event; downstream tables are not partitioned, so the sink cannot tell which rows move")
	}
	next := &table{db: d.DbName, info: info}
	s.skipTable(info, "")
	if d.Kind == apiv1.DDL_KIND_TRUNCATE_TABLE {
		old := s.tables[d.OldTableId]
		if old != nil {
			s.skipTable(old.info, skipDropped)
		}
		delete(s.tables, d.OldTableId)
		s.tables[d.TableId] = next
		if old == nil {
			return s.create(d, info)
		}
		stmts := []string{"TRUNCATE TABLE " + QualifiedName(old.db, old.info.Name.O)}
		alter, err := AlterSQL(d.DbName, old.info, info)
		if err != nil {
			return nil, refuse("%v", err)
		}
		return append(stmts, alter...), nil
	}
	s.tables[d.TableId] = next
	if cur == nil || d.Kind == apiv1.DDL_KIND_CREATE_TABLE {
		return s.create(d, info)
	}
	var stmts []string
	if !equalFold(cur.db, d.DbName) || cur.info.Name.O != info.Name.O {
		stmts = append(stmts, "CREATE DATABASE IF NOT EXISTS "+Quote(d.DbName),
			renamePrefix+QualifiedName(cur.db, cur.info.Name.O)+" TO "+QualifiedName(d.DbName, info.Name.O))
	}
	alter, err := AlterSQL(d.DbName, cur.info, info)
	if err != nil {
		return nil, refuse("%v", err)
	}
	return append(stmts, alter...), nil
}

func (s *Sink) create(d *apiv1.DDL, info *tc.TableInfo) ([]string, error) {
	q, err := CreateTableSQL(d.DbName, info)
	if err != nil {
		return nil, &RefusedError{DDL: d, Reason: err.Error()}
	}
	return []string{"CREATE DATABASE IF NOT EXISTS " + Quote(d.DbName), q}, nil
}

// renamePrefix starts a rename, which the sink runs only while the old
// table exists and the new one does not: RENAME TABLE has no IF EXISTS,
// and a restarted sink may have renamed it already.
const renamePrefix = "RENAME TABLE "

// exec runs one statement of a DDL.
func (s *Sink) exec(ctx context.Context, q string, d *apiv1.DDL) error {
	if strings.HasPrefix(q, renamePrefix) {
		cur, next := d.OldDbName, d.DbName
		var n int
		err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE (TABLE_SCHEMA = ? AND TABLE_NAME = ?)"+
			" OR (TABLE_SCHEMA = ? AND TABLE_NAME = ?)", cur, d.OldTableName, next, d.TableName).Scan(&n)
		if err != nil {
			return err
		}
		if n != 1 || s.renamed(ctx, next, d.TableName) {
			return nil // renamed already (or nothing to rename)
		}
	}
	_, err := s.db.ExecContext(ctx, q)
	return err
}

func (s *Sink) renamed(ctx context.Context, db, name string) bool {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", db, name).Scan(&n)
	return err == nil && n > 0
}
