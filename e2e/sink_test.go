//go:build linux

package e2e

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tistream/tistream/libs/sink/mysql/mysqltest"
	"github.com/tistream/tistream/libs/truth"
)

// TestSinkMySQL: the simulator pushes a cluster with DDLs through a fleet
// of processes; `tistream sink mysql` applies tenant 1 to a real MariaDB.
// Mid-run the sink is killed (SIGKILL) and restarted, and later the
// api-server is killed and restarted under it. Once the sink's checkpoint
// passes the truth's end, every table in MariaDB equals the truth folded
// to that checkpoint: the same tables, columns and rows (decoded row by
// row), and the same checksum (sync_diff_inspector's). Syncpoints were
// written, below the checkpoint.
func TestSinkMySQL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet and MariaDB")
	}
	// Small downstream transactions: a resolved ts's rows are cut in several.
	sinkRun(t, sinkRunOptions{duration: "14s", rowsPerSec: "1500", faults: true, maxBatchRows: "500"})
}

// TestSinkMySQLMeasure is the sink's measurement (docs/benchmarks.md):
// the same pipeline without faults, at TISTREAM_SINK_RATE rows/s (default
// 5,000) for TISTREAM_SINK_DURATION (default 30s); it logs the sink's
// throughput and the lag from upstream commit to downstream commit. Only
// with TISTREAM_SINK_MEASURE=1 (scripts/bench.sh sets it);
// TISTREAM_SINK_SIM_ARGS adds simulator flags.
func TestSinkMySQLMeasure(t *testing.T) {
	if os.Getenv("TISTREAM_SINK_MEASURE") != "1" {
		t.Skip("a measurement: TISTREAM_SINK_MEASURE=1")
	}
	o := sinkRunOptions{duration: envOr("TISTREAM_SINK_DURATION", "30s"), rowsPerSec: envOr("TISTREAM_SINK_RATE", "5000"),
		maxBatchRows: "4096", simArgs: strings.Fields(os.Getenv("TISTREAM_SINK_SIM_ARGS"))}
	sinkRun(t, o)
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

type sinkRunOptions struct {
	duration, rowsPerSec, maxBatchRows string
	faults                             bool     // kill -9 the sink, restart the api-server
	simArgs                            []string // more flags of the simulator
}

func sinkRun(t *testing.T, o sinkRunOptions) {
	db := mysqltest.Start(t)
	f := startProcFleet(t, procFleetOptions{Metas: 1, Sorters: 1, Dispatchers: 1})
	cl := f.clients()
	api := f.first("api-server")
	truthPath := filepath.Join(f.dir, "truth.jsonl")
	sim := start(t, "sim", append([]string{"sim", "--store", f.bufferURL, "--meta", f.first("meta-server").grpcAddr,
		"--truth", truthPath, "--tenants", "1", "--duration", o.duration, "--rows-per-sec", o.rowsPerSec, "--initial-ranges", "2",
		"--ddl-every", "700ms", "--quiet"}, append(o.simArgs, cl.upstream...)...)...)

	httpAddr := freeAddr(t)
	sinkArgs := append([]string{"sink", "mysql", "--api", api.grpcAddr, "--tenant", "1", "--dsn", db.DSN,
		"--syncpoint-interval", "2s", "--progress-every", "2s", "--http", httpAddr, "--max-batch-rows", o.maxBatchRows}, cl.admin...)
	sink := start(t, "sink", sinkArgs...)
	conn := db.Open(t, "")
	waitCheckpoint(t, conn, sink, 1, 90*time.Second)
	if o.faults {
		sink = faults(t, f, conn, sink, sinkArgs)
	}
	finish(t, f, conn, sim, sink, truthPath, httpAddr, o.faults)
}

// faults kills the sink mid-run and restarts it, then restarts the
// api-server under it; it returns the running sink.
func faults(t *testing.T, f *procFleet, conn *sql.DB, sink *proc, sinkArgs []string) *proc {
	api := f.first("api-server")
	// Three seconds (TSO time) into the run: rows, DDLs and checkpoints
	// behind it, more to come.
	waitCheckpoint(t, conn, sink, checkpoint(t, conn)+3000<<18, 60*time.Second)

	// Kill -9 mid-run and restart: it resumes from its checkpoint.
	before := checkpoint(t, conn)
	_ = syscall.Kill(-sink.cmd.Process.Pid, syscall.SIGKILL)
	<-sink.exited
	sink = start(t, "sink-restarted", sinkArgs...)
	waitCheckpoint(t, conn, sink, before+2000<<18, 60*time.Second)
	if b, _ := os.ReadFile(sink.out); !strings.Contains(string(b), "sink resuming") {
		t.Fatalf("the restarted sink did not resume from its checkpoint:\n%s", tail(b, 2048))
	}

	// The api-server dies and comes back under the running sink.
	f.kill(api)
	time.Sleep(time.Second) // the sink's stream breaks and it retries meanwhile
	f.startMember(api)
	return sink
}

// finish waits for the simulator and for the sink to apply its end, then
// compares MariaDB with the truth and reports throughput and lag.
func finish(t *testing.T, f *procFleet, conn *sql.DB, sim, sink *proc, truthPath, httpAddr string, faults bool) {
	select {
	case <-sim.exited:
		if sim.err != nil {
			t.Fatalf("the simulator failed: %v", sim.err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the simulator did not finish")
	}
	start := time.Now()
	end := truthEndTs(t, truthPath)
	waitCheckpoint(t, conn, sink, end, 90*time.Second)
	m := metrics(t, httpAddr)
	reportLag(t, m, time.Since(start))
	if faults && (!strings.Contains(m, "tistream_sink_stream_reconnects") || strings.Contains(m, "tistream_sink_stream_reconnects 0\n")) {
		t.Errorf("the sink's stream never reconnected across the api-server restart:\n%s", grep(m, "tistream_sink_"))
	}
	t.Logf("sink metrics:\n%s", grep(m, "tistream_sink_ddls_total"))
	cp := checkpoint(t, conn)
	compareWithTruth(t, conn, foldTruth(t, f.bufferURL, truthPath, cp))

	var syncs, above int
	if err := conn.QueryRow("SELECT COUNT(*), COALESCE(SUM(ts > ?), 0) FROM tistream_sink.syncpoint WHERE sink_id = 'tenant-1'", cp).
		Scan(&syncs, &above); err != nil {
		t.Fatal(err)
	}
	if syncs < 3 || above != 0 {
		t.Errorf("%d syncpoints, %d above the checkpoint %d; want several, none above", syncs, above, cp)
	}
}

func checkpoint(t *testing.T, conn *sql.DB) uint64 {
	var ts uint64
	err := conn.QueryRow("SELECT resolved_ts FROM tistream_sink.checkpoint WHERE sink_id = 'tenant-1'").Scan(&ts)
	if err != nil && !errors.Is(err, sql.ErrNoRows) && !strings.Contains(err.Error(), "doesn't exist") {
		t.Fatal(err)
	}
	return ts
}

// waitCheckpoint waits until the sink's checkpoint reaches ts, failing if
// the sink exits first.
func waitCheckpoint(t *testing.T, conn *sql.DB, sink *proc, ts uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for checkpoint(t, conn) < ts {
		if !sink.running() {
			b, _ := os.ReadFile(sink.out)
			t.Fatalf("the sink exited: %v\n%s", sink.err, tail(b, 4096))
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink's checkpoint %d did not reach %d within %s", checkpoint(t, conn), ts, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func truthEndTs(t *testing.T, path string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := truth.NewReader(f, path)
	for {
		l, err := r.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s has no end line", path)
		}
		if err != nil {
			t.Fatal(err)
		}
		if l.Kind == truth.KindEnd {
			return l.End.ResolvedTs
		}
	}
}

// compareWithTruth checks every downstream table (but the sink's own)
// against the folded truth: names, columns, rows, checksum.
func compareWithTruth(t *testing.T, conn *sql.DB, want map[int64]*truthTable) {
	t.Helper()
	wantKeys := map[string]*truthTable{}
	for _, tb := range want {
		wantKeys[tableKey(tb.db, tb.info.Name.O)] = tb
	}
	rows, err := conn.Query("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES " +
		"WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys', 'tistream_sink')")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s, n string
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, tableKey(s, n))
	}
	rows.Close()
	slices.Sort(got)
	var names []string
	for k := range wantKeys {
		names = append(names, k)
	}
	slices.Sort(names)
	if !slices.Equal(names, got) {
		t.Fatalf("downstream tables %v, truth tables %v", got, names)
	}
	totalRows := 0
	for _, name := range names {
		tb := wantKeys[name]
		cols, wantRows := tb.expectedRows(t)
		gotRows := downstreamRows(t, conn, tb.db, tb.info.Name.O, cols)
		if !slices.Equal(wantRows, gotRows) {
			t.Errorf("%s: %d rows downstream, %d in the truth; first difference: %s", name, len(gotRows), len(wantRows), firstDiff(wantRows, gotRows))
			continue
		}
		n, sum := checksum(wantRows)
		var dn int
		var dsum uint32
		quoted := make([]string, len(cols))
		for i, c := range cols {
			quoted[i] = "`" + c + "`"
		}
		q := fmt.Sprintf("SELECT COUNT(*), COALESCE(BIT_XOR(CRC32(CONCAT_WS(',', %s))), 0) FROM `%s`.`%s`", strings.Join(quoted, ", "), tb.db, tb.info.Name.O)
		if err := conn.QueryRow(q).Scan(&dn, &dsum); err != nil {
			t.Fatal(err)
		}
		if dn != n || dsum != sum {
			t.Errorf("%s: checksum downstream %d rows crc %08x, truth %d rows crc %08x", name, dn, dsum, n, sum)
		}
		totalRows += n
	}
	if totalRows == 0 {
		t.Fatal("the truth has no rows: nothing was checked")
	}
	t.Logf("%d tables, %d rows equal to the truth", len(names), totalRows)
}

func downstreamRows(t *testing.T, conn *sql.DB, db, table string, cols []string) []string {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = "`" + c + "`"
	}
	rows, err := conn.Query(fmt.Sprintf("SELECT %s FROM `%s`.`%s` ORDER BY 1", strings.Join(quoted, ", "), db, table))
	if err != nil {
		t.Fatalf("%s.%s: %v", db, table, err)
	}
	var out []string
	for _, vals := range scanRows(t, rows) {
		parts := make([]string, len(cols))
		for i, v := range vals {
			parts[i] = "NULL"
			if v.Valid {
				parts[i] = v.String
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out
}

func firstDiff(a, b []string) string {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return "row " + strconv.Itoa(i) + ": truth " + x + " / downstream " + y
		}
	}
	return "none"
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// reportLag logs the sink's throughput and the quantiles of the lag from
// an upstream transaction's commit ts to its downstream commit, read off
// the sink's histogram (bucket upper bounds: a quantile is at most that).
func reportLag(t *testing.T, m string, took time.Duration) {
	var les []float64
	var counts []float64
	var rows, txns float64
	for _, l := range strings.Split(m, "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(f[0], `tistream_sink_apply_lag_seconds_bucket{le="`):
			le := strings.TrimSuffix(strings.TrimPrefix(f[0], `tistream_sink_apply_lag_seconds_bucket{le="`), `"}`)
			x, err := strconv.ParseFloat(le, 64)
			if err != nil {
				x = 1e9 // +Inf
			}
			les, counts = append(les, x), append(counts, v)
		case strings.HasPrefix(f[0], "tistream_sink_rows_total{"):
			rows += v
		case f[0] == "tistream_sink_txns_total":
			txns = v
		}
	}
	if len(counts) == 0 || counts[len(counts)-1] == 0 {
		t.Log("no lag observations")
		return
	}
	q := func(p float64) string {
		n := counts[len(counts)-1]
		for i, c := range counts {
			if c >= p*n {
				return "≤" + strconv.FormatFloat(les[i], 'g', 3, 64) + "s"
			}
		}
		return "?"
	}
	t.Logf("sink applied %.0f rows in %.0f transactions; lag commit→applied p50 %s, p90 %s, p99 %s (%d observations); caught up %s after the simulator ended",
		rows, txns, q(0.5), q(0.9), q(0.99), int(counts[len(counts)-1]), took.Round(time.Millisecond))
}
