package mysqlsink

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Config is a sink's configuration.
type Config struct {
	API    string // the api-server's gRPC address
	Tenant uint64
	DB     string // one database, or "" for the whole tenant
	DSN    string // the downstream, go-sql-driver/mysql form: user:pass@tcp(host:port)/
	// ID names the sink's checkpoint row; default tenant-{T}[-db-{DB}].
	ID string
	// From is where a new sink starts (0 = the tenant's registration); a
	// sink with a checkpoint resumes from it instead.
	From uint64
	// SyncpointInterval: a syncpoint row at most this often, in TSO time
	// (0 = none).
	SyncpointInterval time.Duration
	// MaxBatchRows: a resolved ts's rows are committed in transactions of
	// about this many rows (cut between upstream transactions).
	MaxBatchRows int
	// ProgressEvery: how often a progress line goes to stderr (0 = never).
	ProgressEvery time.Duration
	// HTTPAddr serves /metrics ("" = none).
	HTTPAddr string
	// Wait: how long a new sink waits for its tenant or database to exist
	// (a sink started together with its fleet) before NOT_FOUND is final.
	Wait time.Duration
}

// DefaultConfig has every default.
func DefaultConfig() Config {
	return Config{SyncpointInterval: 10 * time.Second, MaxBatchRows: 4096, ProgressEvery: 5 * time.Second, Wait: time.Minute}
}

// RegisterFlags binds the settings to flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.API, "api", c.API, "the api-server's gRPC address")
	fs.Uint64Var(&c.Tenant, "tenant", c.Tenant, "tenant id")
	fs.StringVar(&c.DB, "db", c.DB, "replicate one database (default: every database of the tenant)")
	fs.StringVar(&c.DSN, "dsn", c.DSN, "downstream MySQL/MariaDB, as user:password@tcp(host:port)/")
	fs.StringVar(&c.ID, "id", c.ID, "the sink's name in tistream_sink.checkpoint (default tenant-T or tenant-T-db-D)")
	fs.Uint64Var(&c.From, "from", c.From, "start ts of a new sink (0 = the tenant's registration); a sink with a checkpoint resumes from it")
	fs.DurationVar(&c.SyncpointInterval, "syncpoint-interval", c.SyncpointInterval, "record a consistent point in tistream_sink.syncpoint this often, in TSO time (0 = never)")
	fs.IntVar(&c.MaxBatchRows, "max-batch-rows", c.MaxBatchRows, "rows per downstream transaction, cut between upstream transactions")
	fs.DurationVar(&c.ProgressEvery, "progress-every", c.ProgressEvery, "how often to print progress on stderr (0 = never)")
	fs.StringVar(&c.HTTPAddr, "http", c.HTTPAddr, "serve Prometheus /metrics at this address")
	fs.DurationVar(&c.Wait, "wait", c.Wait, "how long a new sink waits for its tenant or database to exist before giving up")
}

// Validate names every missing or wrong setting.
func (c *Config) Validate() error {
	var errs []error
	if c.API == "" {
		errs = append(errs, errors.New("--api is required"))
	}
	if c.Tenant == 0 {
		errs = append(errs, errors.New("--tenant is required"))
	}
	if c.DSN == "" {
		errs = append(errs, errors.New("--dsn is required"))
	}
	if c.DB != "" && systemDB(c.DB) {
		errs = append(errs, fmt.Errorf("--db %s: TiDB's system databases are not replicated", c.DB))
	}
	if c.MaxBatchRows < 1 {
		errs = append(errs, fmt.Errorf("--max-batch-rows must be at least 1, got %d", c.MaxBatchRows))
	}
	if c.SyncpointInterval < 0 || c.ProgressEvery < 0 || c.Wait < 0 {
		errs = append(errs, errors.New("--syncpoint-interval, --progress-every and --wait must not be negative"))
	}
	return errors.Join(errs...)
}

func (c *Config) id() string {
	switch {
	case c.ID != "":
		return c.ID
	case c.DB != "":
		return fmt.Sprintf("tenant-%d-db-%s", c.Tenant, c.DB)
	}
	return fmt.Sprintf("tenant-%d", c.Tenant)
}
