package workload

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Big commits one transaction of env.BigRows rows.
func Big(ctx context.Context, env Env, rep *Report) error {
	conn, err := setupTxn(ctx, env, []string{"CREATE DATABASE IF NOT EXISTS big",
		"CREATE TABLE big.t (id BIGINT PRIMARY KEY, v VARCHAR(64))"}, "BEGIN")
	if err != nil {
		return err
	}
	defer conn.Close()
	start := time.Now()
	const batch = 1000
	for i := 0; i < env.BigRows; i += batch {
		vals := make([]string, 0, batch)
		for j := i; j < min(i+batch, env.BigRows); j++ {
			vals = append(vals, fmt.Sprintf("(%d, 'row %d of the big transaction')", j, j))
		}
		if err := exec(ctx, conn, "INSERT INTO big.t VALUES "+strings.Join(vals, ",")); err != nil {
			_ = exec(context.Background(), conn, "ROLLBACK")
			return err
		}
	}
	if err := exec(ctx, conn, "COMMIT"); err != nil {
		return err
	}
	rep.add("big: one transaction of %d rows committed in %s", env.BigRows, time.Since(start).Round(time.Millisecond))
	return nil
}

// Long keeps a pessimistic transaction open for env.LongTxn (TiDB sends
// heartbeats for its locks meanwhile), while other clients write rows of
// the same table around it, then commits it.
func Long(ctx context.Context, env Env, rep *Report) error {
	start := time.Now()
	conn, err := setupTxn(ctx, env, []string{"CREATE DATABASE IF NOT EXISTS longtx",
		"CREATE TABLE longtx.t (id BIGINT PRIMARY KEY, v BIGINT)",
		"INSERT INTO longtx.t VALUES (1, 0), (2, 0), (3, 0), (100, 0)"},
		"BEGIN PESSIMISTIC", "UPDATE longtx.t SET v = v + 1 WHERE id <= 3", "INSERT INTO longtx.t VALUES (4, 4)")
	if err != nil {
		return err
	}
	defer conn.Close()
	others := 0
	for time.Since(start) < env.LongTxn && ctx.Err() == nil {
		if _, err := env.DB.ExecContext(ctx, "INSERT INTO longtx.t VALUES (?, ?)", 1000+others, others); err != nil {
			return err
		}
		others++
		time.Sleep(200 * time.Millisecond)
	}
	if err := exec(ctx, conn, "UPDATE longtx.t SET v = v + 10 WHERE id = 100", "COMMIT"); err != nil {
		return err
	}
	rep.add("long: a pessimistic transaction open for %s, %d other commits meanwhile", time.Since(start).Round(time.Millisecond), others)
	return nil
}

// setupTxn runs the setup statements, then opens a connection of its own
// and runs the transaction's first statements on it.
func setupTxn(ctx context.Context, env Env, setup []string, txn ...string) (*sql.Conn, error) {
	if err := exec(ctx, env.DB, setup...); err != nil {
		return nil, err
	}
	conn, err := env.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if err := exec(ctx, conn, txn...); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// Crash leaves transactions whose client died after prewrite — one with
// every lock left (a reader rolls it back), one with only its primary
// committed (a reader commits the rest) — and reads the table, which
// resolves their locks.
func Crash(ctx context.Context, env Env, rep *Report) error {
	if err := exec(ctx, env.DB, "CREATE DATABASE IF NOT EXISTS crash",
		"CREATE TABLE crash.t (id BIGINT PRIMARY KEY, v BIGINT)"); err != nil {
		return err
	}
	var id int64
	if err := env.DB.QueryRowContext(ctx, "SELECT TIDB_TABLE_ID FROM information_schema.tables WHERE table_schema = 'crash' AND table_name = 't'").Scan(&id); err != nil {
		return err
	}
	for i, mode := range []string{"rollback", "commit", "rollback", "commit"} {
		url := fmt.Sprintf("%s/crash?table=%d&from=%d&rows=40&mode=%s", env.HTTP, id, i*1000, mode)
		if err := post(ctx, url); err != nil {
			return err
		}
	}
	n, err := countResolving(ctx, env.DB, "crash.t")
	if err != nil {
		return err
	}
	if n != 80 {
		return fmt.Errorf("crash.t has %d rows after its locks were resolved, want 80 (two transactions committed by readers)", n)
	}
	rep.add("crash: 4 transactions abandoned after prewrite (2 rolled back, 2 committed by readers); %d rows", n)
	return nil
}

// countResolving counts a table's rows; the read meets the abandoned
// locks and resolves them (retrying while TiDB backs off).
func countResolving(ctx context.Context, db *sql.DB, table string) (int, error) {
	var n int
	var err error
	for try := 0; try < 30; try++ {
		if err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err == nil {
			return n, nil
		}
		time.Sleep(time.Second)
	}
	return 0, err
}

// Split splits the tables of the other workloads of the run into regions
// while they write them.
func Split(ctx context.Context, env Env, rep *Report) error {
	var n int
	for _, sp := range []struct{ workload, stmt string }{
		{"bank", "SPLIT TABLE bank.accounts BY (50), (100), (150)"}, // transfers then span regions: async commit
		{"ddl", "SPLIT TABLE ddl1.live BY (100), (200), (300), (400)"},
		{"ddl-sink", "SPLIT TABLE sinkddl.live BY (100), (200), (300), (400)"},
		{"types", "SPLIT TABLE types.t BY (100), (200)"},
		{"big", "SPLIT TABLE big.t BETWEEN (0) AND (100000) REGIONS 8"},
		{"long", "SPLIT TABLE longtx.t BETWEEN (0) AND (2000) REGIONS 2"},
		{"sysbench", "SPLIT TABLE sbtest.sbtest1 BY (500), (1000), (1500)"},
	} {
		if env.running != nil && !env.running[sp.workload] {
			continue
		}
		s := sp.stmt
		for try := 0; ; try++ { // the table may not exist yet
			_, err := env.DB.ExecContext(ctx, s)
			if err == nil {
				n++
				break
			}
			if try == 20 {
				env.Log.Warn("split failed", "stmt", s, "err", err)
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	rep.add("split: %d SPLIT TABLE statements", n)
	return nil
}
