//go:build linux

package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"

	"github.com/tistream/tistream/libs/sink/mysql/mysqltest"
)

// sinkWorkloads are the TiDB workloads whose changes `tistream sink mysql`
// can apply (tistream-tidb's workload.SinkNames): ddl-sink stands in for
// ddl, whose DROP, TRUNCATE and EXCHANGE PARTITION the sink refuses.
var sinkWorkloads = []string{"bank", "ddl-sink", "types", "big", "long", "crash", "split", "sysbench"}

// TestTiDBUpstreamSinkMySQL is issue 9's check against a real upstream:
// an embedded TiDB's capture feeds a fleet of processes, `tistream sink
// mysql` applies the tenant to a real MariaDB while the workloads run
// (bank optimistic and pessimistic, DDL while DML runs, every column type
// the sink translates, a big transaction, a long one, clients dying
// between prewrite and commit, region splits, sysbench), and at several
// checkpoints of the sink during the run — before and after the sink is
// killed (-9) and restarted — and at the end, every database, table,
// column and row of MariaDB equals TiDB's own snapshot read at the
// checkpoint (@@tidb_snapshot), with the same sync_diff_inspector-style
// checksum on both servers. Then a table with a JSON column stops the sink
// with the refusal the docs name, nothing of it applied.
func TestTiDBUpstreamSinkMySQL(t *testing.T) {
	bin := tidbBin(t)
	maria := mysqltest.Start(t)
	duration := tidbDuration()
	tf := startTiDBFleet(t, bin, 1)
	f := tf.f
	tidb := openSQL(t, "root@tcp("+tf.mysqlAddr+")/")
	down := openSQL(t, maria.DSN)
	// The checkpoints are read at in TiDB's MVCC after the fact: keep
	// every version of the run (the default life time is 10 min).
	if _, err := tidb.Exec("SET GLOBAL tidb_gc_life_time = '2h'"); err != nil {
		t.Fatal(err)
	}

	httpAddr := freeAddr(t)
	sinkArgs := append([]string{"sink", "mysql", "--api", tf.api, "--tenant", "1", "--dsn", maria.DSN, "--http", httpAddr,
		"--max-batch-rows", "500", "--syncpoint-interval", "2s", "--progress-every", "2s"}, tf.cl.admin...)
	sink := start(t, "sink", sinkArgs...)
	waitCheckpoint(t, down, sink, 1, 2*time.Minute)

	report := filepath.Join(f.dir, "workload.json")
	wl := startTo(t, "workload", filepath.Join(f.dir, "workload.out"), bin, append([]string{"workload", "--mysql", tf.mysqlAddr,
		"--http", tf.httpURL, "--duration", duration.String(), "--long-txn", "10s", "--big-rows", "50000", "--report", report},
		sinkWorkloads...)...)

	// Points during the run: the sink's checkpoints while the workloads
	// write (or, on a slow machine, while the sink catches up with them);
	// the sink is killed after the first point past half the workloads'
	// duration, and restarted.
	cmp := &sinkCompare{tidb: tidb, down: down}
	wlStart := time.Now()
	time.Sleep(duration / 4) // the first point with the workloads' tables and rows
	var endTs uint64
	var firstMetrics string
	killed := false
	for mid := 0; ; {
		if endTs == 0 && !wl.running() {
			out, _ := os.ReadFile(filepath.Join(f.dir, "workload.out"))
			if wl.err != nil {
				t.Fatalf("workload: %v\n%s", wl.err, tail(out, 4096))
			}
			t.Logf("workload:\n%s", out)
			endTs = tf.tso(t) // everything the workloads committed is at or below it
		}
		if endTs != 0 && mid >= 3 {
			break
		}
		cp := cmp.point(t, sink)
		if endTs != 0 && cp >= endTs {
			t.Fatalf("only %d points before the sink caught up with the workloads' end", mid)
		}
		mid++
		if !killed && time.Since(wlStart) >= duration/2 {
			killed = true
			firstMetrics = metrics(t, httpAddr)
			before := checkpoint(t, down)
			_ = syscall.Kill(-sink.cmd.Process.Pid, syscall.SIGKILL)
			<-sink.exited
			t.Logf("killed the sink (-9) at checkpoint %d, in the middle of the workloads", before)
			sink = start(t, "sink-restarted", sinkArgs...)
			waitCheckpoint(t, down, sink, before+1, 2*time.Minute)
			if b, _ := os.ReadFile(sink.out); !strings.Contains(string(b), "sink resuming") {
				t.Fatalf("the restarted sink did not resume from its checkpoint:\n%s", tail(b, 2048))
			}
		}
		time.Sleep(time.Second)
	}

	// The end: everything the workloads committed, applied.
	waitCheckpoint(t, down, sink, endTs, 3*time.Minute)
	if cp := cmp.point(t, sink); cp < endTs {
		t.Fatalf("the last point %d is below the workloads' end %d", cp, endTs)
	}
	t.Logf("%d points compared; %d checkpoints passed over (TiDB's snapshot inside a DDL job there)", len(cmp.points), cmp.passed)
	if len(cmp.points) < 4 || !killed {
		t.Fatalf("%d points compared, want at least 3 during the run and one at the end; sink killed: %v", len(cmp.points), killed)
	}
	for _, name := range []string{"bank.accounts", "big.t", "types.t", "types.ck", "types.nc", "sinkddl.live", "sinkddl.nopk",
		"sinkddl.p", "sinkddl2.moved", "crash.t", "longtx.t", "sbtest.sbtest1"} {
		if !cmp.seen[name] {
			t.Errorf("table %s was never compared", name)
		}
	}
	last := metrics(t, httpAddr)
	t.Logf("the sink applied (first process until its kill, then the restarted one; rows re-applied after the restart count twice):\n%s\n%s",
		sinkApplied(firstMetrics), sinkApplied(last))

	// A type the sink cannot translate stops it before the DDL, with every
	// change below it applied: JSON.
	cp := checkpoint(t, down)
	if _, err := tidb.Exec("CREATE DATABASE refused"); err != nil {
		t.Fatal(err)
	}
	if _, err := tidb.Exec("CREATE TABLE refused.j (id BIGINT PRIMARY KEY, j JSON)"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sink.exited:
	case <-time.After(2 * time.Minute):
		t.Fatal("the sink did not stop at the JSON column")
	}
	b, _ := os.ReadFile(sink.out)
	m := regexp.MustCompile(`cannot apply KIND_CREATE_TABLE of refused\.j \(table \d+\) at commit ts (\d+), "CREATE TABLE refused.j \(id BIGINT PRIMARY KEY, j JSON\)": table refused\.j: column j: type 0xf5 has no MySQL translation in this sink`).
		FindSubmatch(b)
	if sink.err == nil || m == nil {
		t.Fatalf("the sink exited with %v, without the refusal of the JSON column:\n%s", sink.err, tail(b, 4096))
	}
	ddlTs, _ := strconv.ParseUint(string(m[1]), 10, 64)
	var resolved, applied uint64
	if err := down.QueryRow("SELECT resolved_ts, applied_ts FROM tistream_sink.checkpoint WHERE sink_id = 'tenant-1'").Scan(&resolved, &applied); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := down.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'refused'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if resolved < cp || resolved >= ddlTs || applied > ddlTs || n != 0 {
		t.Errorf("after the refusal of the DDL at %d: checkpoint %d (applied to %d), %d tables of database refused downstream; want the checkpoint below the DDL and no table",
			ddlTs, resolved, applied, n)
	}
	t.Logf("refused as documented: %s", m[0])
	tf.checkCapture(t)
}

// sinkApplied is what a sink's metrics say it applied.
func sinkApplied(m string) string {
	var out []string
	for _, l := range strings.Split(m, "\n") {
		for _, p := range []string{"tistream_sink_rows_total{", "tistream_sink_txns_total ", "tistream_sink_ddls_total{", "tistream_sink_rows_skipped_total{",
			"tistream_sink_flushes_total ", "tistream_sink_syncpoints_total "} {
			if strings.HasPrefix(l, p) {
				out = append(out, "  "+l)
			}
		}
	}
	return strings.Join(out, "\n")
}

// openSQL opens a MySQL-protocol server (TiDB or MariaDB) with sessions in
// UTC, so TIMESTAMP columns read alike on both.
func openSQL(t *testing.T, dsn string) *sql.DB {
	db, err := sql.Open("mysql", dsn+"?timeout=10s&time_zone=%27%2B00%3A00%27")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// sinkCompare compares the downstream with TiDB at the sink's checkpoints.
type sinkCompare struct {
	tidb, down *sql.DB
	points     []uint64
	passed     int // checkpoints passed over: inside a DDL job in TiDB
	seen       map[string]bool
}

// point freezes the sink (SIGSTOP) at a checkpoint where the downstream is
// exactly at a resolved ts R (applied_ts = resolved_ts: nothing after it
// applied — the sink moves its position before a DDL's statements run),
// reads every table
// downstream, lets the sink go on, and compares what it read with TiDB's
// snapshot at R: databases, tables, columns (names and types), the
// primary key (_tidb_rowid for tables without a clustered one), every row
// by key, and each server's own COUNT and BIT_XOR(CRC32(CONCAT_WS(...)))
// checksum. It returns R.
//
// A checkpoint inside a multi-step DDL job on a table (DROP TABLE goes
// public, write-only, delete-only, gone, each a schema version of its own;
// the change stream names the drop at the last one, as TiCDC does) is no
// point to compare at: TiDB's snapshot there lists the table but refuses
// to read it (ER_NO_SUCH_TABLE). Such a point is passed over for a later
// checkpoint of the sink, and said so.
func (c *sinkCompare) point(t *testing.T, sink *proc) uint64 {
	t.Helper()
	ctx := context.Background()
	var last uint64
	if len(c.points) > 0 {
		last = c.points[len(c.points)-1]
	}
	passed := last // the points passed over are above last
	deadline := time.Now().Add(2 * time.Minute)
	for ; ; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the sink never stood at a resolved ts above %d for a comparison (checkpoint %d)", last, checkpoint(t, c.down))
		}
		if !sink.running() {
			b, _ := os.ReadFile(sink.out)
			t.Fatalf("the sink exited: %v\n%s", sink.err, tail(b, 4096))
		}
		pgid := -sink.cmd.Process.Pid
		_ = syscall.Kill(pgid, syscall.SIGSTOP)
		got, r, ok := c.readFrozen(t, ctx, passed)
		_ = syscall.Kill(pgid, syscall.SIGCONT)
		if !ok {
			continue
		}
		start := time.Now()
		want, err := readSQLImage(t, ctx, c.tidb, r)
		if err != nil {
			t.Logf("TiDB's snapshot at the sink's checkpoint %d lists a table it does not read (%v): a DDL job on it is under way there; taking a later checkpoint", r, err)
			passed = r
			c.passed++
			continue
		}
		c.points = append(c.points, r)
		if c.seen == nil {
			c.seen = map[string]bool{}
		}
		tables, rows, diffs := compareImages(t, want, got)
		for name := range got.tables {
			c.seen[name] = true
		}
		t.Logf("point %d: the sink's checkpoint %d (%s behind): %d databases, %d tables, %d rows compared with TiDB's snapshot, %d differences (TiDB read in %s)",
			len(c.points), r, time.Since(time.UnixMilli(int64(r>>18))).Round(time.Millisecond), len(got.dbs), tables, rows, diffs,
			time.Since(start).Round(time.Millisecond))
		return r
	}
}

// readFrozen reads the downstream of a stopped sink: its position, every
// table, its position again (a COMMIT in flight when it stopped may land
// meanwhile). ok is false when the downstream is not at a resolved ts
// above last, or moved.
func (c *sinkCompare) readFrozen(t *testing.T, ctx context.Context, last uint64) (img *sqlImage, r uint64, ok bool) {
	pos := func() [3]uint64 {
		var p [3]uint64
		err := c.down.QueryRowContext(ctx, "SELECT resolved_ts, applied_ts, applied_ddls FROM tistream_sink.checkpoint WHERE sink_id = 'tenant-1'").
			Scan(&p[0], &p[1], &p[2])
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := pos()
	if p[0] <= last || p[1] != p[0] || p[2] != 0 {
		return nil, 0, false
	}
	img, err := readSQLImage(t, ctx, c.down, 0)
	if pos() != p {
		return nil, 0, false // a statement in flight when the sink stopped landed meanwhile
	}
	if err != nil {
		t.Fatalf("the downstream at a position that did not move (%v): %v", p, err)
	}
	if tb := img.tables["bank.accounts"]; tb != nil {
		var sum int64
		if err := c.down.QueryRowContext(ctx, "SELECT COALESCE(SUM(balance), 0) FROM bank.accounts").Scan(&sum); err != nil {
			t.Fatal(err)
		}
		if len(tb.rows) > 0 && sum != 200*1000 {
			t.Errorf("at %d the bank's balances sum to %d downstream, want 200000", p[0], sum)
		}
	}
	return img, p[0], true
}

// sqlImage is the user databases of a server: TiDB at a snapshot, or the
// sink's downstream.
type sqlImage struct {
	dbs    []string
	tables map[string]*sqlTable // db.table
}

type sqlTable struct {
	cols  []string // name type, in order (without _tidb_rowid)
	names []string // the columns read: cols' names, then _tidb_rowid if rowid
	key   []string // the primary key's columns
	rowid bool     // rows are keyed by _tidb_rowid
	rows  map[string][]string
	count int
	crc   uint64
	// ownCRC is the checksum of the rows as read, computed here the way the
	// server computes crc: when the servers' checksums differ and the rows
	// do not, it says whose checksum disagrees with its own rows. It equals
	// crc for tables whose values read as the text CONCAT_WS joins (every
	// table of the workload but types.t, whose binary and bit columns
	// convert otherwise).
	ownCRC uint64
}

// systemSchemas are left out on both sides: TiDB's own (the sink does not
// replicate them), MariaDB's own, the sink's checkpoint database.
var systemSchemas = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "metrics_schema": true,
	"sys": true, "tistream_sink": true}

// errListedNotRead: a table the server listed refused to be read
// (ER_NO_SUCH_TABLE): dropped meanwhile, or, in a TiDB snapshot, inside a
// DDL job on it.
var errListedNotRead = errors.New("listed, not read")

// readSQLImage reads every user table of a server, at snapshot ts (TiDB's
// @@tidb_snapshot) unless ts is 0. The only error it returns wraps
// errListedNotRead; others fail the test.
func readSQLImage(t *testing.T, ctx context.Context, db *sql.DB, ts uint64) (*sqlImage, error) {
	t.Helper()
	noTable := func(err error) bool {
		var me *mysqldriver.MySQLError
		return errors.As(err, &me) && me.Number == 1146
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ts != 0 {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET @@tidb_snapshot = '%d'", ts)); err != nil {
			t.Fatal(err)
		}
		defer func() { _, _ = conn.ExecContext(ctx, "SET @@tidb_snapshot = ''") }()
	}
	query := func(q string, args ...any) [][]string {
		rows, err := conn.QueryContext(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var out [][]string
		for _, r := range scanRows(t, rows) {
			row := make([]string, len(r))
			for i, v := range r {
				row[i] = v.String
			}
			out = append(out, row)
		}
		return out
	}
	img := &sqlImage{tables: map[string]*sqlTable{}}
	for _, r := range query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA") {
		if !systemSchemas[strings.ToLower(r[0])] {
			img.dbs = append(img.dbs, r[0])
		}
	}
	slices.Sort(img.dbs)
	for _, r := range query("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE'") {
		if systemSchemas[strings.ToLower(r[0])] {
			continue
		}
		tb := &sqlTable{rows: map[string][]string{}}
		var exprs, names []string
		for _, c := range query("SELECT COLUMN_NAME, COLUMN_TYPE, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", r[0], r[1]) {
			if c[0] == "_tidb_rowid" { // the sink's hidden key
				tb.rowid = true
				continue
			}
			tb.cols = append(tb.cols, c[0]+" "+c[1])
			names = append(names, c[0])
			if c[2] == "float" {
				// MariaDB writes a FLOAT with 6 digits, TiDB with all: as
				// a DOUBLE both write the same value alike.
				exprs = append(exprs, "(`"+c[0]+"`+0e0)")
			} else {
				exprs = append(exprs, "`"+c[0]+"`")
			}
		}
		for _, k := range query("SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION", r[0], r[1]) {
			tb.key = append(tb.key, k[0])
		}
		if ts != 0 { // TiDB: is the table keyed by _tidb_rowid?
			pk := query("SELECT TIDB_PK_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", r[0], r[1])
			if len(pk) == 1 && pk[0][0] == "NONCLUSTERED" {
				tb.rowid, tb.key = true, []string{"_tidb_rowid"}
			}
		}
		if tb.rowid {
			exprs, names = append(exprs, "`_tidb_rowid`"), append(names, "_tidb_rowid")
		}
		tb.names = names
		name := r[0] + "." + r[1]
		from := "`" + r[0] + "`.`" + r[1] + "`"
		keyAt := make([]int, len(tb.key))
		for i, k := range tb.key {
			keyAt[i] = slices.Index(names, k)
			if keyAt[i] < 0 {
				t.Fatalf("%s: primary key column %s is not among its columns %v", name, k, names)
			}
		}
		rows, err := conn.QueryContext(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+from)
		if noTable(err) {
			return nil, fmt.Errorf("%s: %w: %v", name, errListedNotRead, err)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		vals := make([]sql.RawBytes, len(exprs))
		ptrs := make([]any, len(exprs))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			parts := make([]string, len(vals))
			var text []string // what CONCAT_WS joins: the values not NULL
			for i, v := range vals {
				parts[i] = "NULL"
				if v != nil {
					parts[i] = strconv.Quote(string(v))
					text = append(text, string(v))
				}
			}
			tb.ownCRC ^= uint64(crc32.ChecksumIEEE([]byte(strings.Join(text, ","))))
			key := make([]string, len(keyAt))
			for i, at := range keyAt {
				key[i] = parts[at]
			}
			k := strings.Join(key, ",")
			if _, dup := tb.rows[k]; dup {
				t.Errorf("%s: key %s twice", name, k)
			}
			tb.rows[k] = parts
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rows.Close()
		if err := conn.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(BIT_XOR(CRC32(CONCAT_WS(',', "+strings.Join(exprs, ", ")+"))), 0) FROM "+from).
			Scan(&tb.count, &tb.crc); noTable(err) {
			return nil, fmt.Errorf("%s checksum: %w: %v", name, errListedNotRead, err)
		} else if err != nil {
			t.Fatalf("%s checksum: %v", name, err)
		}
		img.tables[name] = tb
	}
	return img, nil
}

// compareImages fails the test on every difference between TiDB's image
// (want) and the downstream's (got); it returns what it compared and how
// many differences it found.
func compareImages(t *testing.T, want, got *sqlImage) (tables, rows, diffs int) {
	t.Helper()
	errorf := func(format string, args ...any) {
		t.Helper()
		diffs++
		t.Errorf(format, args...)
	}
	if !slices.Equal(want.dbs, got.dbs) {
		errorf("databases: TiDB %v, downstream %v", want.dbs, got.dbs)
	}
	var names []string
	for n := range want.tables {
		names = append(names, n)
	}
	for n := range got.tables {
		if want.tables[n] == nil {
			errorf("table %s is downstream, not in TiDB", n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		w, g := want.tables[n], got.tables[n]
		if g == nil {
			errorf("table %s of TiDB is not downstream", n)
			continue
		}
		if !slices.Equal(w.cols, g.cols) || w.rowid != g.rowid || !slices.Equal(w.key, g.key) {
			errorf("%s: columns %v key %v (rowid %v) in TiDB, %v key %v (rowid %v) downstream", n, w.cols, w.key, w.rowid, g.cols, g.key, g.rowid)
			continue
		}
		var missing, extra, differ []string
		for k, wr := range w.rows {
			gr, ok := g.rows[k]
			switch {
			case !ok:
				missing = append(missing, k)
			case !slices.Equal(gr, wr):
				var cols []string
				for i := range wr {
					if wr[i] != gr[i] {
						cols = append(cols, fmt.Sprintf("%s TiDB %.80s / downstream %.80s", w.names[i], wr[i], gr[i]))
					}
				}
				differ = append(differ, k+": "+strings.Join(cols, ", "))
			}
		}
		for k := range g.rows {
			if _, ok := w.rows[k]; !ok {
				extra = append(extra, k)
			}
		}
		sameRows := len(missing)+len(extra)+len(differ) == 0
		if !sameRows {
			slices.Sort(missing)
			slices.Sort(extra)
			slices.Sort(differ)
			errorf("%s: %d rows in TiDB, %d downstream; %d missing downstream %v, %d extra %v, %d different %v", n, len(w.rows), len(g.rows),
				len(missing), first(missing, 5), len(extra), first(extra, 5), len(differ), first(differ, 3))
		}
		// TiDB's checksum query can disagree with the rows the same
		// connection read at the same snapshot just before it (seen a few
		// times in ten-minute runs, bank.accounts counted 199 of its 200
		// rows, under the workload's chaos splits): then the rows, equal
		// downstream, and the downstream's own checksum of them are the
		// record, and the line says so instead of failing the point.
		tidbOff := sameRows && g.count == len(g.rows) && g.crc == g.ownCRC && w.ownCRC == g.ownCRC &&
			(w.count != len(w.rows) || w.crc != w.ownCRC)
		if tidbOff {
			t.Logf("%s: TiDB's checksum query said %d rows crc %08x, but the %d rows it returned at the same snapshot (crc %08x) equal the downstream's rows and checksum: TiDB's aggregate disagrees with itself, not the replication",
				n, w.count, w.crc, len(w.rows), w.ownCRC)
		} else if w.count != g.count || w.crc != g.crc {
			errorf("%s: checksum in TiDB %d rows crc %08x, downstream %d rows crc %08x (of the rows as read: TiDB's %08x, the downstream's %08x)",
				n, w.count, w.crc, g.count, g.crc, w.ownCRC, g.ownCRC)
		}
		tables++
		rows += len(g.rows)
	}
	return tables, rows, diffs
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// scanRows reads every row of a query's result as nullable strings and
// closes it.
func scanRows(t *testing.T, rows *sql.Rows) [][]sql.NullString {
	t.Helper()
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]sql.NullString
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
