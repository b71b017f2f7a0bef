package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/e2e/tidb/capture"
	"github.com/tistream/tistream/e2e/tidb/check"
	"github.com/tistream/tistream/e2e/tidb/server"
	"github.com/tistream/tistream/e2e/tidb/workload"
	"github.com/tistream/tistream/libs/formats/storeline"
)

// One embedded TiDB serves every test of the package: TiDB keeps global
// state (config, metrics, the domain) and boots once per process.
var (
	srv   *server.Server
	api   *httptest.Server
	lines string
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "tistream-tidb-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		ctx := context.Background()
		srv, err = server.Start(ctx, server.Options{DataDir: dir, Capture: capture.Config{FlushInterval: 100 * time.Millisecond, ChaosEvery: 300 * time.Millisecond}, Log: log})
		if err != nil {
			fmt.Fprintln(os.Stderr, "start tidb:", err)
			return 1
		}
		defer srv.Close()
		api = httptest.NewServer(srv.Handler())
		defer api.Close()
		lines = filepath.Join(dir, "lines.jsonl")
		f, err := os.Create(lines)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		enc := storeline.NewEncoder(f)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for b := range srv.Capture.Batches() {
				for i := range b {
					_ = enc.Encode(&b[i])
				}
				_ = enc.Flush()
			}
		}()
		stop := make(chan struct{})
		go func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					_ = srv.Capture.Cut()
					srv.Capture.Chaos()
				}
			}
		}()
		code := m.Run()
		close(stop)
		srv.Capture.CloseBatches()
		<-done
		f.Close()
		return code
	}())
}

func db(t *testing.T) *sql.DB {
	t.Helper()
	d, err := sql.Open("mysql", srv.DSN(""))
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// cutAndRead cuts, waits for the lines to reach the file and folds them.
func cutAndRead(t *testing.T) *check.Pulled {
	t.Helper()
	ts := capture.TSO()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := srv.ResolveStaleLocks(context.Background(), time.Second)
		require.NoError(t, err)
		p, err := check.ReadLines(lines)
		require.NoError(t, err)
		if p.LastResolved() > ts {
			return p
		}
		require.True(t, time.Now().Before(deadline), "the capture's resolved ts did not pass %d within 30 s", ts)
	}
}

// TestCaptureImageEqualsTiDB runs the bank, DDL, crashed-client, big and
// split workloads, then folds the capture's own lines (prewrites matched
// with commits as the spec says) and compares the image of every new table
// with TiDB's store at several resolved ts: the capture alone, no fleet.
func TestCaptureImageEqualsTiDB(t *testing.T) {
	env := workload.Env{DB: db(t), HTTP: api.URL, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Duration: 4 * time.Second, LongTxn: 3 * time.Second, BigRows: 5000}
	rep, err := workload.Run(context.Background(), env, []string{"bank", "ddl", "crash", "big", "long", "split"})
	require.NoError(t, err)
	p := cutAndRead(t)
	c := &check.Checker{HTTP: api.URL, DB: env.DB}
	points := p.Points(4)
	require.GreaterOrEqual(t, len(points), 3)
	for _, ts := range points {
		res, err := c.Check(context.Background(), p, ts, nil, []check.Sum{{DB: "bank", Table: "accounts", Column: "balance", Want: rep.BankTotal}})
		require.NoError(t, err)
		require.Empty(t, res.Diffs, "at %d", ts)
		t.Logf("at %d: %d tables, %d keys %v", ts, res.Tables, res.Keys, res.Sums)
	}
	st := srv.Capture.Stats()
	require.Zero(t, st.Violations)
	require.Positive(t, st.OnePCPrewrites)
	require.Positive(t, st.StaleLocksResolved)
}

// TestMaxTsTrap shows why the capture holds in-memory locks for async-commit
// and 1PC prewrites: unistore takes a 1PC commit ts from a TSO before the
// write, so with the guard off a resolved ts published in between lands
// above a commit written after it (a commit is held 30 ms between the
// write and the capture here, which makes the window wide); with the guard
// on, no commit lands at or below a published resolved ts.
func TestMaxTsTrap(t *testing.T) {
	d := db(t)
	_, err := d.Exec("CREATE TABLE test.trap (id BIGINT PRIMARY KEY, v BIGINT)")
	require.NoError(t, err)
	insert := func(n, from int) {
		for i := from; i < from+n; i++ {
			_, err := d.Exec("INSERT INTO test.trap VALUES (?, ?)", i, i) // autocommit, one key: 1PC
			require.NoError(t, err)
		}
	}
	srv.Capture.SetCommitDelay(30 * time.Millisecond)
	defer srv.Capture.SetCommitDelay(0)
	before := srv.Capture.Stats().Violations
	insert(20, 0)
	require.Equal(t, before, srv.Capture.Stats().Violations, "guard on: no commit at or below a published resolved ts")

	srv.Capture.SetConcurrencyManager(false)
	defer srv.Capture.SetConcurrencyManager(true)
	insert(20, 100)
	require.Greater(t, srv.Capture.Stats().Violations, before, "guard off: 1PC commits land at or below a published resolved ts")
}
