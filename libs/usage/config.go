package usage

import (
	"errors"
	"flag"
	"time"
)

// Config is the meta-server leader's metering settings.
type Config struct {
	// SampleInterval: how often the leader samples each tenant's stored
	// bytes (by listing its objects) and ingest totals (its checkpoints).
	SampleInterval time.Duration `yaml:"sample_interval"`
	// RollupGrace: an hour is rolled up this long after it ends, so the
	// processes' last flushes of the hour (every DefaultFlushInterval) are
	// in; records written later are not counted.
	RollupGrace time.Duration `yaml:"rollup_grace"`
	// ArchiveRetention: how long the usage of an offboarded tenant is kept
	// in the usage archive after its deregistration (0 = forever).
	ArchiveRetention time.Duration `yaml:"archive_retention"`
}

// DefaultArchiveRetention keeps an offboarded tenant's usage for 400 days:
// a year of billing disputes and a month more.
const DefaultArchiveRetention = 400 * 24 * time.Hour

// DefaultConfig are the defaults.
func DefaultConfig() Config {
	return Config{SampleInterval: 5 * time.Minute, RollupGrace: 10 * time.Minute, ArchiveRetention: DefaultArchiveRetention}
}

// RegisterFlags binds the settings to --usage-* flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.SampleInterval, "usage-sample-interval", c.SampleInterval, "how often the leader samples each tenant's stored bytes (a listing of its objects) and ingest totals for metering")
	fs.DurationVar(&c.ArchiveRetention, "usage-archive-retention", c.ArchiveRetention, "how long an offboarded tenant's usage is kept in the usage archive after its deregistration (0 = forever)")
	fs.DurationVar(&c.RollupGrace, "usage-rollup-grace", c.RollupGrace, "how long after an hour ends the leader folds its usage records into the hour's rollup")
}

// Validate names a wrong setting.
func (c *Config) Validate() error {
	var errs []error
	if c.SampleInterval < time.Second {
		errs = append(errs, errors.New("--usage-sample-interval must be at least 1s"))
	}
	if c.RollupGrace < 2*DefaultFlushInterval {
		errs = append(errs, errors.New("--usage-rollup-grace must be at least two flush intervals (2m)"))
	}
	if c.ArchiveRetention < 0 {
		errs = append(errs, errors.New("--usage-archive-retention must not be negative"))
	}
	return errors.Join(errs...)
}
