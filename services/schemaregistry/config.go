package schemaregistry

import (
	"errors"
	"flag"
	"time"

	"github.com/tistream/tistream/libs/schema"
	"github.com/tistream/tistream/libs/svc"
)

// Config is the schema registry's configuration.
type Config struct {
	svc.Common `yaml:",inline"`
	// PersistInterval: each tenant's history is written to the store at
	// most this often, when it changed (new changes, resolved ts or floor).
	PersistInterval time.Duration `yaml:"persist_interval"`
	// Retention is how much schema history is kept, in TSO physical time
	// behind the tenant's resolved ts (0 = keep everything).
	Retention time.Duration `yaml:"retention"`
	// PollInterval is how often a caught-up tenant polls the pool's meta
	// range for new published entries while the sorters' publication
	// notices are not watched (the etcd watch is broken).
	PollInterval time.Duration `yaml:"poll_interval"`
	// FallbackPollInterval is how often it polls while they are watched: a
	// notice of the tenant wakes it at once, the poll covers a lost one.
	FallbackPollInterval time.Duration `yaml:"fallback_poll_interval"`
	// KeepPersisted is how many persisted histories a tenant keeps: the
	// newest, and older ones to fall back to when it does not decode.
	KeepPersisted int `yaml:"keep_persisted"`
	// MaxChanges bounds the changes of one GetSchemaChanges answer; a longer
	// answer is cut at a commit ts (its resolved_ts says where).
	MaxChanges int `yaml:"max_changes"`
	// RetryBackoff is the first wait before a failed tenant follower starts
	// again (it doubles up to MaxRetryBackoff).
	RetryBackoff    time.Duration `yaml:"retry_backoff"`
	MaxRetryBackoff time.Duration `yaml:"max_retry_backoff"`
	// JobWait is how long, in TSO time past its commit ts, a schema change
	// waits for the DDL job TiDB writes after it (its SQL text and type)
	// before it is served without one (libs/schema/jobs.go).
	JobWait time.Duration `yaml:"job_wait"`
}

// DefaultConfig is the configuration with every default.
func DefaultConfig() Config {
	return Config{
		Common: svc.Common{GRPCAddr: ":7530", HTTPAddr: ":7531", LogLevel: "info", LogFormat: "text",
			StopTimeout: 30 * time.Second},
		PersistInterval:      10 * time.Second,
		Retention:            24 * time.Hour,
		PollInterval:         200 * time.Millisecond,
		FallbackPollInterval: time.Second,
		KeepPersisted:        2,
		MaxChanges:           10_000,
		RetryBackoff:         200 * time.Millisecond,
		MaxRetryBackoff:      30 * time.Second,
		JobWait:              schema.DefaultJobWait,
	}
}

// RegisterFlags binds every setting to a flag, with c's values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs, "")
	fs.DurationVar(&c.PersistInterval, "persist-interval", c.PersistInterval, "how often each tenant's schema history is persisted when it changed")
	fs.DurationVar(&c.Retention, "retention", c.Retention, "schema history kept behind the resolved ts, in TSO physical time (0 = keep everything)")
	fs.DurationVar(&c.PollInterval, "poll-interval", c.PollInterval, "how often a caught-up tenant polls the pool's meta range without publication notices (etcd watch broken)")
	fs.DurationVar(&c.FallbackPollInterval, "fallback-poll-interval", c.FallbackPollInterval, "how often a caught-up tenant polls the pool's meta range while the sorters' publication notices are watched")
	fs.IntVar(&c.KeepPersisted, "keep-persisted", c.KeepPersisted, "persisted histories kept per tenant (at least 2: the newest and one to fall back to)")
	fs.IntVar(&c.MaxChanges, "max-changes", c.MaxChanges, "most schema changes in one GetSchemaChanges answer")
	fs.DurationVar(&c.RetryBackoff, "retry-backoff", c.RetryBackoff, "first wait before a failed tenant follower restarts")
	fs.DurationVar(&c.MaxRetryBackoff, "max-retry-backoff", c.MaxRetryBackoff, "longest wait before a failed tenant follower restarts")
	fs.DurationVar(&c.JobWait, "job-wait", c.JobWait, "how long (TSO time) a schema change waits for its DDL job before it is served without one")
}

// Validate names every wrong setting.
func (c *Config) Validate() error {
	errs := []error{c.Common.Validate("")}
	if c.PersistInterval <= 0 {
		errs = append(errs, errors.New("--persist-interval must be positive"))
	}
	if c.Retention < 0 {
		errs = append(errs, errors.New("--retention must not be negative"))
	}
	if c.PollInterval <= 0 {
		errs = append(errs, errors.New("--poll-interval must be positive"))
	}
	if c.FallbackPollInterval <= 0 {
		errs = append(errs, errors.New("--fallback-poll-interval must be positive"))
	}
	if c.KeepPersisted < 2 {
		errs = append(errs, errors.New("--keep-persisted must be at least 2"))
	}
	if c.MaxChanges < 1 {
		errs = append(errs, errors.New("--max-changes must be at least 1"))
	}
	if c.RetryBackoff <= 0 {
		errs = append(errs, errors.New("--retry-backoff must be positive"))
	}
	if c.JobWait < 0 {
		errs = append(errs, errors.New("--job-wait must not be negative"))
	}
	if c.MaxRetryBackoff < c.RetryBackoff {
		errs = append(errs, errors.New("--max-retry-backoff must be at least --retry-backoff"))
	}
	return errors.Join(errs...)
}
