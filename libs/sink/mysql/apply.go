package mysqlsink

import (
	"context"
	"fmt"
	"strings"

	"github.com/tistream/tistream/client"
)

// rowsPerStatement bounds a multi-row REPLACE or DELETE.
const rowsPerStatement = 256

// stmt is one statement of a flush and its arguments.
type stmt struct {
	query string
	args  []any
}

// rowStatements turns rows (in commit order) into statements that keep
// that order: consecutive rows of one table and operation share a
// multi-row statement. Puts are REPLACE by primary key and deletes DELETE
// by it: absolute values, so a transaction applied again gives the same
// rows.
func rowStatements(rows []*client.Row) ([]stmt, error) {
	var out []stmt
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && j-i < rowsPerStatement && rows[j].Delete == rows[i].Delete &&
			rows[j].TableID == rows[i].TableID && rows[j].Schema == rows[i].Schema {
			j++
		}
		var (
			s   stmt
			err error
		)
		if rows[i].Delete {
			s, err = deleteStatement(rows[i:j])
		} else {
			s, err = replaceStatement(rows[i:j])
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		i = j
	}
	return out, nil
}

func replaceStatement(rows []*client.Row) (stmt, error) {
	first := rows[0]
	rowID := hasRowID(first.Schema.Info)
	var b strings.Builder
	b.WriteString("REPLACE INTO " + QualifiedName(first.DB, first.Table) + " (")
	for i, c := range first.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(Quote(c.Name))
	}
	n := len(first.Columns)
	if rowID {
		b.WriteString(", " + Quote(RowIDColumn))
		n++
	}
	b.WriteString(") VALUES ")
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
	args := make([]any, 0, n*len(rows))
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
		for _, c := range r.Columns {
			a, err := sqlArg(c)
			if err != nil {
				return stmt{}, fmt.Errorf("%s.%s at %d: %w", r.DB, r.Table, r.CommitTs, err)
			}
			args = append(args, a)
		}
		if rowID {
			args = append(args, r.Handle)
		}
	}
	return stmt{b.String(), args}, nil
}

// deleteStatement deletes rows by the downstream primary key: the handle
// (int primary key or _tidb_rowid), or a clustered key's columns from the
// old value.
func deleteStatement(rows []*client.Row) (stmt, error) {
	first := rows[0]
	info := first.Schema.Info
	var keyCols []string
	switch {
	case info.PKIsHandle:
		keyCols = []string{info.HandleColumn().Name.O}
	case info.IsCommonHandle:
		for _, x := range info.Indices {
			if x != nil && x.Primary {
				for _, c := range x.Columns {
					keyCols = append(keyCols, c.Name.O)
				}
			}
		}
	default:
		keyCols = []string{RowIDColumn}
	}
	quoted := make([]string, len(keyCols))
	for i, k := range keyCols {
		quoted[i] = Quote(k)
	}
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(keyCols)), ", ") + ")"
	var b strings.Builder
	b.WriteString("DELETE FROM " + QualifiedName(first.DB, first.Table) + " WHERE (" + strings.Join(quoted, ", ") + ") IN (")
	var args []any
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
		if !info.IsCommonHandle {
			args = append(args, r.Handle)
			continue
		}
		for _, k := range keyCols {
			v, ok := columnValue(r.Old, k)
			if !ok {
				return stmt{}, fmt.Errorf("%s.%s at %d: a delete of a clustered-index row without its old value: the sink cannot find the row (enable old values upstream)",
					r.DB, r.Table, r.CommitTs)
			}
			a, err := sqlArg(v)
			if err != nil {
				return stmt{}, err
			}
			args = append(args, a)
		}
	}
	b.WriteString(")")
	return stmt{b.String(), args}, nil
}

func columnValue(cols []client.Column, name string) (client.Column, bool) {
	for _, c := range cols {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return client.Column{}, false
}

// flush commits the buffered rows and the new position in one downstream
// transaction, with a syncpoint when one is due.
func (s *Sink) flush(ctx context.Context, pos position, syncpoint bool) error {
	stmts, err := rowStatements(s.buf)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.query, st.args...); err != nil {
			return fmt.Errorf("apply %.80s...: %w", st.query, err)
		}
	}
	if err := writePosition(ctx, tx, s.id, pos); err != nil {
		return err
	}
	if syncpoint {
		if err := writeSyncpoint(ctx, tx, s.id, pos.resolved); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.applied(pos)
	return nil
}

// physicalTime is a TSO's physical part.
func physicalMs(ts uint64) int64 { return int64(ts >> 18) }
