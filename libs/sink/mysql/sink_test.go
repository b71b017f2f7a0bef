package mysqlsink

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/client"
	"github.com/tistream/tistream/libs/sink/mysql/mysqltest"
	tc "github.com/tistream/tistream/libs/tidbcodec"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

func build(t testing.TB, b *tc.TableBuilder) *tc.TableInfo {
	info, err := b.Build()
	require.NoError(t, err)
	return info
}

func clone(t testing.TB, info *tc.TableInfo) *tc.TableInfo {
	b, err := json.Marshal(info)
	require.NoError(t, err)
	out := &tc.TableInfo{}
	require.NoError(t, json.Unmarshal(b, out))
	return out
}

// scenario is a history with every DDL kind the sink applies, on databases
// named p+"a", p+"b", p+"c".
func scenario(t testing.TB, p string) *upstream {
	u := newUpstream(t)
	a, b, c := p+"a", p+"b", p+"c"
	t1 := build(t, tc.NewTableBuilder(101, "t1").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)).
		Column("k", tc.IntType(tc.TypeLong, false)).Column("c", tc.VarcharType(20)))
	norow := build(t, tc.NewTableBuilder(102, "norowid").Column("a", tc.IntType(tc.TypeLong, false)).
		Column("b", tc.VarcharType(10)).Index("ub", true, "b"))
	u.table(a, t1)
	u.table(a, norow)
	for i := int64(1); i <= 5; i++ {
		u.put(101, i, map[string]tc.Value{"k": tc.IntValue(i * 10), "c": tc.StringValue(fmt.Sprint("c", i))})
		u.put(102, 1000+i, map[string]tc.Value{"a": tc.IntValue(i), "b": tc.StringValue(fmt.Sprint("b", i))})
	}
	u.put(101, 2, map[string]tc.Value{"k": tc.IntValue(22), "c": tc.StringValue("c2bis")})
	u.del(102, 1001)
	u.resolved()

	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_CREATE_DATABASE, DbName: b, Query: "CREATE DATABASE " + b}, nil)
	t2 := build(t, tc.NewTableBuilder(103, "types").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, true)).
		Column("i8", tc.IntType(tc.TypeTiny, false)).Column("f", tc.FloatType()).Column("d", tc.DoubleType()).
		Column("dec", tc.DecimalType(12, 3)).Column("vb", tc.VarbinaryType(8)).Column("tx", tc.TextType()).
		Column("dt", tc.DateType()).Column("dtm", tc.DatetimeType(6)).Column("tsp", tc.TimestampType(0)).
		Column("tm", tc.TimeType(3)).Column("yr", tc.YearType()).Column("bt", tc.BitType(12)).
		Column("en", tc.EnumType("x", "y")).Column("st", tc.SetType("p", "q", "r")).Column("ch", tc.CharType(3)))
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_CREATE_TABLE, DbName: b, TableName: "types", TableId: 103, Query: "CREATE TABLE types (...)"}, t2)
	u.put(103, 1, map[string]tc.Value{"i8": tc.IntValue(-5), "f": tc.Float32Value(1.5), "d": tc.Float64Value(2.25),
		"dec": tc.DecimalValue(tc.MustDecimal("-12.345", 12, 3)), "vb": tc.BytesValue([]byte{0, 1, 0xff}), "tx": tc.StringValue("texte"),
		"dt": tc.TimeValue(tc.Time{Year: 2024, Month: 2, Day: 29}), "dtm": tc.TimeValue(tc.Time{Year: 2024, Month: 5, Day: 6, Hour: 7, Minute: 8, Second: 9, Microsecond: 123456}),
		"tsp": tc.TimeValue(tc.Time{Year: 2001, Month: 1, Day: 2, Hour: 3, Minute: 4, Second: 5}), "tm": tc.DurationValue(-(26*time.Hour + 5*time.Millisecond)),
		"yr": tc.IntValue(1999), "bt": tc.BitValue(0xabc), "en": tc.EnumValue(2), "st": tc.SetValue(0b101), "ch": tc.StringValue("ab")})
	u.put(103, 2, map[string]tc.Value{"i8": tc.NullValue()})
	u.resolved()

	// ADD COLUMN with an origin default: rows written before read as it.
	t1b := clone(t, t1)
	t1b.MaxColumnID++
	t1b.Columns = append(t1b.Columns, &tc.ColumnInfo{ID: t1b.MaxColumnID, Name: tc.NewCIStr("d"), Offset: 3, State: tc.StatePublic,
		Version: 2, OriginDefaultValue: json.RawMessage(`"7"`), DefaultValue: json.RawMessage(`"7"`),
		FieldType: tc.IntType(tc.TypeLong, false)})
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_ADD_COLUMN, DbName: a, TableName: "t1", TableId: 101, Query: "ALTER TABLE t1 ADD COLUMN d INT DEFAULT 7"}, t1b)
	u.put(101, 6, map[string]tc.Value{"k": tc.IntValue(60), "c": tc.StringValue("c6"), "d": tc.IntValue(66)})
	// ADD INDEX: not public yet (no job), then public.
	t1c := clone(t, t1b)
	t1c.MaxIndexID++
	t1c.Indices = append(t1c.Indices, &tc.IndexInfo{ID: t1c.MaxIndexID, Name: tc.NewCIStr("idx_k"), State: tc.StateWriteReorganization,
		Tp: tc.IndexTypeBtree, Columns: []*tc.IndexColumn{{Name: tc.NewCIStr("k"), Offset: 1, Length: tc.UnspecifiedLength}}})
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_ALTER_TABLE, DbName: a, TableName: "t1", TableId: 101}, t1c)
	t1d := clone(t, t1c)
	t1d.Indices[len(t1d.Indices)-1].State = tc.StatePublic
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_ADD_INDEX, DbName: a, TableName: "t1", TableId: 101, Query: "ALTER TABLE t1 ADD INDEX idx_k(k)"}, t1d)
	// DROP COLUMN: write-only first (no longer public), then gone.
	t1e := clone(t, t1d)
	t1e.Columns[2].State = tc.StateWriteOnly
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_ALTER_TABLE, DbName: a, TableName: "t1", TableId: 101}, t1e)
	t1f := clone(t, t1e)
	t1f.Columns = append(t1f.Columns[:2], t1f.Columns[3:]...)
	t1f.Columns[2].Offset = 2
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_DROP_COLUMN, DbName: a, TableName: "t1", TableId: 101, Query: "ALTER TABLE t1 DROP COLUMN c"}, t1f)
	// MODIFY COLUMN k INT -> BIGINT.
	t1g := clone(t, t1f)
	t1g.Columns[1].FieldType = tc.IntType(tc.TypeLonglong, false)
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_MODIFY_COLUMN, DbName: a, TableName: "t1", TableId: 101, Query: "ALTER TABLE t1 MODIFY k BIGINT"}, t1g)
	u.put(101, 7, map[string]tc.Value{"k": tc.IntValue(1 << 40), "d": tc.IntValue(77)})
	u.resolved()

	// RENAME to the other database, then rows there.
	t1h := clone(t, t1g)
	t1h.Name = tc.NewCIStr("t1_moved")
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_RENAME_TABLE, DbName: b, TableName: "t1_moved", TableId: 101, OldDbName: a, OldTableName: "t1",
		Query: "RENAME TABLE " + a + ".t1 TO " + b + ".t1_moved"}, t1h)
	u.put(101, 8, map[string]tc.Value{"k": tc.IntValue(80), "d": tc.IntValue(88)})
	u.del(101, 1)
	// TRUNCATE: a new table id; the old rows go.
	norow2 := clone(t, norow)
	norow2.ID = 104
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_TRUNCATE_TABLE, DbName: a, TableName: "norowid", TableId: 104, OldTableId: 102,
		Query: "TRUNCATE TABLE norowid"}, norow2)
	u.put(104, 1, map[string]tc.Value{"a": tc.IntValue(100), "b": tc.StringValue("fresh")})
	u.resolved()

	// A database with a table, then dropped whole; a table dropped.
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_CREATE_DATABASE, DbName: c, Query: "CREATE DATABASE " + c}, nil)
	t3 := build(t, tc.NewTableBuilder(105, "doomed").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)))
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_CREATE_TABLE, DbName: c, TableName: "doomed", TableId: 105, Query: "CREATE TABLE doomed (id BIGINT PRIMARY KEY)"}, t3)
	u.put(105, 1, nil)
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_DROP_TABLE, DbName: b, TableName: "types", TableId: 103, Query: "DROP TABLE types"}, nil)
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_DROP_DATABASE, DbName: c, Query: "DROP DATABASE " + c}, nil)
	u.resolved()
	return u
}

// dump is every table of the scenario's databases downstream: columns,
// indexes and rows, in a stable order.
func dump(t testing.TB, db *sql.DB, p string) string {
	var out strings.Builder
	rows, err := db.Query("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA LIKE ? ORDER BY 1, 2", p+"%")
	require.NoError(t, err)
	var tables [][2]string
	for rows.Next() {
		var s, n string
		require.NoError(t, rows.Scan(&s, &n))
		tables = append(tables, [2]string{s, n})
	}
	require.NoError(t, rows.Err())
	rows.Close()
	for _, tb := range tables {
		var name, create string
		require.NoError(t, db.QueryRow("SHOW CREATE TABLE "+QualifiedName(tb[0], tb[1])).Scan(&name, &create))
		fmt.Fprintf(&out, "%s.%s\n%s\n", tb[0], tb[1], create)
		r, err := db.Query("SELECT * FROM " + QualifiedName(tb[0], tb[1]) + " ORDER BY 1")
		require.NoError(t, err)
		cols, _ := r.Columns()
		for r.Next() {
			vals := make([]sql.RawBytes, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, r.Scan(ptrs...))
			for i, v := range vals {
				if v == nil {
					fmt.Fprintf(&out, "%s=NULL ", cols[i])
				} else {
					fmt.Fprintf(&out, "%s=%q ", cols[i], v)
				}
			}
			out.WriteString("\n")
		}
		require.NoError(t, r.Err())
		r.Close()
	}
	return out.String()
}

// runSink runs a sink of tenant 1 until it has applied resolved ts until
// (or fails), and returns its error.
func runSink(t testing.TB, addr, dsn, id string, until uint64, stopAfter int, tune ...func(*Config)) error {
	db, err := Open(dsn)
	require.NoError(t, err)
	defer db.Close()
	cli, err := client.Dial(addr, client.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer cli.Close()
	cfg := DefaultConfig()
	cfg.API, cfg.Tenant, cfg.DSN, cfg.ID, cfg.MaxBatchRows, cfg.SyncpointInterval = addr, 1, dsn, id, 2, time.Millisecond
	for _, f := range tune {
		f(&cfg)
	}
	s, err := New(cfg, db, cli, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), io.Discard)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.stopAfter, s.stopAt, s.cancel = stopAfter, until, cancel
	return s.Run(ctx)
}

func lastResolved(u *upstream) uint64 {
	for i := len(u.events) - 1; i >= 0; i-- {
		if r := u.events[i].GetResolved(); r != nil {
			return r.Ts
		}
	}
	return 0
}

// TestSinkAppliesEveryDDLKind runs the scenario into MariaDB and checks the
// tables and rows against what the history says, the checkpoint and the
// syncpoints.
func TestSinkAppliesEveryDDLKind(t *testing.T) {
	srv := mysqltest.Start(t)
	u := scenario(t, "s1_")
	addr, _ := serveFake(t, u)
	require.NoError(t, runSink(t, addr, srv.DSN, "s1", lastResolved(u), 0))
	db := srv.Open(t, "")
	got := dump(t, db, "s1_")
	for _, want := range []string{
		// t1 moved to s1_b with k BIGINT, c dropped, d added (default 7 for old rows), idx_k.
		"s1_b.t1_moved\n", "`k` bigint(20)", "`d` int(11) DEFAULT 7", "KEY `idx_k` (`k`)",
		"id=\"2\" k=\"22\" d=\"7\" \n", "id=\"6\" k=\"60\" d=\"66\" \n", "id=\"7\" k=\"1099511627776\" d=\"77\" \n", "id=\"8\" k=\"80\" d=\"88\" \n",
		// norowid truncated: only the row after it, under its hidden row id.
		"s1_a.norowid\n", "`_tidb_rowid` bigint(20) NOT NULL", "UNIQUE KEY `ub` (`b`)", "a=\"100\" b=\"fresh\" _tidb_rowid=\"1\" \n",
	} {
		require.Contains(t, got, want)
	}
	require.NotContains(t, got, "id=\"1\" k=", "row 1 of t1 was deleted")
	require.NotContains(t, got, "`c` varchar", "column c was dropped")
	require.NotContains(t, got, "s1_b.types", "types was dropped")
	require.NotContains(t, got, "s1_c", "database c was dropped")
	require.NotContains(t, got, "s1_a.t1\n", "t1 was renamed")
	cp, err := ReadCheckpoint(context.Background(), db, "s1")
	require.NoError(t, err)
	require.Equal(t, lastResolved(u), cp)
	var syncs int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM tistream_sink.syncpoint WHERE sink_id = 's1'").Scan(&syncs))
	require.Equal(t, 5, syncs, "a syncpoint at every resolved ts (interval 1 ms)")
}

// TestSinkTypesRoundTrip: every value type lands as MySQL reads it.
func TestSinkTypesRoundTrip(t *testing.T) {
	srv := mysqltest.Start(t)
	u := scenario(t, "s2_")
	u.events = u.events[:firstDDL(u, apiv1.DDL_KIND_ADD_COLUMN)]
	u.resolved()
	addr, _ := serveFake(t, u)
	require.NoError(t, runSink(t, addr, srv.DSN, "s2", lastResolved(u), 0))
	got := dump(t, srv.Open(t, ""), "s2_b")
	require.Contains(t, got, `id="1" i8="-5" f="1.5" d="2.25" dec="-12.345" vb="\x00\x01\xff" tx="texte" dt="2024-02-29" dtm="2024-05-06 07:08:09.123456" tsp="2001-01-02 03:04:05" tm="-26:00:00.005" yr="1999" bt="\n\xbc" en="y" st="p,r" ch="ab"`)
	require.Contains(t, got, `id="2" i8=NULL f=NULL`)
}

func firstDDL(u *upstream, k apiv1.DDL_Kind) int {
	for i, ev := range u.events {
		if d := ev.GetDdl(); d != nil && d.Kind == k {
			return i
		}
	}
	return len(u.events)
}

// TestSinkRestartsExactlyOnce stops the sink after every number of events
// (between rows of a batch, after a DDL, before a checkpoint) and starts
// it again: the result equals an uninterrupted run's.
func TestSinkRestartsExactlyOnce(t *testing.T) {
	srv := mysqltest.Start(t)
	db := srv.Open(t, "")
	clean := scenario(t, "q0z_")
	addr, _ := serveFake(t, clean)
	require.NoError(t, runSink(t, addr, srv.DSN, "clean", lastResolved(clean), 0))
	want := dump(t, db, "q0z_")
	for _, stop := range []int{1, 3, 5, 8, 13, 16, 19, 21, 24, 27, 30, 33, 36} {
		p := fmt.Sprintf("q%dz_", stop)
		u := scenario(t, p)
		addr, f := serveFake(t, u)
		id := "restart-" + p
		err := runSink(t, addr, srv.DSN, id, lastResolved(u), stop)
		require.True(t, err == nil || errors.Is(err, errStopped), "stop %d: %v", stop, err)
		require.NoError(t, runSink(t, addr, srv.DSN, id, lastResolved(u), 0), "stop %d", stop)
		require.Equal(t, strings.ReplaceAll(want, "q0z_", p), dump(t, db, p), "stopped after %d events", stop)
		f.mu.Lock()
		require.Len(t, f.pulls, 2)
		f.mu.Unlock()
	}
}

// TestSinkRefusesWhatItCannotTranslate: a DROP PARTITION stops the sink
// with an error naming the DDL, every change before it applied.
func TestSinkRefusesWhatItCannotTranslate(t *testing.T) {
	srv := mysqltest.Start(t)
	u := newUpstream(t)
	u.table("rf", build(t, tc.NewTableBuilder(201, "p").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false))))
	u.put(201, 1, nil)
	u.resolved()
	before := lastResolved(u)
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_DROP_PARTITION, DbName: "rf", TableName: "p", TableId: 201,
		Query: "ALTER TABLE p DROP PARTITION p0"}, build(t, tc.NewTableBuilder(201, "p").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false))))
	u.resolved()
	addr, _ := serveFake(t, u)
	err := runSink(t, addr, srv.DSN, "refuse", lastResolved(u), 0)
	var re *RefusedError
	require.ErrorAs(t, err, &re)
	require.ErrorContains(t, err, `cannot apply KIND_DROP_PARTITION of rf.p (table 201)`)
	require.ErrorContains(t, err, `"ALTER TABLE p DROP PARTITION p0"`)
	cp, err := ReadCheckpoint(context.Background(), srv.Open(t, ""), "refuse")
	require.NoError(t, err)
	require.Equal(t, before, cp)

	// A JSON column has no translation yet: refused at CREATE TABLE.
	info := build(t, tc.NewTableBuilder(202, "j").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)).Column("j", tc.JSONType()))
	_, err = CreateTableSQL("rf", info)
	require.ErrorContains(t, err, "column j: type 0xf5 has no MySQL translation")
}
