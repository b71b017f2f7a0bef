package dispatcher

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/tistream/tistream/libs/svc"
	"github.com/tistream/tistream/libs/tenantcfg"
)

// Config is the dispatcher's configuration.
type Config struct {
	svc.Common `yaml:",inline"`
	// ID, AdvertiseAddr, LeaseTTL: the registration in etcd.
	svc.Worker `yaml:",inline"`
	// PollInterval is how often a stream lists the buffer when no Notify
	// arrives.
	PollInterval time.Duration `yaml:"poll_interval"`
	// CheckpointInterval bounds how often a stream writes its checkpoint.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// GCGrace is how long buffer files behind a written checkpoint are kept.
	GCGrace time.Duration `yaml:"gc_grace"`
	// MaxInFlight bounds the unacknowledged files of one stream.
	MaxInFlight int `yaml:"max_in_flight"`
	// ReplayCacheBytes bounds the bytes of store files all streams keep in
	// memory past their checkpoints, so a restarted run (a split, a move, a
	// refusal) routes them again without reading the buffer (replay.go); 0
	// keeps none.
	ReplayCacheBytes int64 `yaml:"replay_cache_bytes"`
	// ResendChangedOnly: a restarted run (a split, a move, a refusal) does
	// not send a range the batches its sorter got already on the same,
	// still open, Ingest stream at the same owner and epoch (delivered.go);
	// false resends every file past the checkpoint to every range.
	ResendChangedOnly bool `yaml:"resend_changed_only"`
	// RetryMin and RetryMax bound the exponential backoff of a stream that
	// failed (decode error, NotOwner, broken Ingest stream, storage error).
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// DrainTimeout bounds how long a graceful stop waits for the sorters to
	// acknowledge in-flight files before writing the final checkpoints.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// BlockedAfter is how long a stream may wait on a sequence gap (file N
	// missing while a later one exists), or have the same file refused by
	// its sorter, before it reports itself blocked
	// (tistream_dispatcher_stream_blocked) and logs errors. Bad files block
	// at once. See docs/bad-input.md.
	BlockedAfter time.Duration `yaml:"blocked_after"`
	// TenantDefaults are the fleet's settings of tenants without their own
	// (docs/tenants.md); the dispatcher uses their ingest quotas
	// (docs/tenants.md, "Quotas"). Set for every service by tistream run/up
	// (flags --tenant-default-*, top-level YAML tenant_defaults).
	TenantDefaults tenantcfg.Defaults `yaml:"-"`
}

// DefaultConfig is the configuration the flags default to.
func DefaultConfig() Config {
	return Config{
		Common: svc.Common{
			GRPCAddr:    "0.0.0.0:7330",
			HTTPAddr:    "0.0.0.0:7331",
			LogLevel:    "info",
			LogFormat:   "text",
			StopTimeout: 30 * time.Second,
		},
		Worker:             svc.DefaultWorker("dispatcher"),
		PollInterval:       time.Second,
		CheckpointInterval: time.Second,
		GCGrace:            0,
		MaxInFlight:        64,
		ReplayCacheBytes:   256 << 20,
		ResendChangedOnly:  true,
		RetryMin:           100 * time.Millisecond,
		RetryMax:           10 * time.Second,
		DrainTimeout:       10 * time.Second,
		BlockedAfter:       30 * time.Second,
		TenantDefaults:     tenantcfg.DefaultDefaults(),
	}
}

// RegisterFlags binds the settings to flags, with c's values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs, "")
	c.Worker.RegisterFlags(fs, "dispatcher")
	fs.DurationVar(&c.PollInterval, "poll-interval", c.PollInterval, "how often a stream lists the buffer without a notification")
	fs.DurationVar(&c.CheckpointInterval, "checkpoint-interval", c.CheckpointInterval, "at most one checkpoint write per stream this often")
	fs.DurationVar(&c.GCGrace, "gc-grace", c.GCGrace, "keep buffer files behind a checkpoint this long before deleting them")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", c.MaxInFlight, "unacknowledged store files per stream")
	fs.Int64Var(&c.ReplayCacheBytes, "replay-cache-bytes", c.ReplayCacheBytes, "bytes of store files past the checkpoints kept in memory for a restarted run to route again without reading the buffer (0 = none)")
	fs.BoolVar(&c.ResendChangedOnly, "resend-changed-only", c.ResendChangedOnly, "after a routing change or refusal, resend only to the ranges whose sorter may not have the files (owner, epoch or Ingest stream changed); false resends to every range")
	fs.DurationVar(&c.RetryMin, "retry-min", c.RetryMin, "first backoff of a failed stream")
	fs.DurationVar(&c.RetryMax, "retry-max", c.RetryMax, "longest backoff of a failed stream")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "how long a graceful stop waits for in-flight files to be acknowledged")
	fs.DurationVar(&c.BlockedAfter, "blocked-after", c.BlockedAfter, "report a stream blocked after waiting this long on a sequence gap or on repeated refusals of one file")
}

// Validate names every wrong setting by its flag.
func (c *Config) Validate() error {
	errs := []error{c.Common.Validate(""), c.Worker.Validate()}
	positive := func(d time.Duration, name string) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive, got %s", name, d))
		}
	}
	positive(c.PollInterval, "poll-interval")
	positive(c.CheckpointInterval, "checkpoint-interval")
	positive(c.RetryMin, "retry-min")
	positive(c.DrainTimeout, "drain-timeout")
	positive(c.BlockedAfter, "blocked-after")
	if c.GCGrace < 0 {
		errs = append(errs, fmt.Errorf("--gc-grace must not be negative, got %s", c.GCGrace))
	}
	if c.MaxInFlight <= 0 {
		errs = append(errs, fmt.Errorf("--max-in-flight must be positive, got %d", c.MaxInFlight))
	}
	if c.ReplayCacheBytes < 0 {
		errs = append(errs, fmt.Errorf("--replay-cache-bytes must not be negative, got %d", c.ReplayCacheBytes))
	}
	if c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("--retry-max (%s) must be at least --retry-min (%s)", c.RetryMax, c.RetryMin))
	}
	errs = append(errs, c.TenantDefaults.Validate())
	return errors.Join(errs...)
}
