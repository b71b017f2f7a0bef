// Package workload drives an embedded TiDB over the MySQL protocol with
// the transactions and DDL whose change streams TiStream must get right:
// a bank (transfers that keep a sum constant, optimistic and pessimistic),
// DDL while DML runs, region splits, a transaction of 100k rows, one open
// for 30 s, and clients that die between prewrite and commit.
package workload

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Env is what a workload runs against.
type Env struct {
	DB    *sql.DB
	MySQL string // TiDB's MySQL address, for sysbench
	HTTP  string // tistream-tidb's HTTP API, for the crashed clients
	Log   *slog.Logger
	// Duration bounds the workloads that run until stopped (bank, DDL).
	Duration time.Duration
	// LongTxn is how long the long transaction stays open.
	LongTxn time.Duration
	// BigRows is the size of the big transaction.
	BigRows int

	running map[string]bool // the workloads of this Run
}

// Report is what the workloads did.
type Report struct {
	mu    sync.Mutex
	Lines []string
	// BankTotal is the constant sum of the bank's balances (0 without bank).
	BankTotal int64
}

func (r *Report) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Lines = append(r.Lines, fmt.Sprintf(format, args...))
}

// Names are the workloads Run runs when none is named.
var Names = []string{"bank", "ddl", "big", "long", "crash", "split", "sysbench"}

// SinkNames are the workloads whose changes `tistream sink mysql` can
// apply, for the sink's end-to-end test: ddl-sink instead of ddl (no
// partition drop, truncate or exchange), and types.
var SinkNames = []string{"bank", "ddl-sink", "types", "big", "long", "crash", "split", "sysbench"}

// Run runs the named workloads concurrently and waits for all of them.
func Run(ctx context.Context, env Env, names []string) (*Report, error) {
	rep := &Report{}
	fns := map[string]func(context.Context, Env, *Report) error{
		"bank": Bank, "ddl": DDL, "ddl-sink": SinkDDL, "types": Types, "big": Big, "long": Long, "crash": Crash, "split": Split,
		"sysbench": Sysbench,
	}
	env.running = make(map[string]bool)
	for _, n := range names {
		env.running[n] = true
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	for _, n := range names {
		fn := fns[n]
		if fn == nil {
			return nil, fmt.Errorf("unknown workload %q (have %s, ddl-sink, types)", n, strings.Join(Names, ", "))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if err := fn(ctx, env, rep); err != nil {
				errs <- fmt.Errorf("%s: %w", n, err)
				return
			}
			env.Log.Info("workload done", "name", n, "took", time.Since(start).Round(time.Millisecond))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return rep, err
	}
	return rep, nil
}

// exec runs statements in order, stopping at the first error.
func exec(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, stmts ...string) error {
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func post(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
