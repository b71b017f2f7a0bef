package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tistream/tistream/libs/sim"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

// Table pulls (`tistream lag --table-pulls N`): besides the tenant pull, the
// first N tables the tenant pull sees are each pulled with PullTable from
// then on, and each one's row lag is reported next to the tenant pull's lag
// for the same table's rows. A tenant pull emits in commit-ts order across
// the tenant, so a long-running transaction holds all of it; a table pull
// waits only for the ranges covering its table (and the schema registry):
// with --long-txn-table the difference shows what a lock does to the
// tables it does not touch.

// tableLag is what the lag run measured of one table.
type tableLag struct {
	Tenant lagDist // the tenant pull's lag of this table's rows (after the warm-up)
	Table  lagDist // the table pull's
	Rows   int64   // rows the table pull received
	Other  int64   // rows of other tables it received (must be 0)
	Err    error   // how the table pull failed, if it did
}

// tablePulls starts and collects the table pulls of one run.
type tablePulls struct {
	max    int
	addr   string
	creds  *clientCreds
	tenant uint64
	warm   time.Time
	final  *atomic.Uint64

	mu     sync.Mutex
	tables map[int64]*tableLag
	wg     sync.WaitGroup
}

func newTablePulls(max int, addr string, creds *clientCreds, warm time.Time, final *atomic.Uint64) *tablePulls {
	return &tablePulls{max: max, addr: addr, creds: creds, tenant: 1, warm: warm, final: final, tables: map[int64]*tableLag{}}
}

// tenantRow records a row of the tenant pull, starting a pull of its table
// if it is new and there is room.
func (tp *tablePulls) tenantRow(ctx context.Context, r *apiv1.RowChange, ms float64) {
	if tp == nil || tp.max <= 0 {
		return
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	t := tp.tables[r.TableId]
	if t == nil {
		if len(tp.tables) >= tp.max {
			return
		}
		t = &tableLag{}
		tp.tables[r.TableId] = t
		tp.wg.Add(1)
		go tp.pull(ctx, r.TableId, t)
	}
	if sim.PhysicalMs(r.CommitTs) >= tp.warm.UnixMilli() {
		t.Tenant.add(ms)
	}
}

func (tp *tablePulls) pull(ctx context.Context, id int64, t *tableLag) {
	defer tp.wg.Done()
	err := lagPullTable(ctx, tp.addr, tp.creds, tp.tenant, id, func(r *apiv1.RowChange, now time.Time) {
		tp.mu.Lock()
		t.Rows++
		if r.TableId != id {
			t.Other++
		}
		if sim.PhysicalMs(r.CommitTs) >= tp.warm.UnixMilli() {
			t.Table.add(lagMs(now, r.CommitTs))
		}
		tp.mu.Unlock()
	}, func(ts uint64) bool {
		fin := tp.final.Load()
		return fin != 0 && ts >= fin
	})
	tp.mu.Lock()
	t.Err = err
	tp.mu.Unlock()
}

// wait waits for the table pulls to reach the end (or fail), at most d.
func (tp *tablePulls) wait(d time.Duration) map[int64]*tableLag {
	if tp == nil {
		return nil
	}
	done := make(chan struct{})
	go func() { tp.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	out := map[int64]*tableLag{}
	for id, t := range tp.tables {
		c := *t
		c.Tenant.ms = append([]float64(nil), t.Tenant.ms...)
		c.Table.ms = append([]float64(nil), t.Table.ms...)
		c.Tenant.sort()
		c.Table.sort()
		if c.Err == nil && tp.final.Load() != 0 && !isDone(done) {
			c.Err = fmt.Errorf("did not reach the final resolved ts within %s", d)
		}
		out[id] = &c
	}
	return out
}

func isDone(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// printTableLags writes the per-table lags.
func printTableLags(w io.Writer, tables map[int64]*tableLag) {
	if len(tables) == 0 {
		return
	}
	ids := make([]int64, 0, len(tables))
	for id := range tables {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| table | rows (table pull) | table pull p50 / p99 / max ms | tenant pull, same rows, p50 / p99 / max ms |")
	fmt.Fprintln(w, "|---|---:|---|---|")
	for _, id := range ids {
		t := tables[id]
		status := ""
		if t.Err != nil {
			status = fmt.Sprintf(" (pull failed: %v)", t.Err)
		}
		fmt.Fprintf(w, "| %d%s | %d | %s / %s / %s | %s / %s / %s |\n", id, status, t.Rows,
			fmtMs(t.Table.q(.5)), fmtMs(t.Table.q(.99)), fmtMs(t.Table.q(1)),
			fmtMs(t.Tenant.q(.5)), fmtMs(t.Tenant.q(.99)), fmtMs(t.Tenant.q(1)))
	}
}
