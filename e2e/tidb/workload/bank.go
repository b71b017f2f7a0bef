package workload

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	bankAccounts = 200
	bankStart    = 1000
)

// Bank moves money between accounts of bank.accounts for env.Duration
// with 6 clients: two in optimistic transactions, two in pessimistic ones
// (SELECT ... FOR UPDATE), two with single autocommit statements that
// touch both rows (1PC when both rows are in one region). Every committed
// transfer keeps the sum of balances at accounts × 1000.
func Bank(ctx context.Context, env Env, rep *Report) error {
	if err := exec(ctx, env.DB, "CREATE DATABASE IF NOT EXISTS bank",
		"CREATE TABLE bank.accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)"); err != nil {
		return err
	}
	vals := make([]string, bankAccounts)
	for i := range vals {
		vals[i] = fmt.Sprintf("(%d, %d)", i, bankStart)
	}
	if err := exec(ctx, env.DB, "INSERT INTO bank.accounts VALUES "+strings.Join(vals, ",")); err != nil {
		return err
	}
	rep.mu.Lock()
	rep.BankTotal = bankAccounts * bankStart
	rep.mu.Unlock()
	var done, aborted [3]atomic.Int64
	deadline := time.Now().Add(env.Duration)
	var wg sync.WaitGroup
	for c := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(c)))
			kind := c % 3
			for time.Now().Before(deadline) && ctx.Err() == nil {
				a, b := rng.Intn(bankAccounts), rng.Intn(bankAccounts)
				if a == b {
					continue
				}
				if err := transfer(ctx, env.DB, kind, a, b, int64(rng.Intn(50)+1)); err != nil {
					aborted[kind].Add(1)
					continue
				}
				done[kind].Add(1)
			}
		}()
	}
	wg.Wait()
	rep.add("bank: %d accounts; transfers committed/aborted: optimistic %d/%d, pessimistic %d/%d, autocommit %d/%d",
		bankAccounts, done[0].Load(), aborted[0].Load(), done[1].Load(), aborted[1].Load(), done[2].Load(), aborted[2].Load())
	var sum int64
	if err := env.DB.QueryRowContext(ctx, "SELECT SUM(balance) FROM bank.accounts").Scan(&sum); err != nil {
		return err
	}
	if sum != bankAccounts*bankStart {
		return fmt.Errorf("TiDB itself says the balances sum to %d, want %d", sum, bankAccounts*bankStart)
	}
	return nil
}

// transfer moves amt from a to b: kind 0 optimistic, 1 pessimistic,
// 2 one autocommit statement.
func transfer(ctx context.Context, db *sql.DB, kind, a, b int, amt int64) error {
	if kind == 2 {
		_, err := db.ExecContext(ctx, "UPDATE bank.accounts SET balance = balance + CASE id WHEN ? THEN ? ELSE ? END WHERE id IN (?, ?)",
			a, -amt, amt, a, b)
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	begin, lock := "BEGIN OPTIMISTIC", ""
	if kind == 1 {
		begin, lock = "BEGIN PESSIMISTIC", " FOR UPDATE"
	}
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		return err
	}
	err = func() error {
		var balA int64
		if err := conn.QueryRowContext(ctx, "SELECT balance FROM bank.accounts WHERE id = ?"+lock, a).Scan(&balA); err != nil {
			return err
		}
		if balA < amt {
			amt = balA / 2
		}
		if _, err := conn.ExecContext(ctx, "UPDATE bank.accounts SET balance = balance - ? WHERE id = ?", amt, a); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, "UPDATE bank.accounts SET balance = balance + ? WHERE id = ?", amt, b); err != nil {
			return err
		}
		_, err := conn.ExecContext(ctx, "COMMIT")
		return err
	}()
	if err != nil {
		_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
	}
	return err
}
