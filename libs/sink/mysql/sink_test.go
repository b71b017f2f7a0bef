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
	u.put(103, 3, map[string]tc.Value{"vb": tc.BytesValue([]byte{}), "tx": tc.StringValue("")}) // empty, not NULL
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
	require.Contains(t, got, `id="3" i8=NULL f=NULL d=NULL dec=NULL vb="" tx="" dt=NULL`)
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

// TestSinkPassesTiDBSystemDatabases: a tenant pull of a real TiDB carries
// TiDB's own database mysql (users, statistics, DDL job queues; tables
// with JSON columns the sink cannot translate). The sink replicates the
// other databases and passes mysql's tables, their rows and their DDLs.
func TestSinkPassesTiDBSystemDatabases(t *testing.T) {
	srv := mysqltest.Start(t)
	u := newUpstream(t)
	jsonTable := func(id int64, name string) *tc.TableInfo {
		return build(t, tc.NewTableBuilder(id, name).IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)).Column("j", tc.JSONType()))
	}
	u.table("mysql", jsonTable(301, "tidb_sys_a"))
	u.table("sysdb_a", build(t, tc.NewTableBuilder(302, "t").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)).
		Column("v", tc.IntType(tc.TypeLong, false))))
	u.put(301, 1, map[string]tc.Value{"j": tc.NullValue()})
	u.put(302, 1, map[string]tc.Value{"v": tc.IntValue(10)})
	u.resolved()
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_CREATE_TABLE, DbName: "mysql", TableName: "tidb_sys_b", TableId: 303,
		Query: "CREATE TABLE mysql.tidb_sys_b (id BIGINT PRIMARY KEY, j JSON)"}, jsonTable(303, "tidb_sys_b"))
	u.put(303, 1, map[string]tc.Value{"j": tc.NullValue()})
	u.put(302, 2, map[string]tc.Value{"v": tc.IntValue(20)})
	u.put(301, 2, map[string]tc.Value{"j": tc.NullValue()})
	u.resolved()
	addr, _ := serveFake(t, u)
	require.NoError(t, runSink(t, addr, srv.DSN, "sys", lastResolved(u), 0))
	db := srv.Open(t, "")
	require.Equal(t, "sysdb_a.t\n", dump(t, db, "sysdb_a")[:len("sysdb_a.t\n")])
	var n int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM sysdb_a.t").Scan(&n))
	require.Equal(t, 2, n)
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME LIKE 'tidb_sys_%'").Scan(&n))
	require.Zero(t, n, "tables of TiDB's mysql database were created downstream")
	cp, err := ReadCheckpoint(context.Background(), db, "sys")
	require.NoError(t, err)
	require.Equal(t, lastResolved(u), cp)

	cfg := DefaultConfig()
	cfg.API, cfg.Tenant, cfg.DSN, cfg.DB = "x", 1, "y", "MySQL"
	require.ErrorContains(t, cfg.Validate(), "--db MySQL: TiDB's system databases are not replicated")
}

// TestSinkRefusesExchangePartition: EXCHANGE PARTITION moves rows between
// a partition and a table without a row event (TiDB swaps their ids), so
// a sink whose tables are not partitioned cannot follow it: refused,
// never applied as a no-op.
func TestSinkRefusesExchangePartition(t *testing.T) {
	srv := mysqltest.Start(t)
	u := newUpstream(t)
	p := build(t, tc.NewTableBuilder(501, "p").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)))
	u.table("xp", p)
	u.put(501, 1, nil)
	u.resolved()
	before := lastResolved(u)
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_ALTER_TABLE, DbName: "xp", TableName: "p", TableId: 501,
		JobType: int32(tc.ActionExchangeTablePartition), Query: "ALTER TABLE p EXCHANGE PARTITION p3 WITH TABLE px"}, clone(t, p))
	u.resolved()
	addr, _ := serveFake(t, u)
	err := runSink(t, addr, srv.DSN, "xp", lastResolved(u), 0)
	var re *RefusedError
	require.ErrorAs(t, err, &re)
	require.ErrorContains(t, err, `cannot apply KIND_ALTER_TABLE of xp.p (table 501)`)
	require.ErrorContains(t, err, "EXCHANGE PARTITION swaps the rows of a partition and a table without a row event")
	cp, err := ReadCheckpoint(context.Background(), srv.Open(t, ""), "xp")
	require.NoError(t, err)
	require.Equal(t, before, cp)
}

// TestSinkMarksItsPositionBeforeADDL: DDL statements are not
// transactional, so while one runs the checkpoint row must already say
// that the downstream is past its resolved ts (applied_ts = the DDL's
// commit ts, not resolved_ts), or a reader would take the half-changed
// downstream for the state at resolved_ts. The DDL commits at resolved
// ts + 1, as a real TiDB's may: the position at a resolved ts must not
// look like one before a DDL right after it. The test holds a metadata
// lock on the table, so the sink's ALTER TABLE waits, and reads the
// checkpoint meanwhile.
func TestSinkMarksItsPositionBeforeADDL(t *testing.T) {
	srv := mysqltest.Start(t)
	u := newUpstream(t)
	info := build(t, tc.NewTableBuilder(601, "t").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)).
		Column("v", tc.IntType(tc.TypeLong, false)))
	u.table("mk", info)
	u.put(601, 1, map[string]tc.Value{"v": tc.IntValue(1)})
	u.resolved()
	r1 := lastResolved(u)
	added := clone(t, info)
	added.MaxColumnID++
	added.Columns = append(added.Columns, &tc.ColumnInfo{ID: added.MaxColumnID, Name: tc.NewCIStr("w"), Offset: 2, State: tc.StatePublic,
		Version: 2, FieldType: tc.IntType(tc.TypeLong, false)})
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_ADD_COLUMN, DbName: "mk", TableName: "t", TableId: 601, Query: "ALTER TABLE t ADD COLUMN w INT"}, added)
	c := r1 + 1
	u.events[len(u.events)-1].GetDdl().CommitTs = c
	u.put(601, 2, map[string]tc.Value{"v": tc.IntValue(2), "w": tc.IntValue(22)})
	u.resolved()
	addr, _ := serveFake(t, u)

	db := srv.Open(t, "")
	q, err := CreateTableSQL("mk", info)
	require.NoError(t, err)
	_, err = db.Exec("CREATE DATABASE mk")
	require.NoError(t, err)
	_, err = db.Exec(q)
	require.NoError(t, err)
	holder, err := db.BeginTx(context.Background(), nil) // a shared metadata lock on mk.t until it ends
	require.NoError(t, err)
	var n int
	require.NoError(t, holder.QueryRow("SELECT COUNT(*) FROM mk.t").Scan(&n))

	done := make(chan error, 1)
	go func() { done <- runSink(t, addr, srv.DSN, "mk", lastResolved(u), 0) }()
	var resolved, applied uint64
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := db.QueryRow("SELECT resolved_ts, applied_ts FROM tistream_sink.checkpoint WHERE sink_id = 'mk'").Scan(&resolved, &applied)
		var waiting int
		require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'ALTER TABLE `mk`.`t`%' AND STATE LIKE '%metadata lock%'").Scan(&waiting))
		if err == nil && waiting > 0 {
			break // the sink's ALTER TABLE waits for the lock
		}
		require.True(t, time.Now().Before(deadline), "the sink's ALTER TABLE never waited for the metadata lock (checkpoint %d/%d)", resolved, applied)
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, db.QueryRow("SELECT resolved_ts, applied_ts FROM tistream_sink.checkpoint WHERE sink_id = 'mk'").Scan(&resolved, &applied))
	require.Equal(t, r1, resolved)
	require.Equal(t, c, applied, "while the DDL runs, the checkpoint says the downstream is past resolved ts %d", r1)
	require.NoError(t, holder.Commit())
	require.NoError(t, <-done)
	require.NoError(t, db.QueryRow("SELECT resolved_ts, applied_ts FROM tistream_sink.checkpoint WHERE sink_id = 'mk'").Scan(&resolved, &applied))
	require.Equal(t, lastResolved(u), resolved)
	require.Equal(t, resolved, applied, "at a resolved ts, the checkpoint says the downstream is exactly there")
	require.NoError(t, db.QueryRow("SELECT w FROM mk.t WHERE id = 2").Scan(&n))
	require.Equal(t, 22, n)
}

// TestSinkNonClusteredPrimaryKey: a table whose primary key is not
// clustered is keyed by _tidb_rowid downstream and keeps its primary key
// as a unique index, which MySQL does not let be named PRIMARY.
func TestSinkNonClusteredPrimaryKey(t *testing.T) {
	srv := mysqltest.Start(t)
	u := newUpstream(t)
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_CREATE_DATABASE, DbName: "ncpk", Query: "CREATE DATABASE ncpk"}, nil)
	info := build(t, tc.NewTableBuilder(701, "nc").Column("k", tc.VarcharType(20)).Column("v", tc.IntType(tc.TypeLong, false)).
		Index("PRIMARY", true, "k"))
	info.Indices[0].Primary = true
	u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_CREATE_TABLE, DbName: "ncpk", TableName: "nc", TableId: 701,
		Query: "CREATE TABLE nc (k VARCHAR(20) PRIMARY KEY NONCLUSTERED, v INT)"}, info)
	u.put(701, 1, map[string]tc.Value{"k": tc.StringValue("a"), "v": tc.IntValue(1)})
	u.put(701, 2, map[string]tc.Value{"k": tc.StringValue("b"), "v": tc.IntValue(2)})
	u.del(701, 1)
	u.resolved()
	addr, _ := serveFake(t, u)
	require.NoError(t, runSink(t, addr, srv.DSN, "ncpk", lastResolved(u), 0))
	got := dump(t, srv.Open(t, ""), "ncpk")
	require.Contains(t, got, "PRIMARY KEY (`_tidb_rowid`)")
	require.Contains(t, got, "UNIQUE KEY `"+NonClusteredPKName+"` (`k`)")
	require.Contains(t, got, "k=\"b\" v=\"2\" _tidb_rowid=\"2\" \n")
	require.NotContains(t, got, "k=\"a\"")
}

// TestSinkPassesRowsOfDroppedTables: on a store without delete-range
// (unistore), TiDB deletes a dropped table's rows in transactions of its
// own after the DROP. Those rows, of a table that no longer exists at
// their commit ts, must not bring the table back downstream — neither in
// the run that applied the DROP nor in a sink restarted after it, which
// has no schema for them.
func TestSinkPassesRowsOfDroppedTables(t *testing.T) {
	srv := mysqltest.Start(t)
	for _, stop := range []int{0, 6} { // 6: stopped at the resolved ts after the DROP, restarted from it
		t.Run(fmt.Sprint("stop-", stop), func(t *testing.T) {
			u := newUpstream(t)
			p := fmt.Sprintf("dr%d", stop)
			u.table(p, build(t, tc.NewTableBuilder(801, "keep").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false))))
			u.put(801, 1, nil)
			gone := build(t, tc.NewTableBuilder(802, "gone").IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)))
			u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_CREATE_TABLE, DbName: p, TableName: "gone", TableId: 802, Query: "CREATE TABLE gone (id BIGINT PRIMARY KEY)"}, gone)
			u.put(802, 1, nil)
			u.put(802, 2, nil)
			u.ddl(&apiv1.DDL{Kind: apiv1.DDL_KIND_DROP_TABLE, DbName: p, TableName: "gone", TableId: 802, Query: "DROP TABLE gone"}, nil)
			u.resolved()
			u.del(802, 1) // the delete-range emulator
			u.del(802, 2)
			u.put(801, 2, nil)
			u.resolved()
			addr, _ := serveFake(t, u)
			if stop > 0 {
				require.ErrorIs(t, runSink(t, addr, srv.DSN, p, lastResolved(u), stop), errStopped)
			}
			require.NoError(t, runSink(t, addr, srv.DSN, p, lastResolved(u), 0))
			got := dump(t, srv.Open(t, ""), p)
			require.NotContains(t, got, p+".gone", "the dropped table came back")
			require.Contains(t, got, "id=\"2\" \n")
		})
	}
}
