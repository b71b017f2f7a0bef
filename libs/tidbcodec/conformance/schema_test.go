package conformance

import (
	"encoding/json"
	"testing"

	"github.com/pingcap/tidb/pkg/ddl"
	"github.com/pingcap/tidb/pkg/meta/metabuild"
	"github.com/pingcap/tidb/pkg/meta/model"
	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/types"
	"github.com/stretchr/testify/require"

	tc "github.com/tistream/tistream/libs/tidbcodec"
)

const createTableSQL = `CREATE TABLE orders (
	id BIGINT PRIMARY KEY, a TINYINT, b SMALLINT UNSIGNED, c MEDIUMINT, d INT NOT NULL, e INT UNSIGNED,
	f FLOAT, g DOUBLE, h DECIMAL(10,2), i VARCHAR(64), j CHAR(3), k TEXT, l VARBINARY(16), m BLOB,
	n DATE, o DATETIME, p DATETIME(3), q TIMESTAMP(6), r TIME(2), s YEAR, u BIT(8), v JSON,
	w ENUM('x','yy'), x SET('a','bc','d'), y BINARY(4), z BIGINT UNSIGNED NOT NULL,
	KEY idx_i (i), UNIQUE KEY uk (d, e), UNIQUE KEY uj (j), KEY multi (z, a))`

// ourOrders builds the same table with our builder.
func ourOrders(t *testing.T) *tc.TableInfo {
	tbl, err := tc.NewTableBuilder(77, "orders").
		IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)).
		Column("a", tc.IntType(tc.TypeTiny, false)).
		Column("b", tc.IntType(tc.TypeShort, true)).
		Column("c", tc.IntType(tc.TypeInt24, false)).
		NotNullColumn("d", tc.IntType(tc.TypeLong, false)).
		Column("e", tc.IntType(tc.TypeLong, true)).
		Column("f", tc.FloatType()).
		Column("g", tc.DoubleType()).
		Column("h", tc.DecimalType(10, 2)).
		Column("i", tc.VarcharType(64)).
		Column("j", tc.CharType(3)).
		Column("k", tc.TextType()).
		Column("l", tc.VarbinaryType(16)).
		Column("m", tc.BlobType()).
		Column("n", tc.DateType()).
		Column("o", tc.DatetimeType(0)).
		Column("p", tc.DatetimeType(3)).
		Column("q", tc.TimestampType(6)).
		Column("r", tc.TimeType(2)).
		Column("s", tc.YearType()).
		Column("u", tc.BitType(8)).
		Column("v", tc.JSONType()).
		Column("w", tc.EnumType("x", "yy")).
		Column("x", tc.SetType("a", "bc", "d")).
		Column("y", tc.BinaryType(4)).
		NotNullColumn("z", tc.IntType(tc.TypeLonglong, true)).
		Index("idx_i", false, "i").
		Index("uk", true, "d", "e").
		Index("uj", true, "j").
		Index("multi", false, "z", "a").
		Build()
	require.NoError(t, err)
	tbl.UpdateTS = 4242
	return tbl
}

// TestBuilderMatchesTiDBDDL builds the table with TiDB's own DDL code from
// CREATE TABLE, applies what the create-table job does before storing it
// (id, public state, update timestamp) and compares the stored JSON.
func TestBuilderMatchesTiDBDDL(t *testing.T) {
	stmt, err := parser.New().ParseOneStmt(createTableSQL, "", "")
	require.NoError(t, err)
	theirs, err := ddl.BuildTableInfoFromAST(metabuild.NewContext(), stmt.(*ast.CreateTableStmt))
	require.NoError(t, err)
	theirs.ID, theirs.State, theirs.UpdateTS = 77, model.StatePublic, 4242
	want, err := json.Marshal(theirs)
	require.NoError(t, err)
	got, err := json.Marshal(ourOrders(t))
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(got))
	require.Equal(t, string(want), string(got))
}

func TestDBInfoMatchesTiDB(t *testing.T) {
	theirs := &model.DBInfo{ID: 12, Name: ast.NewCIStr("Shop"), Charset: "utf8mb4", Collate: "utf8mb4_bin", State: model.StatePublic}
	want, err := json.Marshal(theirs)
	require.NoError(t, err)
	got, err := json.Marshal(tc.NewDBInfo(12, "Shop"))
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))

	theirs.PlacementPolicyRef = &model.PolicyRefInfo{ID: 3, Name: ast.NewCIStr("p1")}
	want, err = json.Marshal(theirs)
	require.NoError(t, err)
	var ours tc.DBInfo
	require.NoError(t, json.Unmarshal(want, &ours))
	again, err := json.Marshal(&ours)
	require.NoError(t, err)
	require.Equal(t, string(want), string(again))
	var back model.DBInfo
	require.NoError(t, json.Unmarshal(again, &back))
	require.Equal(t, theirs.PlacementPolicyRef, back.PlacementPolicyRef)
	require.Equal(t, theirs.Name, back.Name)
}

// richTiDBTable sets the sub-structures we keep opaque, so their bytes must
// survive a trip through our structs.
func richTiDBTable() *model.TableInfo {
	ft := types.NewFieldType(mysql.TypeVarchar)
	ft.SetFlen(32)
	ft.SetCharset("utf8mb4")
	ft.SetCollate("utf8mb4_general_ci")
	changing := types.NewFieldType(mysql.TypeLonglong)
	enum := types.NewFieldType(mysql.TypeEnum)
	enum.SetElems([]string{"a<b", "c&d"})
	enum.SetElemWithIsBinaryLit(1, "c&d", true)
	col := &model.ColumnInfo{
		ID: 1, Name: ast.NewCIStr("Name"), Offset: 0, FieldType: *ft,
		OriginDefaultValue: "abc", DefaultValue: "x", DefaultValueBit: []byte{1, 2},
		GeneratedExprString: "lower(`b`)", Dependences: map[string]struct{}{"b": {}},
		ChangingFieldType: changing, ChangeStateInfo: &model.ChangeStateInfo{DependencyColumnOffset: 1},
		State: model.StatePublic, Comment: "c", Hidden: true, Version: model.CurrLatestColumnInfoVersion,
	}
	col2 := &model.ColumnInfo{ID: 2, Name: ast.NewCIStr("b"), Offset: 1, FieldType: *enum, State: model.StatePublic}
	return &model.TableInfo{
		ID: 90, Name: ast.NewCIStr("Rich"), Charset: "utf8mb4", Collate: "utf8mb4_bin",
		Columns: []*model.ColumnInfo{col, col2},
		Indices: []*model.IndexInfo{{
			ID: 1, Name: ast.NewCIStr("i"), Table: ast.NewCIStr("Rich"), State: model.StatePublic, Tp: ast.IndexTypeHash,
			Columns:      []*model.IndexColumn{{Name: ast.NewCIStr("Name"), Offset: 0, Length: 4}},
			AffectColumn: []*model.IndexColumn{{Name: ast.NewCIStr("b"), Offset: 1, Length: -1, UseChangingType: true}},
			VectorInfo:   &model.VectorIndexInfo{Dimension: 3},
		}},
		ForeignKeys:    []*model.FKInfo{{ID: 1, Name: ast.NewCIStr("fk"), RefTable: ast.NewCIStr("other")}},
		Constraints:    []*model.ConstraintInfo{{ID: 1, Name: ast.NewCIStr("ck"), ExprString: "`a` > 0"}},
		State:          model.StatePublic,
		IsCommonHandle: true, CommonHandleVersion: 1, AutoIncIDExtra: 5, AutoIDSchemaID: 3, ShardRowIDBits: 4,
		Partition: &model.PartitionInfo{Type: ast.PartitionTypeRange, Expr: "`id`", Enable: true, Num: 2,
			Definitions: []model.PartitionDefinition{{ID: 91, Name: ast.NewCIStr("p0"), LessThan: []string{"10"}}, {ID: 92, Name: ast.NewCIStr("p1"), LessThan: []string{"MAXVALUE"}}}},
		TiFlashReplica:       &model.TiFlashReplicaInfo{Count: 1, Available: true},
		PlacementPolicyRef:   &model.PolicyRefInfo{ID: 2, Name: ast.NewCIStr("pp")},
		TTLInfo:              &model.TTLInfo{ColumnName: ast.NewCIStr("Name"), IntervalExprStr: "1", IntervalTimeUnit: 1, Enable: true, JobInterval: "1h"},
		Lock:                 &model.TableLockInfo{Tp: ast.TableLockRead},
		IsActiveActive:       true,
		SoftdeleteInfo:       &model.SoftdeleteInfo{},
		Revision:             9,
		Mode:                 model.TableModeImport,
		TempTableType:        model.TempTableGlobal,
		TableCacheStatusType: model.TableCacheStatusEnable,
		Version:              model.CurrLatestTableInfoVersion,
	}
}

// TestTableJSONBothWays: TiDB's JSON decodes into ours and re-encodes to
// the same bytes; ours decodes in TiDB to the same values.
func TestTableJSONBothWays(t *testing.T) {
	for _, theirs := range []*model.TableInfo{richTiDBTable(), mustDDLTable(t)} {
		want, err := json.Marshal(theirs)
		require.NoError(t, err)
		var ours tc.TableInfo
		require.NoError(t, json.Unmarshal(want, &ours))
		got, err := json.Marshal(&ours)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))

		// Field by field, for what we model.
		require.Equal(t, theirs.ID, ours.ID)
		require.Equal(t, theirs.Name.O, ours.Name.O)
		require.Equal(t, theirs.PKIsHandle, ours.PKIsHandle)
		require.Equal(t, theirs.IsCommonHandle, ours.IsCommonHandle)
		require.Len(t, ours.Columns, len(theirs.Columns))
		for i, c := range theirs.Columns {
			o := ours.Columns[i]
			require.Equal(t, [3]int64{c.ID, int64(c.Offset), int64(c.State)}, [3]int64{o.ID, int64(o.Offset), int64(o.State)})
			require.Equal(t, c.GetType(), o.FieldType.Tp)
			require.Equal(t, c.GetFlag(), o.FieldType.Flag)
			require.Equal(t, c.GetFlen(), o.FieldType.Flen)
			require.Equal(t, c.GetDecimal(), o.FieldType.Decimal)
			require.Equal(t, c.GetCollate(), o.FieldType.Collate)
			require.Equal(t, c.GetElems(), o.FieldType.Elems)
		}
		for i, ix := range theirs.Indices {
			require.Equal(t, ix.ID, ours.Indices[i].ID)
			require.Equal(t, ix.Unique, ours.Indices[i].Unique)
			require.Len(t, ours.Indices[i].Columns, len(ix.Columns))
		}
		ids, err := ours.PhysicalIDs()
		require.NoError(t, err)
		if theirs.Partition != nil {
			require.Equal(t, []int64{91, 92}, ids)
		} else {
			require.Equal(t, []int64{theirs.ID}, ids)
		}

		// TiDB reads ours back to the same table.
		var back model.TableInfo
		require.NoError(t, json.Unmarshal(got, &back))
		again, err := json.Marshal(&back)
		require.NoError(t, err)
		require.Equal(t, string(want), string(again))
	}
}

func mustDDLTable(t *testing.T) *model.TableInfo {
	stmt, err := parser.New().ParseOneStmt(createTableSQL, "", "")
	require.NoError(t, err)
	tbl, err := ddl.BuildTableInfoFromAST(metabuild.NewContext(), stmt.(*ast.CreateTableStmt))
	require.NoError(t, err)
	return tbl
}

func TestHandleColumn(t *testing.T) {
	tbl := ourOrders(t)
	require.Equal(t, "id", tbl.HandleColumn().Name.O)
	var theirs model.TableInfo
	b, err := json.Marshal(tbl)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &theirs))
	require.Equal(t, theirs.GetPkColInfo().ID, tbl.HandleColumn().ID)
}
