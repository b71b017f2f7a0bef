package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tistream/tistream/libs/auth"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/svc"
	"github.com/tistream/tistream/libs/tenantcfg"
)

func init() {
	register(command{name: "up", summary: "run a whole fleet in one process: embedded etcd, local-disk object store, all five services", run: runUp})
}

// runUp is the embedded default: everything a fleet needs, on one machine,
// in one process, each service as it runs alone (its own gRPC and HTTP
// servers, its own metrics), talking to the others over 127.0.0.1.
func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "tistream-data", "directory for etcd, the object store (buffer and pool) and the sorters' local state")
	host := fs.String("host", "127.0.0.1", "address every server listens on")
	etcdPort := fs.Int("etcd-port", 2379, "etcd client port (0 = pick one)")
	metaPort := fs.Int("meta-port", 7100, "meta-server gRPC port: where 'tistream sim --meta' pushes (0 = pick one)")
	apiPort := fs.Int("api-port", 7630, "api-server gRPC port: where 'tistream pull --api' pulls (0 = pick one)")
	dispatchers := fs.Int("dispatchers", 1, "dispatchers to run")
	sorters := fs.Int("sorters", 1, "sorters to run")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFile := fs.String("log-file", "", "write the services' logs here (default <data-dir>/tistream.log; - = stderr)")
	keyDir := fs.String("key-dir", "", "directory of local key files: tenants whose kek_ref is local:NAME have their pool objects encrypted with DIR/NAME.key (docs/formats/encryption.md; \"\" = no encryption)")
	tenantDefaults := tenantcfg.DefaultDefaults()
	tenantcfg.RegisterFlags(fs, &tenantDefaults)
	insecureFleet := fs.Bool("insecure", false, "run without TLS or authentication (default: a throw-away CA under <data-dir>/tls secures every connection)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *dispatchers < 1 || *sorters < 1 {
		fmt.Fprintln(stderr, "tistream up: --dispatchers and --sorters must be at least 1")
		return 2
	}
	dir, err := filepath.Abs(*dataDir)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tistream up: --data-dir: %v\n", err)
		return 1
	}
	logOut := io.Writer(stderr)
	logPath := *logFile
	if logPath == "" {
		logPath = filepath.Join(dir, "tistream.log")
	}
	if logPath != "-" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "tistream up: --log-file: %v\n", err)
			return 1
		}
		defer f.Close()
		logOut = f
	}
	log, err := svc.NewLogger(*logLevel, "text", logOut)
	if err != nil {
		fmt.Fprintf(stderr, "tistream up: %v\n", err)
		return 2
	}
	f, err := startFleet(ctx, fleetOptions{Dir: dir, Host: *host, EtcdPort: *etcdPort, MetaPort: *metaPort, APIPort: *apiPort,
		Dispatchers: *dispatchers, Sorters: *sorters, LogLevel: *logLevel, Log: log, Insecure: *insecureFleet,
		Tune: func(c *fleetConfig) { c.Encryption.KeyDir, c.TenantDefaults = *keyDir, tenantDefaults }})
	if err != nil {
		fmt.Fprintf(stderr, "tistream up: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "tistream up: a fleet is serving (data in %s, logs in %s)\n", dir, logPath)
	fmt.Fprintf(stdout, "  %-16s %s\n", "etcd", f.etcd.Endpoint)
	fmt.Fprintf(stdout, "  %-16s %s (data_change_buffer/ and committed_data_pool/)\n", "object store", f.storeURL)
	for _, m := range f.members {
		fmt.Fprintf(stdout, "  %-16s grpc=%s http=%s\n", m.name, m.s.GRPCAddr(), m.s.HTTPAddr())
	}
	fmt.Fprintf(stdout, "push changes:  tistream sim --store %s --meta %s%s --truth truth.jsonl --duration 10s\n", f.storeURL, f.meta.GRPCAddr(), f.upstream.flag())
	fmt.Fprintf(stdout, "pull a tenant: tistream pull --api %s%s --tenant 1\n", f.api.GRPCAddr(), f.admin.flag())
	fmt.Fprintf(stdout, "operate:       tistream admin tasks --meta %s%s --tenant 1\n", f.meta.GRPCAddr(), f.admin.flag())
	if f.ca != nil {
		fmt.Fprintf(stdout, "mint a token:  tistream token --key %s --role reader --tenants 1 --subject alice\n", f.ca.tokenSigner)
	}
	failure := svc.WaitFailure(ctx, f.services())
	if failure != nil {
		log.Error("a service failed; stopping the fleet", "err", failure)
		fmt.Fprintf(stderr, "tistream up: %v; stopping the fleet\n", failure)
	} else {
		log.Info("stopping the fleet")
	}
	if err := f.stop(context.Background()); err != nil || failure != nil {
		if err != nil {
			fmt.Fprintf(stderr, "tistream up: %v\n", err)
		}
		return 1
	}
	fmt.Fprintln(stdout, "tistream up: stopped")
	return 0
}

// fleetOptions describe an in-process fleet.
type fleetOptions struct {
	Dir                         string // etcd/, store/, sorter-N/ go here
	Host                        string
	EtcdPort, MetaPort, APIPort int // 0 = pick one
	Dispatchers, Sorters        int
	LogLevel                    string
	// Insecure runs the fleet in plaintext without authentication;
	// otherwise a throw-away CA under Dir/tls secures everything.
	Insecure bool
	Log      *slog.Logger
	// Tune, when set, changes the services' configuration before they are built.
	Tune func(*fleetConfig)
	// Wrap, when set, wraps the object store every service uses (to observe it).
	Wrap func(objstore.Store) objstore.Store
}

type member struct {
	name string
	s    fleetService
	reg  *prometheus.Registry // the service's metrics (its object-store requests among them)
}

// fleet is a running in-process fleet.
type fleet struct {
	etcd     *etcdx.Embedded
	storeURL string
	// ca issues the members' and clients' certificates (nil: --insecure);
	// admin and upstream are the clients' credentials.
	ca              *fleetCA
	admin, upstream *clientCreds
	members         []member // in start order
	meta            fleetService
	registry        fleetService
	api             fleetService
	closers         []func()
	stopTo          time.Duration
}

// startFleet starts an embedded etcd and every service, each as it runs
// alone (its own gRPC and HTTP servers, its own metrics), talking to the
// others over the network. On error, what started is stopped.
func startFleet(ctx context.Context, o fleetOptions) (_ *fleet, err error) {
	addr := func(port int) string { return net.JoinHostPort(o.Host, strconv.Itoa(port)) }
	f := &fleet{admin: &clientCreds{insecure: true}, upstream: &clientCreds{insecure: true}}
	defer func() {
		if err != nil {
			_ = f.stop(context.Background())
		}
	}()
	ecfg := etcdx.EmbeddedConfig{Dir: filepath.Join(o.Dir, "etcd"), ClientAddr: addr(o.EtcdPort), PeerAddr: addr(0)}
	if !o.Insecure {
		if f.ca, err = newFleetCA(o.Dir, []string{o.Host, "localhost"}); err != nil {
			return nil, fmt.Errorf("fleet CA: %w", err)
		}
		files, err := f.ca.issue("etcd", "etcd/etcd")
		if err != nil {
			return nil, err
		}
		ecfg.TLS = &files
		if f.admin, err = f.ca.client("admin", "admin/admin"); err != nil {
			return nil, err
		}
		if f.upstream, err = f.ca.client("upstream", "upstream/upstream"); err != nil {
			return nil, err
		}
	}
	if f.etcd, err = etcdx.StartEmbedded(ecfg); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	storeDir := filepath.Join(o.Dir, "store")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return nil, err
	}
	f.storeURL = "file://" + storeDir

	fc := defaultFleetConfig()
	setAddrs := func(c *svc.Common, grpcPort int) {
		c.GRPCAddr, c.HTTPAddr, c.LogLevel = addr(grpcPort), addr(0), o.LogLevel
		c.Security = svc.Security{Insecure: o.Insecure}
	}
	setAddrs(&fc.MetaServer.Common, o.MetaPort)
	setAddrs(&fc.SchemaRegistry.Common, 0)
	setAddrs(&fc.APIServer.Common, o.APIPort)
	if o.Tune != nil {
		o.Tune(&fc)
	}
	fc.shareTenantDefaults()
	f.stopTo = fc.MetaServer.StopTimeout
	// start builds and starts one service, with its own certificate.
	start := func(name, target string, c *fleetConfig) (fleetService, error) {
		t, _ := findTarget(target)
		common := t.common(c)
		if f.ca != nil {
			if err := f.ca.member(common, name, auth.Role(target)); err != nil {
				return nil, err
			}
		}
		e, closeEnv, err := openEnv(ctx, o.Log.With("instance", name), target, []string{f.etcd.Endpoint}, common.Security, f.storeURL, f.storeURL)
		if err != nil {
			return nil, err
		}
		stopEncryption, err := encryptPool(ctx, &e, c.Encryption, c.TenantDefaults)
		if err != nil {
			closeEnv()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		f.closers = append(f.closers, func() { stopEncryption(); closeEnv() })
		if o.Wrap != nil {
			e.buffer, e.pool = o.Wrap(e.buffer), o.Wrap(e.pool)
		}
		s, err := t.build(c, e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := s.Start(ctx); err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		f.members = append(f.members, member{name, s, e.reg})
		return s, nil
	}
	// The same start order as separate processes need (each service after
	// the ones it talks to: startOrder), with several sorters and
	// dispatchers, each its own worker id.
	for _, t := range startOrder() {
		switch t.name {
		case "meta-server":
			f.meta, err = start(t.name, t.name, &fc)
		case "schema-registry":
			f.registry, err = start(t.name, t.name, &fc)
		case "api-server":
			c := fc
			c.APIServer.SchemaRegistryAddr = f.registry.GRPCAddr()
			f.api, err = start(t.name, t.name, &c)
		case "sorter":
			for i := 1; i <= o.Sorters && err == nil; i++ {
				c := fc
				c.Sorter.ID = "sorter-" + strconv.Itoa(i)
				c.Sorter.DataDir = filepath.Join(o.Dir, c.Sorter.ID)
				setAddrs(&c.Sorter.Common, 0)
				_, err = start(c.Sorter.ID, t.name, &c)
			}
		case "dispatcher":
			for i := 1; i <= o.Dispatchers && err == nil; i++ {
				c := fc
				c.Dispatcher.ID = "dispatcher-" + strconv.Itoa(i)
				setAddrs(&c.Dispatcher.Common, 0)
				_, err = start(c.Dispatcher.ID, t.name, &c)
			}
		default:
			err = fmt.Errorf("tistream up does not know how to run %s", t.name)
		}
		if err != nil {
			return nil, err
		}
	}
	return f, nil
}

// services are the fleet's services, in start order.
func (f *fleet) services() []svc.Service {
	out := make([]svc.Service, len(f.members))
	for i, m := range f.members {
		out[i] = m.s
	}
	return out
}

// stop stops the services in reverse start order, each gracefully within
// the stop timeout, then etcd.
func (f *fleet) stop(ctx context.Context) error {
	var errs []error
	for i := len(f.members) - 1; i >= 0; i-- {
		m := f.members[i]
		sctx, cancel := context.WithTimeout(ctx, max(f.stopTo, time.Second))
		if err := m.s.Stop(sctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", m.name, err))
		}
		cancel()
	}
	f.members = nil
	for _, c := range f.closers {
		c()
	}
	f.closers = nil
	if f.etcd != nil {
		f.etcd.Close()
		f.etcd = nil
	}
	return errors.Join(errs...)
}
