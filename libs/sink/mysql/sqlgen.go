package mysqlsink

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	tc "github.com/tistream/tistream/libs/tidbcodec"
)

// RowIDColumn is the hidden primary key the sink gives a downstream table
// whose upstream rows are keyed by TiDB's _tidb_rowid (no clustered
// primary key): the record key's handle, so every change finds its row.
const RowIDColumn = "_tidb_rowid"

// Quote quotes an identifier for MySQL.
func Quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// QualifiedName is `db`.`table`.
func QualifiedName(db, table string) string { return Quote(db) + "." + Quote(table) }

// collations MariaDB 10.x knows by the same name as TiDB; a column with
// another collation gets its charset's default.
var collations = map[string]bool{"utf8mb4_bin": true, "utf8mb4_general_ci": true, "utf8mb4_unicode_ci": true,
	"utf8_bin": true, "utf8_general_ci": true, "utf8_unicode_ci": true, "latin1_bin": true, "latin1_swedish_ci": true,
	"ascii_bin": true, "ascii_general_ci": true, "binary": true}

// columnType is a column's MySQL type, as CREATE TABLE writes it.
func columnType(c *tc.ColumnInfo) (string, error) {
	ft := &c.FieldType
	unsigned := ""
	if ft.Flag&tc.UnsignedFlag != 0 {
		unsigned = " UNSIGNED"
	}
	str := func(base string) string {
		s := base
		if ft.Charset != "" && ft.Charset != tc.CharsetBin {
			s += " CHARACTER SET " + ft.Charset
			if collations[ft.Collate] {
				s += " COLLATE " + ft.Collate
			}
		}
		return s
	}
	fsp := func(base string) string {
		if ft.Decimal > 0 {
			return fmt.Sprintf("%s(%d)", base, ft.Decimal)
		}
		return base
	}
	binary := ft.Charset == tc.CharsetBin
	switch ft.Tp {
	case tc.TypeTiny:
		return "TINYINT" + unsigned, nil
	case tc.TypeShort:
		return "SMALLINT" + unsigned, nil
	case tc.TypeInt24:
		return "MEDIUMINT" + unsigned, nil
	case tc.TypeLong:
		return "INT" + unsigned, nil
	case tc.TypeLonglong:
		return "BIGINT" + unsigned, nil
	case tc.TypeFloat:
		return "FLOAT" + unsigned, nil
	case tc.TypeDouble:
		return "DOUBLE" + unsigned, nil
	case tc.TypeNewDecimal:
		return fmt.Sprintf("DECIMAL(%d,%d)%s", max(ft.Flen, 1), max(ft.Decimal, 0), unsigned), nil
	case tc.TypeVarchar, tc.TypeVarString:
		if binary {
			return fmt.Sprintf("VARBINARY(%d)", ft.Flen), nil
		}
		return str(fmt.Sprintf("VARCHAR(%d)", ft.Flen)), nil
	case tc.TypeString:
		if binary {
			return fmt.Sprintf("BINARY(%d)", max(ft.Flen, 1)), nil
		}
		return str(fmt.Sprintf("CHAR(%d)", max(ft.Flen, 1))), nil
	case tc.TypeTinyBlob, tc.TypeBlob, tc.TypeMediumBlob, tc.TypeLongBlob:
		size := map[byte]string{tc.TypeTinyBlob: "TINY", tc.TypeBlob: "", tc.TypeMediumBlob: "MEDIUM", tc.TypeLongBlob: "LONG"}[ft.Tp]
		if binary {
			return size + "BLOB", nil
		}
		return str(size + "TEXT"), nil
	case tc.TypeDate:
		return "DATE", nil
	case tc.TypeDatetime:
		return fsp("DATETIME"), nil
	case tc.TypeTimestamp:
		return fsp("TIMESTAMP"), nil
	case tc.TypeDuration:
		return fsp("TIME"), nil
	case tc.TypeYear:
		return "YEAR", nil
	case tc.TypeBit:
		return fmt.Sprintf("BIT(%d)", max(ft.Flen, 1)), nil
	case tc.TypeEnum, tc.TypeSet:
		kind := "ENUM"
		if ft.Tp == tc.TypeSet {
			kind = "SET"
		}
		quoted := make([]string, len(ft.Elems))
		for i, e := range ft.Elems {
			quoted[i] = quoteString(e)
		}
		return str(kind + "(" + strings.Join(quoted, ",") + ")"), nil
	}
	return "", fmt.Errorf("column %s: type 0x%02x has no MySQL translation in this sink", c.Name.O, ft.Tp)
}

func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}

// columnDef is a column's definition in CREATE TABLE and ADD COLUMN. The
// default is TiDB's origin default when the column has one (what rows
// written before the column existed read as upstream), else its default
// for new rows.
func columnDef(c *tc.ColumnInfo) (string, error) {
	typ, err := columnType(c)
	if err != nil {
		return "", err
	}
	def := Quote(c.Name.O) + " " + typ
	if c.FieldType.Flag&tc.NotNullFlag != 0 {
		def += " NOT NULL"
	}
	if c.FieldType.Tp == tc.TypeTimestamp && c.FieldType.Flag&tc.NotNullFlag == 0 {
		def += " NULL" // MariaDB makes a bare TIMESTAMP NOT NULL DEFAULT now()
	}
	if d, ok := literalDefault(c); ok {
		def += " DEFAULT " + d
	}
	return def, nil
}

// literalDefault is a column's default as an SQL literal, when it is a
// plain value the sink can carry over.
func literalDefault(c *tc.ColumnInfo) (string, bool) {
	raw := c.OriginDefaultValue
	if tc.IsNullJSON(raw) {
		raw = c.DefaultValue
	}
	if tc.IsNullJSON(raw) || c.DefaultIsExpr {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	switch c.FieldType.Tp {
	case tc.TypeBit, tc.TypeJSON, tc.TypeTinyBlob, tc.TypeBlob, tc.TypeMediumBlob, tc.TypeLongBlob:
		return "", false
	}
	if strings.EqualFold(s, "CURRENT_TIMESTAMP") {
		return "", false
	}
	return quoteString(s), true
}

// publicColumns are a table's public columns in table order.
func publicColumns(info *tc.TableInfo) []*tc.ColumnInfo {
	var cols []*tc.ColumnInfo
	for _, c := range info.Columns {
		if c != nil && c.State == tc.StatePublic {
			cols = append(cols, c)
		}
	}
	sort.SliceStable(cols, func(i, j int) bool { return cols[i].Offset < cols[j].Offset })
	return cols
}

// publicIndexes are a table's public indexes, the primary one of a
// clustered table left out (it is the PRIMARY KEY).
func publicIndexes(info *tc.TableInfo) []*tc.IndexInfo {
	var out []*tc.IndexInfo
	for _, x := range info.Indices {
		if x != nil && x.State == tc.StatePublic && !(x.Primary && info.IsCommonHandle) {
			out = append(out, x)
		}
	}
	return out
}

// hasRowID: the table's rows are keyed by _tidb_rowid downstream.
func hasRowID(info *tc.TableInfo) bool { return !info.PKIsHandle && !info.IsCommonHandle }

func indexDef(x *tc.IndexInfo) string {
	kind := "INDEX "
	if x.Unique || x.Primary {
		kind = "UNIQUE INDEX "
	}
	return kind + Quote(indexName(x)) + " (" + indexColumns(x) + ")"
}

// NonClusteredPKName names the unique index that a non-clustered primary
// key becomes downstream (where _tidb_rowid is the primary key): MySQL
// keeps the name PRIMARY for the primary key.
const NonClusteredPKName = "tidb_nonclustered_pk"

// indexName is an index's name downstream.
func indexName(x *tc.IndexInfo) string {
	if x.Primary || x.Name.L == "primary" {
		return NonClusteredPKName
	}
	return x.Name.O
}

func indexColumns(x *tc.IndexInfo) string {
	parts := make([]string, len(x.Columns))
	for i, c := range x.Columns {
		parts[i] = Quote(c.Name.O)
		if c.Length != tc.UnspecifiedLength && c.Length > 0 {
			parts[i] += fmt.Sprintf("(%d)", c.Length)
		}
	}
	return strings.Join(parts, ", ")
}

// primaryKey is the downstream primary key's columns.
func primaryKey(info *tc.TableInfo) (string, error) {
	switch {
	case info.PKIsHandle:
		if h := info.HandleColumn(); h != nil {
			return Quote(h.Name.O), nil
		}
		return "", fmt.Errorf("table %s: pk_is_handle without a primary key column", info.Name.O)
	case info.IsCommonHandle:
		for _, x := range info.Indices {
			if x != nil && x.Primary {
				return indexColumns(x), nil
			}
		}
		return "", fmt.Errorf("table %s: clustered without a primary index", info.Name.O)
	}
	return Quote(RowIDColumn), nil
}

// CreateTableSQL is the MySQL CREATE TABLE of a TiDB table, generated from
// its TableInfo (not from TiDB's statement text, whose dialect differs).
func CreateTableSQL(db string, info *tc.TableInfo) (string, error) {
	var parts []string
	for _, c := range publicColumns(info) {
		def, err := columnDef(c)
		if err != nil {
			return "", fmt.Errorf("table %s.%s: %w", db, info.Name.O, err)
		}
		parts = append(parts, def)
	}
	if hasRowID(info) {
		parts = append(parts, Quote(RowIDColumn)+" BIGINT NOT NULL")
	}
	pk, err := primaryKey(info)
	if err != nil {
		return "", err
	}
	parts = append(parts, "PRIMARY KEY ("+pk+")")
	for _, x := range publicIndexes(info) {
		parts = append(parts, indexDef(x))
	}
	return "CREATE TABLE IF NOT EXISTS " + QualifiedName(db, info.Name.O) + " (\n  " + strings.Join(parts, ",\n  ") + "\n)", nil
}
