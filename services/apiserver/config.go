package apiserver

import (
	"errors"
	"flag"
	"fmt"
	"github.com/tistream/tistream/libs/pool"
	"time"

	"github.com/tistream/tistream/libs/svc"
	"github.com/tistream/tistream/libs/tenantcfg"
)

// flagPrefix prefixes the api-server's flags (none: each service of the
// binary has its own flag set, as the other services do).
const flagPrefix = ""

// Config of the api-server.
type Config struct {
	svc.Common `yaml:",inline"`
	// PollInterval is how often a caught-up pull looks for new data when
	// it cannot rely on the sorters' publication notices (no etcd, or its
	// watch is broken).
	PollInterval time.Duration `yaml:"poll_interval"`
	// FallbackPollInterval is how often a caught-up pull looks for new data
	// while the publication notices are watched: a notice wakes it at once,
	// the poll only covers a lost one.
	FallbackPollInterval time.Duration `yaml:"fallback_poll_interval"`
	// CacheBytes bounds the shared cache of decoded log entries and data
	// files every pull reads through.
	CacheBytes int64 `yaml:"cache_bytes"`
	// MaxBatchRows and MaxBatchBytes bound one response message: it closes
	// at whichever comes first (a single larger row still goes alone).
	MaxBatchRows  int `yaml:"max_batch_rows"`
	MaxBatchBytes int `yaml:"max_batch_bytes"`
	// MaxEntriesPerPoll bounds the range log entries a pull reads per range
	// per round, so a pull far behind catches up in bounded memory.
	MaxEntriesPerPoll int `yaml:"max_entries_per_poll"`
	// MaxBytesPerPoll bounds the bytes of rows a pull reads per range per
	// round, once it read one entry: with entries alone, a round's memory
	// grows with the size of the publications.
	MaxBytesPerPoll int64 `yaml:"max_bytes_per_poll"`
	// MaxHeldRows bounds the rows a pull keeps while it waits for the schema
	// registry to read past them; beyond it the pull stops reading data.
	MaxHeldRows int `yaml:"max_held_rows"`
	// MaxPulls bounds the open pulls; more are refused with RESOURCE_EXHAUSTED.
	MaxPulls int `yaml:"max_pulls"`
	// MaxPullsPerTenant and MaxPullsPerClient bound the open pulls of one
	// tenant and of one caller (its certificate or token identity, or its
	// address without authentication), so one tenant or client cannot take
	// the api-server's memory from the others.
	MaxPullsPerTenant int `yaml:"max_pulls_per_tenant"`
	MaxPullsPerClient int `yaml:"max_pulls_per_client"`
	// RegistryTimeout bounds one call to the schema registry.
	RegistryTimeout time.Duration `yaml:"registry_timeout"`
	// StartWait is how long opening a pull waits for the schema registry to
	// read up to the start ts before answering UNAVAILABLE.
	StartWait time.Duration `yaml:"start_wait"`
	// TenantDefaults are the fleet's settings of tenants without their own
	// (docs/tenants.md); the api-server uses their pull quotas
	// (docs/tenants.md, "Quotas"). Set for every service by tistream run/up
	// (flags --tenant-default-*, top-level YAML tenant_defaults).
	TenantDefaults tenantcfg.Defaults `yaml:"-"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		// Clients send small requests: a few MiB is plenty, and bounds
		// what an anonymous caller can make the server allocate.
		Common: svc.Common{GRPCAddr: ":7630", HTTPAddr: ":7631", LogLevel: "info", LogFormat: "text",
			StopTimeout: 10 * time.Second, MaxRecvBytes: 4 << 20, MaxConcurrentStreams: 256},
		PollInterval:         100 * time.Millisecond,
		FallbackPollInterval: time.Second,
		CacheBytes:           256 << 20,
		MaxBatchRows:         1024,
		MaxBatchBytes:        1 << 20,
		MaxEntriesPerPoll:    pool.DefaultMaxEntriesPerPoll,
		MaxBytesPerPoll:      pool.DefaultMaxBytesPerPoll,
		MaxHeldRows:          256 << 10,
		MaxPulls:             1024,
		MaxPullsPerTenant:    256,
		MaxPullsPerClient:    64,
		RegistryTimeout:      10 * time.Second,
		StartWait:            30 * time.Second,
		TenantDefaults:       tenantcfg.DefaultDefaults(),
	}
}

// RegisterFlags binds the settings to flags, with c's values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs, flagPrefix)
	p := flagPrefix
	fs.DurationVar(&c.PollInterval, p+"poll-interval", c.PollInterval, "how often a caught-up pull looks for new data without publication notices (no etcd, or its watch broken)")
	fs.DurationVar(&c.FallbackPollInterval, p+"fallback-poll-interval", c.FallbackPollInterval, "how often a caught-up pull looks for new data while the sorters' publication notices are watched (a notice wakes it at once)")
	fs.Int64Var(&c.CacheBytes, p+"cache-bytes", c.CacheBytes, "bytes of decoded pool objects shared by all pulls")
	fs.IntVar(&c.MaxBatchRows, p+"max-batch-rows", c.MaxBatchRows, "rows per response message at most")
	fs.IntVar(&c.MaxBatchBytes, p+"max-batch-bytes", c.MaxBatchBytes, "bytes of row data per response message at most (a larger row goes alone)")
	fs.IntVar(&c.MaxEntriesPerPoll, p+"max-entries-per-poll", c.MaxEntriesPerPoll, "range log entries a pull reads per range per round")
	fs.Int64Var(&c.MaxBytesPerPoll, p+"max-bytes-per-poll", c.MaxBytesPerPoll, "bytes of rows a pull reads per range per round, once it read one entry")
	fs.IntVar(&c.MaxHeldRows, p+"max-held-rows", c.MaxHeldRows, "rows a pull holds while waiting for the schema registry before it stops reading")
	fs.IntVar(&c.MaxPulls, p+"max-pulls", c.MaxPulls, "open pulls at most; more get RESOURCE_EXHAUSTED")
	fs.IntVar(&c.MaxPullsPerTenant, p+"max-pulls-per-tenant", c.MaxPullsPerTenant, "open pulls of one tenant at most")
	fs.IntVar(&c.MaxPullsPerClient, p+"max-pulls-per-client", c.MaxPullsPerClient, "open pulls of one client (identity, or address without authentication) at most")
	fs.DurationVar(&c.RegistryTimeout, p+"registry-timeout", c.RegistryTimeout, "timeout of one schema registry call")
	fs.DurationVar(&c.StartWait, p+"start-wait", c.StartWait, "how long a new pull waits for the schema registry to reach its start ts")
}

// Validate names every wrong setting by its flag.
func (c *Config) Validate() error {
	errs := []error{c.Common.Validate(flagPrefix)}
	positive := func(name string, ok bool) {
		if !ok {
			errs = append(errs, fmt.Errorf("--%s%s must be positive", flagPrefix, name))
		}
	}
	positive("poll-interval", c.PollInterval > 0)
	positive("fallback-poll-interval", c.FallbackPollInterval > 0)
	positive("cache-bytes", c.CacheBytes > 0)
	positive("max-batch-rows", c.MaxBatchRows > 0)
	positive("max-batch-bytes", c.MaxBatchBytes > 0)
	positive("max-entries-per-poll", c.MaxEntriesPerPoll > 0)
	positive("max-bytes-per-poll", c.MaxBytesPerPoll > 0)
	positive("max-held-rows", c.MaxHeldRows > 0)
	positive("max-pulls", c.MaxPulls > 0)
	positive("max-pulls-per-tenant", c.MaxPullsPerTenant > 0)
	positive("max-pulls-per-client", c.MaxPullsPerClient > 0)
	positive("registry-timeout", c.RegistryTimeout > 0)
	positive("start-wait", c.StartWait > 0)
	errs = append(errs, c.TenantDefaults.Validate())
	return errors.Join(errs...)
}
