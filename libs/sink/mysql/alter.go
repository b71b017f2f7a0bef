package mysqlsink

import (
	"fmt"

	tc "github.com/tistream/tistream/libs/tidbcodec"
)

// AlterSQL is what brings a downstream table from one TiDB definition of
// it to the next: the difference in public columns (added, dropped,
// renamed, retyped) and indexes, as MariaDB statements that can run again
// without harm (IF [NOT] EXISTS), so a sink that stops between a DDL and
// its checkpoint repeats it safely. Definitions that differ in nothing the
// downstream table holds (an online DDL's intermediate step, a comment, an
// auto-id rebase) give no statement. A change of the primary key is
// refused: rows could no longer be found by it.
func AlterSQL(db string, from, to *tc.TableInfo) ([]string, error) {
	if from.PKIsHandle != to.PKIsHandle || from.IsCommonHandle != to.IsCommonHandle {
		return nil, fmt.Errorf("the primary key of %s.%s changes (clustered or handle): not translatable", db, to.Name.O)
	}
	if a, _ := primaryKey(from); a != mustPK(to) {
		return nil, fmt.Errorf("the primary key of %s.%s changes from (%s) to (%s): not translatable", db, to.Name.O, a, mustPK(to))
	}
	table := "ALTER TABLE " + QualifiedName(db, to.Name.O) + " "
	var out []string
	oldIdx, newIdx := indexesByID(from), indexesByID(to)
	for _, x := range publicIndexes(from) {
		if y, ok := newIdx[x.ID]; !ok || indexDef(x) != indexDef(y) {
			out = append(out, table+"DROP INDEX IF EXISTS "+Quote(indexName(x)))
		}
	}
	cols, err := alterColumns(from, to)
	if err != nil {
		return nil, fmt.Errorf("%s.%s: %w", db, to.Name.O, err)
	}
	for _, c := range cols {
		out = append(out, table+c)
	}
	for _, x := range publicIndexes(to) {
		if y, ok := oldIdx[x.ID]; !ok || indexDef(x) != indexDef(y) {
			kind := "ADD INDEX IF NOT EXISTS "
			if x.Unique || x.Primary {
				kind = "ADD UNIQUE INDEX IF NOT EXISTS "
			}
			out = append(out, table+kind+Quote(indexName(x))+" ("+indexColumns(x)+")")
		}
	}
	return out, nil
}

func mustPK(info *tc.TableInfo) string { pk, _ := primaryKey(info); return pk }

func indexesByID(info *tc.TableInfo) map[int64]*tc.IndexInfo {
	m := map[int64]*tc.IndexInfo{}
	for _, x := range publicIndexes(info) {
		m[x.ID] = x
	}
	return m
}

// alterColumns diffs the public columns by id. A column dropped and one
// added under the same name are one column retyped (TiDB's MODIFY COLUMN
// with a type change writes a new column and swaps it in), not a drop
// that would lose its values.
func alterColumns(from, to *tc.TableInfo) ([]string, error) {
	oldCols, newCols := publicColumns(from), publicColumns(to)
	oldByID, newByID := map[int64]*tc.ColumnInfo{}, map[int64]*tc.ColumnInfo{}
	for _, c := range oldCols {
		oldByID[c.ID] = c
	}
	for _, c := range newCols {
		newByID[c.ID] = c
	}
	removedByName := map[string]*tc.ColumnInfo{}
	for _, c := range oldCols {
		if _, ok := newByID[c.ID]; !ok {
			removedByName[c.Name.L] = c
		}
	}
	var out []string
	var adds []string
	prev := ""
	for _, c := range newCols {
		def, err := columnDef(c)
		if err != nil {
			return nil, err
		}
		old, kept := oldByID[c.ID]
		if !kept {
			old = removedByName[c.Name.L]
			delete(removedByName, c.Name.L)
		}
		switch {
		case old == nil:
			pos := " FIRST"
			if prev != "" {
				pos = " AFTER " + Quote(prev)
			}
			adds = append(adds, "ADD COLUMN IF NOT EXISTS "+def+pos)
		case old.Name.O != c.Name.O:
			out = append(out, "CHANGE COLUMN IF EXISTS "+Quote(old.Name.O)+" "+def)
		default:
			oldDef, err := columnDef(old)
			if err != nil {
				return nil, err
			}
			if oldDef != def {
				out = append(out, "MODIFY COLUMN IF EXISTS "+def)
			}
		}
		prev = c.Name.O
	}
	for _, c := range oldCols { // in table order, for stable output
		if removedByName[c.Name.L] == c {
			out = append(out, "DROP COLUMN IF EXISTS "+Quote(c.Name.O))
		}
	}
	return append(out, adds...), nil
}
