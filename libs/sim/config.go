package sim

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/tistream/tistream/libs/formats/storefile"
)

// Config sets the shape, rate and events of a simulated cluster.
type Config struct {
	Seed      uint64
	ClusterID uint64
	Tenants   int // tenant ids are FirstTenant..FirstTenant+Tenants-1
	Stores    int // store ids are 1..Stores, shared by every tenant
	DBs       int // databases per tenant
	Tables    int // tables per tenant at start
	Regions   int // regions per tenant at start (at least one per table group)
	// FirstTenant is the first tenant id (0 = 1), so that two simulators
	// can push different tenants into one fleet at different rates.
	FirstTenant uint64

	RowsPerSec int           // committed-or-not row changes per simulated second
	Duration   time.Duration // simulated time to generate traffic for
	Txns       int           // if > 0, stop after this many transactions instead

	FlushInterval time.Duration // each store cuts a change file this often
	ResolveEvery  time.Duration // each store publishes resolved ts this often

	SplitEvery    time.Duration // mean interval between region splits, 0 = none
	MergeEvery    time.Duration // mean interval between region merges
	TransferEvery time.Duration // mean interval between leader transfers
	DDLEvery      time.Duration // mean interval between DDL statements

	RowsPerTxn    int     // mean rows of an ordinary transaction
	RollbackRatio float64 // share of 2PC/async transactions rolled back
	// OrphanRollbackRatio is the share of rolled-back ordinary transactions
	// whose prewrites never reach the stream (a pessimistic transaction
	// rolled back before it prewrote, a prewrite that failed): only their
	// ROLLBACK rows appear, as TiKV emits them (store-change-file spec,
	// "ROLLBACK with no PREWRITE").
	OrphanRollbackRatio float64
	OnePCRatio          float64 // share of single-region transactions committed in 1PC
	AsyncCommitRatio    float64 // share of multi-key transactions using async commit
	CrossTableRatio     float64 // share of transactions writing two tables
	DeleteRatio         float64 // share of row changes that delete an existing row

	LargeTxnEvery time.Duration // mean interval between large transactions, 0 = none
	LargeTxnRows  int
	LongTxnEvery  time.Duration // mean interval between long-running transactions
	LongTxnHold   time.Duration // how long they hold their locks
	// LongTxnTable, when > 0, makes every long-running transaction write
	// only the tenant's LongTxnTable-th live table by id (the same table
	// unless DDL drops an earlier one):
	// to measure what a lock does to the pulls of the other tables.
	LongTxnTable int
	// HotTableShare, when > 0, sends this share of the ordinary
	// transactions (so of their row changes) to the tenant's first live
	// table by id, all their rows in it; the others spread over the other
	// live tables as usual (cross-table ones among those). To measure a
	// hot table: what the autoscaler does when one table takes most of
	// the load. 0 keeps every seed's scenario as it was.
	HotTableShare float64

	ValueSize int // approximate bytes of a row value

	// CrashEvery is the mean interval between store crashes (0 = none). A
	// crashed store loses its open change file; the new leaders of its
	// regions take its incarnations over (store-change-file spec,
	// "Takeover"). It restarts CrashDown later, leading nothing.
	CrashEvery time.Duration
	CrashDown  time.Duration
	// HeartbeatEvery is how often a long-running, large or pipelined
	// transaction's primary lock is rewritten (0 = never), alternately by a
	// heartbeat (a PREWRITE of the primary key with op PUT and an empty
	// value) and by a push of its min_commit_ts (the PREWRITE again, with
	// the value when it is at most 255 bytes, empty otherwise).
	HeartbeatEvery time.Duration
	// LockValueRewrites: every other lock rewrite is a min_commit_ts push
	// that carries the value (true), or every one is a heartbeat (false, as
	// before they were simulated).
	LockValueRewrites bool
	// PipelinedEvery is the mean interval between pipelined DML transactions
	// (0 = none): each prewrites its keys in generations 1..n, n at most
	// PipelinedGenerations, a new value each time, then commits.
	PipelinedEvery       time.Duration
	PipelinedGenerations int
	// RollbackMergeRatio is the share of merges TiKV rolls back after the
	// source's END: the source starts its next version again.
	RollbackMergeRatio float64

	// FormatVersion is the store change file format written: 2 (headers
	// list the leaders in full every FullListEvery files and as a delta in
	// between; one LeaderResolvedTs per round with the regions holding
	// locks excepted) or 1 (every header lists every leader; one resolved
	// ts record per distinct ts naming every region), which consumers
	// older than version 2 read.
	FormatVersion int
	// FullListEvery is the most files between two full leader lists in
	// format version 2 (0: storefile.DefaultFullListEvery).
	FullListEvery uint64

	// StartTime is the physical part of the first TSO (ignored when Realtime).
	StartTime time.Time
	// Realtime paces the simulated clock to the wall clock and takes TSO
	// physical time from it, for pushing into a running fleet.
	Realtime bool
	// Producer is written into every file header.
	Producer string
}

// DefaultConfig is a small, busy cluster: the flag defaults of `tistream sim`.
func DefaultConfig() Config {
	return Config{
		Seed:                 1,
		ClusterID:            1,
		Tenants:              1,
		Stores:               3,
		DBs:                  2,
		Tables:               8,
		Regions:              16,
		RowsPerSec:           5000,
		Duration:             10 * time.Second,
		FlushInterval:        time.Second,
		ResolveEvery:         time.Second,
		SplitEvery:           2 * time.Second,
		MergeEvery:           3 * time.Second,
		TransferEvery:        time.Second,
		DDLEvery:             5 * time.Second,
		RowsPerTxn:           5,
		RollbackRatio:        0.05,
		OrphanRollbackRatio:  0.5,
		LockValueRewrites:    true,
		OnePCRatio:           0.3,
		AsyncCommitRatio:     0.3,
		CrossTableRatio:      0.2,
		DeleteRatio:          0.1,
		LongTxnEvery:         10 * time.Second,
		LongTxnHold:          4 * time.Second,
		LargeTxnRows:         100_000,
		ValueSize:            200,
		CrashDown:            3 * time.Second,
		PipelinedGenerations: 3,
		FormatVersion:        2,
		FullListEvery:        storefile.DefaultFullListEvery,
		StartTime:            time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Producer:             "tistream-sim/1",
	}
}

// RegisterFlags binds the config to command-line flags, with c's values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "random seed; the same seed writes the same files")
	fs.Uint64Var(&c.ClusterID, "cluster", c.ClusterID, "upstream cluster id")
	fs.IntVar(&c.Tenants, "tenants", c.Tenants, "number of tenants (ids 1..N)")
	fs.Uint64Var(&c.FirstTenant, "first-tenant", c.FirstTenant, "id of the first tenant (0 = 1): tenants are --first-tenant..--first-tenant+--tenants-1")
	fs.IntVar(&c.Stores, "stores", c.Stores, "number of TiKV stores")
	fs.IntVar(&c.DBs, "dbs", c.DBs, "databases per tenant")
	fs.IntVar(&c.Tables, "tables", c.Tables, "tables per tenant at start")
	fs.IntVar(&c.Regions, "regions", c.Regions, "regions per tenant at start")
	fs.IntVar(&c.RowsPerSec, "rows-per-sec", c.RowsPerSec, "row changes per simulated second")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "simulated time to generate traffic for")
	fs.IntVar(&c.Txns, "txns", c.Txns, "stop after this many transactions (overrides --duration when > 0)")
	fs.DurationVar(&c.FlushInterval, "flush-interval", c.FlushInterval, "how often each store pushes a change file")
	fs.DurationVar(&c.ResolveEvery, "resolve-interval", c.ResolveEvery, "how often each store publishes resolved ts (also always just before each file is cut)")
	fs.DurationVar(&c.SplitEvery, "split-every", c.SplitEvery, "mean interval between region splits (0 = none)")
	fs.DurationVar(&c.MergeEvery, "merge-every", c.MergeEvery, "mean interval between region merges (0 = none)")
	fs.DurationVar(&c.TransferEvery, "transfer-every", c.TransferEvery, "mean interval between leader transfers (0 = none)")
	fs.DurationVar(&c.DDLEvery, "ddl-every", c.DDLEvery, "mean interval between DDL statements (0 = none)")
	fs.IntVar(&c.RowsPerTxn, "rows-per-txn", c.RowsPerTxn, "mean rows of an ordinary transaction")
	fs.Float64Var(&c.RollbackRatio, "rollback-ratio", c.RollbackRatio, "share of 2PC transactions rolled back")
	fs.Float64Var(&c.OrphanRollbackRatio, "orphan-rollback-ratio", c.OrphanRollbackRatio, "share of rolled-back transactions whose prewrites never reach the stream (ROLLBACK rows only)")
	fs.Float64Var(&c.OnePCRatio, "1pc-ratio", c.OnePCRatio, "share of single-region transactions committed in 1PC")
	fs.Float64Var(&c.AsyncCommitRatio, "async-commit-ratio", c.AsyncCommitRatio, "share of multi-key transactions using async commit")
	fs.Float64Var(&c.CrossTableRatio, "cross-table-ratio", c.CrossTableRatio, "share of transactions writing two tables")
	fs.Float64Var(&c.DeleteRatio, "delete-ratio", c.DeleteRatio, "share of row changes that delete a row")
	fs.DurationVar(&c.LargeTxnEvery, "large-txn-every", c.LargeTxnEvery, "mean interval between large transactions (0 = none)")
	fs.IntVar(&c.LargeTxnRows, "large-txn-rows", c.LargeTxnRows, "rows of a large transaction")
	fs.DurationVar(&c.LongTxnEvery, "long-txn-every", c.LongTxnEvery, "mean interval between long-running transactions (0 = none)")
	fs.DurationVar(&c.LongTxnHold, "long-txn-hold", c.LongTxnHold, "how long a long-running transaction holds its locks")
	fs.IntVar(&c.LongTxnTable, "long-txn-table", c.LongTxnTable, "long-running transactions write only the tenant's N-th live table by id (0 = any table)")
	fs.Float64Var(&c.HotTableShare, "hot-table-share", c.HotTableShare, "share of the ordinary transactions' row changes written to the tenant's first live table by id (0 = spread over every table)")
	fs.IntVar(&c.ValueSize, "value-size", c.ValueSize, "approximate bytes of a row value")
	fs.DurationVar(&c.CrashEvery, "crash-every", c.CrashEvery, "mean interval between store crashes; new leaders take the crashed store's incarnations over (0 = none)")
	fs.DurationVar(&c.CrashDown, "crash-down", c.CrashDown, "how long a crashed store stays down before it restarts (at least --flush-interval)")
	fs.DurationVar(&c.HeartbeatEvery, "heartbeat-every", c.HeartbeatEvery, "how often long-running, large and pipelined transactions rewrite their primary lock (a heartbeat: a PREWRITE with an empty PUT value; with --lock-value-rewrites every other one a min_commit_ts push carrying a short value; 0 = never)")
	fs.BoolVar(&c.LockValueRewrites, "lock-value-rewrites", c.LockValueRewrites, "make every other lock rewrite a min_commit_ts push that carries the value (at most 255 bytes), as TiKV writes it")
	fs.DurationVar(&c.PipelinedEvery, "pipelined-every", c.PipelinedEvery, "mean interval between pipelined DML transactions (0 = none)")
	fs.IntVar(&c.PipelinedGenerations, "pipelined-generations", c.PipelinedGenerations, "most generations a pipelined DML transaction prewrites")
	fs.Float64Var(&c.RollbackMergeRatio, "rollback-merge-ratio", c.RollbackMergeRatio, "share of merges rolled back after the source's END")
	fs.BoolVar(&c.Realtime, "realtime", c.Realtime, "pace the simulated clock to the wall clock (for a live fleet)")
	fs.IntVar(&c.FormatVersion, "format-version", c.FormatVersion, "store change file format to write: 2, or 1 for consumers not upgraded (every header lists every leader, resolved ts name every region)")
	fs.Uint64Var(&c.FullListEvery, "full-list-every", c.FullListEvery, "format version 2: the most files between two headers listing every leader (the others list what changed)")
}

// Validate reports the first setting that cannot work, by its flag name.
func (c *Config) Validate() error {
	var errs []error
	pos := func(v int, name string) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive, got %d", name, v))
		}
	}
	ratio := func(v float64, name string) {
		if v < 0 || v > 1 {
			errs = append(errs, fmt.Errorf("--%s must be between 0 and 1, got %g", name, v))
		}
	}
	nonneg := func(d time.Duration, name string) {
		if d < 0 {
			errs = append(errs, fmt.Errorf("--%s must not be negative, got %s", name, d))
		}
	}
	if c.ClusterID == 0 {
		errs = append(errs, errors.New("--cluster must not be 0"))
	}
	pos(c.Tenants, "tenants")
	pos(c.Stores, "stores")
	pos(c.DBs, "dbs")
	pos(c.Tables, "tables")
	if c.LongTxnTable < 0 || (c.Tables > 0 && c.LongTxnTable > c.Tables) {
		errs = append(errs, fmt.Errorf("--long-txn-table must be between 0 and --tables (%d), got %d", c.Tables, c.LongTxnTable))
	}
	pos(c.Regions, "regions")
	pos(c.RowsPerSec, "rows-per-sec")
	pos(c.RowsPerTxn, "rows-per-txn")
	pos(c.ValueSize, "value-size")
	if c.Txns < 0 {
		errs = append(errs, fmt.Errorf("--txns must not be negative, got %d", c.Txns))
	}
	if c.Txns == 0 && c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("--duration must be positive when --txns is 0, got %s", c.Duration))
	}
	if c.FlushInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("--flush-interval must be at least 10ms, got %s", c.FlushInterval))
	}
	if c.ResolveEvery < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("--resolve-interval must be at least 10ms, got %s", c.ResolveEvery))
	}
	for _, d := range []struct {
		v    time.Duration
		name string
	}{{c.SplitEvery, "split-every"}, {c.MergeEvery, "merge-every"}, {c.TransferEvery, "transfer-every"},
		{c.DDLEvery, "ddl-every"}, {c.LargeTxnEvery, "large-txn-every"}, {c.LongTxnEvery, "long-txn-every"},
		{c.LongTxnHold, "long-txn-hold"}, {c.CrashEvery, "crash-every"}, {c.CrashDown, "crash-down"},
		{c.HeartbeatEvery, "heartbeat-every"}, {c.PipelinedEvery, "pipelined-every"}} {
		nonneg(d.v, d.name)
	}
	if c.LargeTxnEvery > 0 {
		pos(c.LargeTxnRows, "large-txn-rows")
	}
	if c.CrashEvery > 0 {
		if c.Stores < 2 {
			errs = append(errs, fmt.Errorf("--crash-every needs at least 2 --stores (a crashed store's regions need another peer), got %d", c.Stores))
		}
		if c.CrashDown < c.FlushInterval {
			errs = append(errs, fmt.Errorf("--crash-down (%s) must be at least --flush-interval (%s)", c.CrashDown, c.FlushInterval))
		}
	}
	if c.HeartbeatEvery > 0 && c.HeartbeatEvery < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("--heartbeat-every must be 0 or at least 10ms, got %s", c.HeartbeatEvery))
	}
	if c.PipelinedEvery > 0 {
		pos(c.PipelinedGenerations, "pipelined-generations")
	}
	if c.FormatVersion != 1 && c.FormatVersion != 2 {
		errs = append(errs, fmt.Errorf("--format-version must be 1 or 2, got %d", c.FormatVersion))
	}
	ratio(c.RollbackMergeRatio, "rollback-merge-ratio")
	ratio(c.RollbackRatio, "rollback-ratio")
	ratio(c.OrphanRollbackRatio, "orphan-rollback-ratio")
	ratio(c.OnePCRatio, "1pc-ratio")
	ratio(c.AsyncCommitRatio, "async-commit-ratio")
	ratio(c.CrossTableRatio, "cross-table-ratio")
	ratio(c.DeleteRatio, "delete-ratio")
	ratio(c.HotTableShare, "hot-table-share")
	if c.Regions < c.Stores {
		errs = append(errs, fmt.Errorf("--regions (%d) must be at least --stores (%d) so every store leads a region", c.Regions, c.Stores))
	}
	return errors.Join(errs...)
}

// EnableChaos turns on, at moderate rates for histories of a few seconds to
// a minute, every upstream behaviour a consumer must survive beyond plain
// region churn: store crashes with takeovers (every form), restarts, lock
// refreshes, pipelined DML and rolled-back merges. Other fields are kept.
func (c *Config) EnableChaos() {
	c.CrashEvery = 2 * time.Second
	c.CrashDown = max(2*time.Second, c.FlushInterval)
	c.HeartbeatEvery = 300 * time.Millisecond
	c.PipelinedEvery = 400 * time.Millisecond
	c.PipelinedGenerations = 4
	c.RollbackMergeRatio = 0.2
	if c.LongTxnEvery == 0 {
		c.LongTxnEvery = 2 * time.Second
		c.LongTxnHold = 2 * time.Second
	}
}

// ChaosConfig is a short busy history (3 stores, 2 tenants, 10 s) with
// fast region churn and EnableChaos's behaviours on.
func ChaosConfig() Config {
	c := DefaultConfig()
	c.Duration = 10 * time.Second
	c.RowsPerSec = 2000
	c.Tenants = 2
	c.SplitEvery = 300 * time.Millisecond
	c.MergeEvery = 500 * time.Millisecond
	c.TransferEvery = 200 * time.Millisecond
	c.DDLEvery = time.Second
	c.LargeTxnEvery = 4 * time.Second
	c.LargeTxnRows = 5000
	c.LongTxnEvery = 2 * time.Second
	c.LongTxnHold = 2 * time.Second
	c.EnableChaos()
	return c
}
