package metaserver

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/tistream/tistream/libs/svc"
	"github.com/tistream/tistream/libs/tenantcfg"
	"github.com/tistream/tistream/libs/usage"
)

// maxInitialRanges bounds RegisterTenant's initial_ranges: the tenant and all
// its range tasks are written in one etcd transaction, and etcd refuses
// transactions of more than 128 operations by default (--max-txn-ops).
const maxInitialRanges = 100

// Config is the meta-server's configuration.
type Config struct {
	svc.Common `yaml:",inline"`
	// AdvertiseAddr is the gRPC address other processes dial, published as
	// the election value ("" = the address the gRPC server listens on).
	AdvertiseAddr string `yaml:"advertise_addr"`
	// SessionTTL of the leader's etcd session: a dead leader is replaced
	// after at most this long.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// ScheduleInterval is the scheduler's and the seal reconciler's period;
	// they also run at every change of workers or tasks.
	ScheduleInterval time.Duration `yaml:"schedule_interval"`
	// InitialRanges is RegisterTenant's default when the request says 0:
	// 2, so that the meta keys have a range of their own (a long
	// transaction in a table never holds the schema registry back).
	InitialRanges int `yaml:"initial_ranges"`
	// NotifyInterval coalesces a stream's notifications: at most one etcd
	// write per stream per interval.
	NotifyInterval time.Duration `yaml:"notify_interval"`
	// NotifyQueue bounds the notifications waiting to be forwarded to
	// dispatchers; more are dropped (dispatchers also list the buffer).
	NotifyQueue int `yaml:"notify_queue"`
	// MaxDispatcherConns bounds the cached gRPC connections to dispatchers.
	MaxDispatcherConns int `yaml:"max_dispatcher_conns"`
	// WatermarkCacheTTL is how long ListTasks reuses a range's published
	// watermark read from the pool.
	WatermarkCacheTTL time.Duration `yaml:"watermark_cache_ttl"`
	// TenantDefaults are the fleet's settings of tenants that did not
	// choose their own (docs/tenants.md), set once for every service by
	// tistream run/up (flags --tenant-default-*, top-level YAML
	// tenant_defaults). Their retention: a retired range (split or merged
	// away) whose SEAL entry was published longer ago than its tenant's
	// effective retention (wall clock, not commit ts) is deleted from the
	// pool and etcd; 0 keeps them forever.
	TenantDefaults tenantcfg.Defaults `yaml:"-"`
	// OffboardInterval: how often the leader looks for deregistered
	// tenants whose grace period is over, and resumes deletions.
	OffboardInterval time.Duration `yaml:"offboard_interval"`
	// RetentionInterval: how often the leader looks for expired ranges.
	RetentionInterval time.Duration `yaml:"retention_interval"`
	// Usage: metering (usage.go; docs/tenants.md, "Metering").
	Usage usage.Config `yaml:"usage"`

	// The autoscaler (autoscale.go; docs/operations.md, "Automatic split,
	// merge and balance"). Autoscale false keeps the ranges as they are
	// (no split, merge or move for load); draining works either way.
	Autoscale         bool          `yaml:"autoscale"`
	AutoscaleInterval time.Duration `yaml:"autoscale_interval"`
	// SplitRowsPerSec: a range whose sorter applies more row events per
	// second than this is split at the key its sorter proposes.
	SplitRowsPerSec float64 `yaml:"split_rows_per_sec"`
	// SplitCPUShare and SplitMemoryBytes: a range whose applies and
	// flushes take more than this share of a core, or that holds more than
	// this many bytes (sort buffer and matcher), is split too; 0 = not on
	// that measure. The CPU bound also converts a range's CPU share into
	// rows per second for balancing (loadBounds.score).
	SplitCPUShare    float64 `yaml:"split_cpu_share"`
	SplitMemoryBytes uint64  `yaml:"split_memory_bytes"`
	// MergeRowsPerSec and MergeAfter: two adjacent ranges that have both
	// stayed below MergeRowsPerSec for MergeAfter, and whose sum is below
	// a quarter of SplitRowsPerSec, are merged.
	MergeRowsPerSec float64       `yaml:"merge_rows_per_sec"`
	MergeAfter      time.Duration `yaml:"merge_after"`
	// MaxMovesPerMinute bounds the ranges moved between sorters for load.
	MaxMovesPerMinute int `yaml:"max_moves_per_minute"`
	// BalanceMinRowsPerSec and BalanceRatio are the hysteresis of moves for
	// load: the most and the least loaded sorter must differ by more than
	// both (the ratio of the most loaded one's rows per second).
	BalanceMinRowsPerSec float64 `yaml:"balance_min_rows_per_sec"`
	BalanceRatio         float64 `yaml:"balance_ratio"`

	// Bounds on what a MetaService client controls (docs/operations.md,
	// "Bounds"). Over a bound a call is refused, nothing changes, and
	// tistream_meta_requests_refused_total counts it.

	// MaxKeyBytes bounds a key a client gives (SplitRange's split_key): it
	// is stored in etcd and in every manifest.
	MaxKeyBytes int `yaml:"max_key_bytes"`
	// MaxRangesPerTenant bounds a tenant's ACTIVE ranges: a split beyond
	// it, or a registration asking for more, is refused.
	MaxRangesPerTenant int `yaml:"max_ranges_per_tenant"`
	// RangeOpsPerMinute is each tenant's token bucket for SplitRange and
	// MergeRanges together: this many per minute, and as many at once.
	RangeOpsPerMinute int `yaml:"range_ops_per_minute"`
	// MaxStoresPerTenant bounds a tenant's stream tasks: NotifyStoreFile for
	// a store without a stream creates one, up to this many.
	MaxStoresPerTenant int `yaml:"max_stores_per_tenant"`
	// MaxConcurrentCalls bounds the MetaService calls served at once; more
	// are refused at once.
	MaxConcurrentCalls int `yaml:"max_concurrent_calls"`
}

// defaultMaxRecvBytes is the meta-server's --max-recv-bytes: its requests
// are ids and at most one key of --max-key-bytes, so a message beyond this
// is refused by gRPC before it is decoded (the services' default, 128 MiB,
// is sized for Ingest batches).
const defaultMaxRecvBytes = 1 << 20

// Limits of the bounds' settings themselves.
const (
	minKeyBytes = 64
	maxKeyBytes = 64 << 10
)

// DefaultConfig is the configuration with every default.
func DefaultConfig() Config {
	return Config{
		Common: svc.Common{GRPCAddr: ":7100", HTTPAddr: ":7101", LogLevel: "info", LogFormat: "text",
			StopTimeout: 30 * time.Second, MaxRecvBytes: defaultMaxRecvBytes},
		SessionTTL:         10 * time.Second,
		ScheduleInterval:   2 * time.Second,
		InitialRanges:      2,
		NotifyInterval:     200 * time.Millisecond,
		NotifyQueue:        4096,
		MaxDispatcherConns: 256,
		WatermarkCacheTTL:  2 * time.Second,
		TenantDefaults:     tenantcfg.DefaultDefaults(),
		OffboardInterval:   10 * time.Second,
		RetentionInterval:  time.Minute,
		Usage:              usage.DefaultConfig(),
		MaxKeyBytes:        4 << 10,
		MaxRangesPerTenant: 10_000,
		RangeOpsPerMinute:  60,
		MaxStoresPerTenant: 1024,
		MaxConcurrentCalls: 256,

		Autoscale:            true,
		AutoscaleInterval:    10 * time.Second,
		SplitRowsPerSec:      20_000,
		SplitCPUShare:        0.5,
		SplitMemoryBytes:     256 << 20,
		MergeRowsPerSec:      1_000,
		MergeAfter:           10 * time.Minute,
		MaxMovesPerMinute:    6,
		BalanceMinRowsPerSec: 2_000,
		BalanceRatio:         0.25,
	}
}

// RegisterFlags binds every setting to a flag, with c's values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs, "")
	fs.StringVar(&c.AdvertiseAddr, "advertise-addr", c.AdvertiseAddr, "gRPC address other processes dial (default: the listen address)")
	fs.DurationVar(&c.SessionTTL, "session-ttl", c.SessionTTL, "etcd session TTL of the leader election (whole seconds, at least 1s)")
	fs.DurationVar(&c.ScheduleInterval, "schedule-interval", c.ScheduleInterval, "period of the scheduler and the split/merge reconciler")
	fs.IntVar(&c.InitialRanges, "initial-ranges", c.InitialRanges, fmt.Sprintf("ranges a tenant starts with when RegisterTenant says 0 (1..%d)", maxInitialRanges))
	fs.DurationVar(&c.NotifyInterval, "notify-interval", c.NotifyInterval, "at most one etcd write per stream per interval for store file notifications")
	fs.IntVar(&c.NotifyQueue, "notify-queue", c.NotifyQueue, "notifications waiting to be forwarded to dispatchers before new ones are dropped")
	fs.IntVar(&c.MaxDispatcherConns, "max-dispatcher-conns", c.MaxDispatcherConns, "cached gRPC connections to dispatchers")
	fs.DurationVar(&c.WatermarkCacheTTL, "watermark-cache-ttl", c.WatermarkCacheTTL, "how long ListTasks reuses a range's published watermark")
	fs.DurationVar(&c.OffboardInterval, "offboard-interval", c.OffboardInterval, "how often the leader deletes the data of deregistered tenants whose grace period is over")
	fs.DurationVar(&c.RetentionInterval, "retention-interval", c.RetentionInterval, "how often the leader deletes expired retired ranges")
	c.Usage.RegisterFlags(fs)
	fs.IntVar(&c.MaxKeyBytes, "max-key-bytes", c.MaxKeyBytes, fmt.Sprintf("largest split key a client may give, in bytes (%d..%d)", minKeyBytes, maxKeyBytes))
	fs.IntVar(&c.MaxRangesPerTenant, "max-ranges-per-tenant", c.MaxRangesPerTenant, "ACTIVE ranges a tenant may have; splits beyond are refused (at least --initial-ranges)")
	fs.IntVar(&c.RangeOpsPerMinute, "range-ops-per-minute", c.RangeOpsPerMinute, "splits and merges per tenant per minute (a token bucket of this size)")
	fs.IntVar(&c.MaxStoresPerTenant, "max-stores-per-tenant", c.MaxStoresPerTenant, "stores (stream tasks) a tenant may have; notifications for more are refused")
	fs.BoolVar(&c.Autoscale, "autoscale", c.Autoscale, "split hot ranges, merge cold ones and move ranges between sorters by load (false: ranges stay as they are; drain still works)")
	fs.DurationVar(&c.AutoscaleInterval, "autoscale-interval", c.AutoscaleInterval, "period of the autoscaler's split and merge round")
	fs.Float64Var(&c.SplitRowsPerSec, "split-rows-per-sec", c.SplitRowsPerSec, "split a range whose sorter applies more row events per second than this, when another sorter could take half of it")
	fs.Float64Var(&c.SplitCPUShare, "split-cpu-share", c.SplitCPUShare, "split a range whose applies and flushes take more than this share of one sorter core (0 = never for CPU); also the CPU share that weighs as much as --split-rows-per-sec when balancing")
	fs.Uint64Var(&c.SplitMemoryBytes, "split-memory-bytes", c.SplitMemoryBytes, "split a range holding more than this many bytes in its sort buffer and transaction matcher (0 = never for memory)")
	fs.Float64Var(&c.MergeRowsPerSec, "merge-rows-per-sec", c.MergeRowsPerSec, "merge two adjacent ranges both below this many row events per second for --merge-after (and together below a quarter of --split-rows-per-sec)")
	fs.DurationVar(&c.MergeAfter, "merge-after", c.MergeAfter, "how long two ranges must stay below --merge-rows-per-sec before they are merged")
	fs.IntVar(&c.MaxMovesPerMinute, "max-moves-per-minute", c.MaxMovesPerMinute, "ranges moved between sorters for load per minute (a token bucket of this size)")
	fs.Float64Var(&c.BalanceMinRowsPerSec, "balance-min-rows-per-sec", c.BalanceMinRowsPerSec, "move ranges for load only when the most and least loaded sorters differ by more than this many row events per second ...")
	fs.Float64Var(&c.BalanceRatio, "balance-ratio", c.BalanceRatio, "... and by more than this fraction of the most loaded sorter's load")
	fs.IntVar(&c.MaxConcurrentCalls, "max-concurrent-calls", c.MaxConcurrentCalls, "MetaService calls served at once; more are refused with RESOURCE_EXHAUSTED")
}

// Validate names every wrong setting.
func (c *Config) Validate() error {
	errs := []error{c.Common.Validate("")}
	if c.SessionTTL < time.Second {
		errs = append(errs, errors.New("--session-ttl must be at least 1s"))
	}
	if c.ScheduleInterval <= 0 {
		errs = append(errs, errors.New("--schedule-interval must be positive"))
	}
	if c.InitialRanges < 1 || c.InitialRanges > maxInitialRanges {
		errs = append(errs, fmt.Errorf("--initial-ranges must be in [1, %d]", maxInitialRanges))
	}
	if c.NotifyInterval <= 0 {
		errs = append(errs, errors.New("--notify-interval must be positive"))
	}
	if c.NotifyQueue < 1 {
		errs = append(errs, errors.New("--notify-queue must be at least 1"))
	}
	if c.MaxDispatcherConns < 1 {
		errs = append(errs, errors.New("--max-dispatcher-conns must be at least 1"))
	}
	if err := c.Usage.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.TenantDefaults.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.OffboardInterval <= 0 {
		errs = append(errs, errors.New("--offboard-interval must be positive"))
	}
	if c.RetentionInterval <= 0 {
		errs = append(errs, errors.New("--retention-interval must be positive"))
	}
	if c.WatermarkCacheTTL < 0 {
		errs = append(errs, errors.New("--watermark-cache-ttl must not be negative"))
	}
	if c.MaxKeyBytes < minKeyBytes || c.MaxKeyBytes > maxKeyBytes {
		errs = append(errs, fmt.Errorf("--max-key-bytes must be in [%d, %d]", minKeyBytes, maxKeyBytes))
	}
	if c.MaxRangesPerTenant < max(c.InitialRanges, 1) {
		errs = append(errs, errors.New("--max-ranges-per-tenant must be at least 1 and at least --initial-ranges"))
	}
	if c.RangeOpsPerMinute < 1 {
		errs = append(errs, errors.New("--range-ops-per-minute must be at least 1"))
	}
	if c.MaxStoresPerTenant < 1 {
		errs = append(errs, errors.New("--max-stores-per-tenant must be at least 1"))
	}
	if c.MaxConcurrentCalls < 1 {
		errs = append(errs, errors.New("--max-concurrent-calls must be at least 1"))
	}
	if c.AutoscaleInterval <= 0 {
		errs = append(errs, errors.New("--autoscale-interval must be positive"))
	}
	if !(c.SplitRowsPerSec > 0) {
		errs = append(errs, errors.New("--split-rows-per-sec must be positive"))
	}
	if !(c.SplitCPUShare >= 0) {
		errs = append(errs, errors.New("--split-cpu-share must not be negative (0 = never split for CPU)"))
	}
	if !(c.MergeRowsPerSec >= 0) || c.MergeRowsPerSec >= c.SplitRowsPerSec*mergeFraction {
		errs = append(errs, fmt.Errorf("--merge-rows-per-sec must be in [0, --split-rows-per-sec × %g)", mergeFraction))
	}
	if c.MergeAfter < 0 {
		errs = append(errs, errors.New("--merge-after must not be negative"))
	}
	if c.MaxMovesPerMinute < 0 {
		errs = append(errs, errors.New("--max-moves-per-minute must not be negative (0 = no moves for load)"))
	}
	if !(c.BalanceMinRowsPerSec >= 0) || !(c.BalanceRatio >= 0 && c.BalanceRatio < 1) {
		errs = append(errs, errors.New("--balance-min-rows-per-sec must not be negative and --balance-ratio must be in [0, 1)"))
	}
	return errors.Join(errs...)
}
