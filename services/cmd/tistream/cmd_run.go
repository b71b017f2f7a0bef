package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/objstore/metered"
	"github.com/tistream/tistream/libs/svc"
	"github.com/tistream/tistream/libs/tenantbuf"
	"github.com/tistream/tistream/libs/tenantcfg"
	"github.com/tistream/tistream/libs/tlsx"
	metering "github.com/tistream/tistream/libs/usage"
	schemav1 "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
	"github.com/tistream/tistream/services/apiserver"
	"github.com/tistream/tistream/services/dispatcher"
	"github.com/tistream/tistream/services/metaserver"
	"github.com/tistream/tistream/services/schemaregistry"
	"github.com/tistream/tistream/services/sorter"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

func init() {
	register(command{name: "run", summary: "run one fleet service: -target=meta-server|dispatcher|sorter|schema-registry|api-server", run: runTarget})
}

// fleetConfig is the configuration file every service of a fleet can share
// (deploy/k8s/00-namespace-config.yaml): where etcd and the two object stores
// are, and one section per service. A process reads the shared keys and its
// own section; flags given on the command line win over the file.
type fleetConfig struct {
	Etcd   stringList `yaml:"etcd"`
	Buffer string     `yaml:"buffer"`
	Pool   string     `yaml:"pool"`

	// TenantCredentials: the AWS shared credentials file whose profiles
	// tenants' credentials_ref name (docs/tenants.md).
	TenantCredentials string `yaml:"tenant_credentials_file"`
	// Encryption: customer-managed keys of tenants' objects in the pool.
	Encryption encryptionConfig `yaml:"encryption"`
	// TenantDefaults: the settings of tenants without their own
	// (docs/tenants.md), one set for every service of the fleet
	// (--tenant-default-*): a service must not resolve a tenant's unset
	// quota, retention or key differently from another.
	TenantDefaults tenantcfg.Defaults `yaml:"tenant_defaults"`

	MetaServer     metaserver.Config     `yaml:"meta_server"`
	Dispatcher     dispatcher.Config     `yaml:"dispatcher"`
	Sorter         sorter.Config         `yaml:"sorter"`
	SchemaRegistry schemaregistry.Config `yaml:"schema_registry"`
	APIServer      apiServerConfig       `yaml:"api_server"`
}

// apiServerConfig adds where the schema registry is to the api-server's
// own settings.
type apiServerConfig struct {
	apiserver.Config   `yaml:",inline"`
	SchemaRegistryAddr string `yaml:"schema_registry_addr"`
}

func defaultFleetConfig() fleetConfig {
	return fleetConfig{
		MetaServer:     metaserver.DefaultConfig(),
		Dispatcher:     dispatcher.DefaultConfig(),
		Sorter:         sorter.DefaultConfig(),
		SchemaRegistry: schemaregistry.DefaultConfig(),
		APIServer:      apiServerConfig{Config: apiserver.DefaultConfig()},
		TenantDefaults: tenantcfg.DefaultDefaults(),
	}
}

// shareTenantDefaults gives every service the fleet's tenant defaults.
func (c *fleetConfig) shareTenantDefaults() {
	d := c.TenantDefaults
	c.MetaServer.TenantDefaults, c.Dispatcher.TenantDefaults, c.APIServer.TenantDefaults = d, d, d
	c.Sorter.Retention = d.Retention
}

// stringList is a comma-separated flag that is a YAML list in the file.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// fleetService is what every service of the fleet is.
type fleetService interface {
	svc.Service
	GRPCAddr() string
	HTTPAddr() string
}

// env is what a service is built on.
type env struct {
	log    *slog.Logger
	reg    *prometheus.Registry
	etcd   *clientv3.Client
	buffer objstore.Store
	pool   objstore.Store
	usage  *metering.Meter // the process's tenant metering (flushed to the pool)
	// wrapBuffer meters a tenant's own buffer as the service's (buffers).
	wrapBuffer func(objstore.Store) objstore.Store
	// tenantCreds: the fleet's AWS shared credentials file, whose profiles
	// tenants' credentials_ref name (--tenant-credentials-file).
	tenantCreds string
}

// buffers resolves each tenant's data change buffer: its own buffer_url
// (opened with its credentials_ref's profile of tenantCreds, metered like
// e.buffer), else e.buffer.
func (e env) buffers() *tenantbuf.Resolver {
	return tenantbuf.New(tenantbuf.Options{Default: e.buffer, CredentialsFile: e.tenantCreds, Wrap: e.wrapBuffer, Log: e.log})
}

// target is one service the run command can start.
type target struct {
	name string
	// after are the services it talks to, which a whole fleet in one
	// process (tistream up) starts first: the start order of every fleet.
	after       []string
	needsBuffer bool
	common      func(*fleetConfig) *svc.Common
	validate    func(*fleetConfig) error
	flags       func(*fleetConfig, *flag.FlagSet)
	build       func(*fleetConfig, env) (fleetService, error)
}

var targets = []target{
	{
		name: "meta-server", needsBuffer: true, // assigns everyone's work
		common:   func(c *fleetConfig) *svc.Common { return &c.MetaServer.Common },
		flags:    func(c *fleetConfig, fs *flag.FlagSet) { c.MetaServer.RegisterFlags(fs) },
		validate: func(c *fleetConfig) error { return c.MetaServer.Validate() },
		build: func(c *fleetConfig, e env) (fleetService, error) {
			return metaserver.New(c.MetaServer, metaserver.Deps{Log: e.log, Registry: e.reg, Etcd: e.etcd, Buffer: e.buffer, Buffers: e.buffers(), Pool: e.pool,
				KeyDir: c.Encryption.KeyDir})
		},
	},
	{
		name: "dispatcher", needsBuffer: true, after: []string{"meta-server", "sorter"},
		common:   func(c *fleetConfig) *svc.Common { return &c.Dispatcher.Common },
		flags:    func(c *fleetConfig, fs *flag.FlagSet) { c.Dispatcher.RegisterFlags(fs) },
		validate: func(c *fleetConfig) error { return c.Dispatcher.Validate() },
		build: func(c *fleetConfig, e env) (fleetService, error) {
			return dispatcher.New(c.Dispatcher, dispatcher.Deps{Log: e.log, Registry: e.reg, Etcd: e.etcd, Buffer: e.buffer, Buffers: e.buffers()})
		},
	},
	{
		name:     "sorter",
		after:    []string{"meta-server"},
		common:   func(c *fleetConfig) *svc.Common { return &c.Sorter.Common },
		flags:    func(c *fleetConfig, fs *flag.FlagSet) { c.Sorter.RegisterFlags(fs) },
		validate: func(c *fleetConfig) error { return c.Sorter.Validate() },
		build: func(c *fleetConfig, e env) (fleetService, error) {
			return sorter.New(c.Sorter, sorter.Deps{Log: e.log, Registry: e.reg, Etcd: e.etcd, Pool: e.pool})
		},
	},
	{
		name:     "schema-registry",
		after:    []string{"meta-server"},
		common:   func(c *fleetConfig) *svc.Common { return &c.SchemaRegistry.Common },
		flags:    func(c *fleetConfig, fs *flag.FlagSet) { c.SchemaRegistry.RegisterFlags(fs) },
		validate: func(c *fleetConfig) error { return c.SchemaRegistry.Validate() },
		build: func(c *fleetConfig, e env) (fleetService, error) {
			return schemaregistry.New(c.SchemaRegistry, schemaregistry.Deps{Log: e.log, Registry: e.reg, Etcd: e.etcd, Pool: e.pool})
		},
	},
	{
		name:   "api-server",
		after:  []string{"schema-registry"},
		common: func(c *fleetConfig) *svc.Common { return &c.APIServer.Common },
		flags: func(c *fleetConfig, fs *flag.FlagSet) {
			c.APIServer.RegisterFlags(fs)
			fs.StringVar(&c.APIServer.SchemaRegistryAddr, "schema-registry", c.APIServer.SchemaRegistryAddr, "the schema registry's gRPC address (required)")
		},
		validate: func(c *fleetConfig) error {
			if c.APIServer.SchemaRegistryAddr == "" {
				return errors.New("api-server: --schema-registry (api_server.schema_registry_addr) is required")
			}
			return c.APIServer.Validate()
		},
		build: func(c *fleetConfig, e env) (fleetService, error) {
			creds, err := svc.ClientCredentials(c.APIServer.Security, e.log)
			if err != nil {
				return nil, fmt.Errorf("api-server: %w", err)
			}
			conn, err := grpcx.Dial(c.APIServer.SchemaRegistryAddr, creds)
			if err != nil {
				return nil, fmt.Errorf("api-server: dial the schema registry: %w", err)
			}
			s, err := apiserver.New(c.APIServer.Config, apiserver.Deps{Log: e.log, Registry: e.reg, Pool: e.pool,
				Schema: schemav1.NewSchemaRegistryServiceClient(conn), Etcd: e.etcd, Usage: e.usage})
			if err != nil {
				conn.Close()
				return nil, err
			}
			return &withConn{fleetService: s, conn: conn}, nil
		},
	},
}

// withConn closes a client connection after its service stops.
type withConn struct {
	fleetService
	conn *grpc.ClientConn
}

func (w *withConn) Stop(ctx context.Context) error {
	err := w.fleetService.Stop(ctx)
	return errors.Join(err, w.conn.Close())
}

// startOrder lists the targets so that each comes after the ones it talks
// to (a topological order of after; the table's order among equals).
func startOrder() []target {
	var out []target
	done := map[string]bool{}
	for len(out) < len(targets) {
		progress := false
		for _, t := range targets {
			waiting := slices.ContainsFunc(t.after, func(d string) bool { return !done[d] })
			if done[t.name] || waiting {
				continue
			}
			out = append(out, t)
			done[t.name] = true
			progress = true
		}
		if !progress {
			panic("tistream: the targets' after lists form a cycle")
		}
	}
	return out
}

func findTarget(name string) (target, bool) {
	for _, t := range targets {
		if t.name == name {
			return t, true
		}
	}
	return target{}, false
}

func targetNames() string {
	var n []string
	for _, t := range targets {
		n = append(n, t.name)
	}
	return strings.Join(n, ", ")
}

// scanTarget finds -target's value before the flags are parsed: the
// target decides which flags exist.
func scanTarget(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		name := strings.TrimLeft(a, "-")
		if len(name) == len(a) || len(a)-len(name) > 2 {
			continue
		}
		if v, ok := strings.CutPrefix(name, "target="); ok {
			return v
		}
		if name == "target" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// errUsage marks an error in the command line or configuration (exit code 2).
var errUsage = errors.New("usage")

// parseRun parses `run`'s arguments and the configuration file they name
// into the target and its configuration, and validates both.
func parseRun(args []string, stderr io.Writer) (target, *fleetConfig, error) {
	name := scanTarget(args)
	t, ok := findTarget(name)
	if !ok {
		if name == "" {
			return t, nil, fmt.Errorf("%w: -target is required (one of %s)", errUsage, targetNames())
		}
		return t, nil, fmt.Errorf("%w: unknown -target %q (one of %s)", errUsage, name, targetNames())
	}
	fc := defaultFleetConfig()
	fs := flag.NewFlagSet("run -target="+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("target", name, "the service to run: "+targetNames())
	configPath := fs.String("config", "", "YAML configuration file (docs/operations.md); flags win over it")
	fs.Var(&fc.Etcd, "etcd", "etcd endpoints, comma-separated (http://host:port)")
	fs.StringVar(&fc.Buffer, "buffer", "", "the data change buffer's object store (file:///dir, s3://bucket/prefix?endpoint=...)")
	fs.StringVar(&fc.TenantCredentials, "tenant-credentials-file", "", "AWS shared credentials file whose profiles tenants' credentials_ref name (their own buffers)")
	fs.StringVar(&fc.Pool, "pool", "", "the committed data pool's object store (file:///dir, s3://bucket/prefix?endpoint=...)")
	fc.Encryption.registerFlags(fs)
	tenantcfg.RegisterFlags(fs, &fc.TenantDefaults)
	t.flags(&fc, fs)
	if err := svc.ParseWithConfig(fs, args, configPath, &fc); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return t, nil, err
		}
		return t, nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return t, nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if err := fc.TenantDefaults.Validate(); err != nil {
		return t, nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	fc.shareTenantDefaults()
	var missing []string
	if len(fc.Etcd) == 0 {
		missing = append(missing, "--etcd")
	}
	if t.needsBuffer && fc.Buffer == "" {
		missing = append(missing, "--buffer")
	}
	if fc.Pool == "" {
		missing = append(missing, "--pool")
	}
	if len(missing) > 0 {
		return t, nil, fmt.Errorf("%w: %s required (flags or the config file)", errUsage, strings.Join(missing, ", "))
	}
	if err := t.validate(&fc); err != nil {
		return t, nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	return t, &fc, nil
}

func runTarget(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	t, fc, err := parseRun(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "tistream run: %v\n", strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		return 2
	}
	name := t.name
	common := t.common(fc)
	log, err := svc.NewLogger(common.LogLevel, common.LogFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tistream run: %v\n", err)
		return 2
	}
	e, closeEnv, err := openEnv(ctx, log, name, fc.Etcd, common.Security, fc.Buffer, fc.Pool)
	e.tenantCreds = fc.TenantCredentials
	if err != nil {
		fmt.Fprintf(stderr, "tistream run -target=%s: %v\n", name, err)
		return 1
	}
	defer closeEnv()
	stopEncryption, err := encryptPool(ctx, &e, fc.Encryption, fc.TenantDefaults)
	if err != nil {
		fmt.Fprintf(stderr, "tistream run -target=%s: %v\n", name, err)
		return 1
	}
	defer stopEncryption()
	s, err := t.build(fc, e)
	if err != nil {
		fmt.Fprintf(stderr, "tistream run -target=%s: %v\n", name, err)
		return 2
	}
	if err := svc.Run(ctx, log, common.StopTimeout, s); err != nil {
		log.Error("stopped with an error", "err", err)
		return 1
	}
	return 0
}

// openEnv connects to etcd and opens the object stores (an empty URL is
// not opened), counting their requests as service's
// (tistream_objstore_requests_total).
func openEnv(ctx context.Context, log *slog.Logger, service string, endpoints []string, sec svc.Security, bufferURL, poolURL string) (env, func(), error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	e := env{log: log, reg: reg}
	e.usage = metering.NewMeter(reg, metering.MeterOptions{})
	requests := metered.NewMetrics(reg).WithTap(e.usage).WithTenantLabel(e.usage.TenantLabel)
	var err error
	if bufferURL != "" {
		if e.buffer, err = objstore.Open(ctx, bufferURL); err != nil {
			return env{}, nil, fmt.Errorf("open --buffer: %w", err)
		}
		e.buffer = requests.Wrap(e.buffer, service, layout.Labels)
		e.wrapBuffer = func(s objstore.Store) objstore.Store { return requests.Wrap(s, service, layout.Labels) }
	}
	if poolURL != "" {
		if e.pool, err = objstore.Open(ctx, poolURL); err != nil {
			return env{}, nil, fmt.Errorf("open --pool: %w", err)
		}
		e.pool = requests.Wrap(e.pool, service, layout.Labels)
	}
	ecfg := clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second}
	if slices.ContainsFunc(endpoints, func(u string) bool { return strings.HasPrefix(u, "https://") }) {
		// etcd over TLS: the service presents its own certificate.
		if sec.Insecure || sec.TLS.CAFile == "" {
			return env{}, nil, fmt.Errorf("etcd %v is https: the service's --tls-ca, --tls-cert and --tls-key are used to reach it", endpoints)
		}
		src, err := tlsx.NewSource(sec.TLS, log)
		if err != nil {
			return env{}, nil, fmt.Errorf("etcd TLS: %w", err)
		}
		ecfg.TLS = tlsx.ClientConfig(src)
	}
	e.etcd, err = clientv3.New(ecfg)
	if err != nil {
		return env{}, nil, fmt.Errorf("etcd %v: %w", endpoints, err)
	}
	// clientv3.New does not wait for a connection; fail fast with a clear
	// message when etcd is not there.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := e.etcd.Get(sctx, "/tistream/v1/", clientv3.WithCountOnly()); err != nil {
		e.etcd.Close()
		return env{}, nil, fmt.Errorf("etcd %v is not reachable: %w", endpoints, err)
	}
	stopUsage := startUsageFlusher(e, service)
	return e, func() { stopUsage(); e.etcd.Close() }, nil
}
