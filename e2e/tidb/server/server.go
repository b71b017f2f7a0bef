// Package server runs an embedded TiDB on unistore with three stores,
// serving the MySQL protocol on 127.0.0.1, with a capture around its
// stores that writes the store change line protocol.
package server

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	_ "github.com/go-sql-driver/mysql" // the MySQL protocol, for the settings made at start
	"github.com/pingcap/tidb/pkg/config"
	"github.com/pingcap/tidb/pkg/ddl"
	"github.com/pingcap/tidb/pkg/domain"
	"github.com/pingcap/tidb/pkg/kv"
	tidbserver "github.com/pingcap/tidb/pkg/server"
	"github.com/pingcap/tidb/pkg/session"
	"github.com/pingcap/tidb/pkg/sessionctx/vardef"
	"github.com/pingcap/tidb/pkg/store/mockstore"
	"github.com/pingcap/tidb/pkg/store/mockstore/unistore"
	"github.com/pingcap/tidb/pkg/util/logutil"
	"github.com/tikv/client-go/v2/testutils"
	"github.com/tistream/tistream/e2e/tidb/capture"
)

// Options configure a Server.
type Options struct {
	DataDir string // unistore's files and TiDB's log
	Port    int    // MySQL port on 127.0.0.1 (0 = any free one)
	Stores  int    // unistore stores (3)
	Capture capture.Config
	// NoCapture runs TiDB without the capture: no write observer, no
	// stream; the client keeps the in-memory locks of async-commit and 1PC
	// prewrites that unistore lacks (without them TiDB itself loses
	// updates and trips its own assertions). The baseline of the capture's
	// overhead.
	NoCapture bool
	Log       *slog.Logger
}

// Server is a running embedded TiDB with its capture.
type Server struct {
	opts    Options
	Capture *capture.Capture
	Store   kv.Storage
	Dom     *domain.Domain
	cluster *unistore.Cluster
	srv     *tidbserver.Server
	Addr    string // MySQL address
	// StreamStart is the ts of the schema snapshot: every commit above it
	// is in the stream.
	StreamStart uint64
	closed      atomic.Bool
}

// Start boots TiDB (its bootstrap is not in the stream), starts the
// capture's stream (Arm), and serves the MySQL protocol.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Stores <= 0 {
		o.Stores = 3
	}
	if o.Port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		o.Port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	cfg := *config.GetGlobalConfig()
	cfg.Store = config.StoreTypeUniStore
	cfg.Path = filepath.Join(o.DataDir, "unistore")
	cfg.Host = "127.0.0.1"
	cfg.Port = uint(o.Port)
	cfg.Socket = "" // no unix socket: two servers on one machine would share /tmp/tidb-{Port}.sock
	cfg.Status.ReportStatus = false
	cfg.Log.Level = "warn"
	cfg.Log.File.Filename = filepath.Join(o.DataDir, "tidb.log")
	cfg.Log.SlowQueryFile = filepath.Join(o.DataDir, "tidb-slow.log")
	cfg.Instance.TiDBGeneralLog = false
	cfg.SplitTable = true
	cfg.Performance.ForceInitStats = false // stats are off: Run would wait for them forever
	config.StoreGlobalConfig(&cfg)
	if err := logutil.InitLogger(cfg.Log.ToLogConfig()); err != nil {
		return nil, fmt.Errorf("tidb logger: %w", err)
	}
	kv.StandAloneTiDB = true
	atomic.StoreUint32(&ddl.EnableSplitTableRegion, 1)
	vardef.SetSchemaLease(500 * time.Millisecond)
	session.DisableStats4Test()

	if o.NoCapture {
		o.Capture.OnlyConcurrencyManager = true
	}
	s := &Server{opts: o, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)), Capture: capture.New(o.Capture, o.Log.With("part", "capture"))}
	opts := []mockstore.MockTiKVStoreOption{
		mockstore.WithStoreType(mockstore.EmbedUnistore),
		mockstore.WithPath(cfg.Path),
		mockstore.WithClusterInspector(func(c testutils.Cluster) {
			mockstore.BootstrapWithMultiStores(c, o.Stores)
			s.cluster = c.(*unistore.Cluster)
		}),
	}
	store, err := mockstore.NewMockStore(append(opts, mockstore.WithClientHijacker(s.Capture.Hijacker))...)
	if err != nil {
		return nil, fmt.Errorf("unistore: %w", err)
	}
	s.Store = store
	if err := s.Capture.Err(); err != nil {
		store.Close()
		return nil, err
	}
	if s.Dom, err = session.BootstrapSession(store); err != nil {
		store.Close()
		return nil, fmt.Errorf("bootstrap tidb: %w", err)
	}
	if s.srv, err = tidbserver.NewServer(&cfg, tidbserver.NewTiDBDriver(store)); err != nil {
		s.Close()
		return nil, fmt.Errorf("tidb server: %w", err)
	}
	s.srv.SetDomain(s.Dom)
	s.Dom.InfoSyncer().SetSessionManager(s.srv)
	runErr := make(chan error, 1)
	go func() {
		err := s.srv.Run(s.Dom)
		if err != nil && !s.closed.Load() {
			o.Log.Error("tidb server stopped", "err", err)
		}
		runErr <- err
	}()
	if err := s.waitServing(ctx, runErr); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.settle(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if o.NoCapture {
		return s, nil
	}
	if err := s.arm(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) waitServing(ctx context.Context, runErr <-chan error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tidb did not serve within a minute")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-runErr:
			return fmt.Errorf("tidb server: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// settle makes the settings every run needs before the stream starts: GC
// keeps every version the image checks read (unistore runs no GC worker,
// so the safe point row a snapshot read checks is written by hand), and
// async commit and 1PC are on, as TiDB turns them on for TiKV (it leaves
// them off for unistore).
func (s *Server) settle(ctx context.Context) error {
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range []string{
		"SET GLOBAL tidb_gc_life_time = '720h'",
		"REPLACE INTO mysql.tidb VALUES ('tikv_gc_safe_point', '20000101-00:00:00.000 +0000', 'tistream-tidb: no GC runs')",
		"SET GLOBAL tidb_enable_async_commit = ON",
		"SET GLOBAL tidb_enable_1pc = ON",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// arm starts the capture's stream from the mock cluster's stores and
// regions, then takes the schema snapshot's ts.
func (s *Server) arm() error {
	var stores []uint64
	for _, st := range s.cluster.GetAllStores() {
		stores = append(stores, st.Id)
	}
	var regions []capture.Region
	for _, r := range s.cluster.ScanRegions(nil, nil, 0) {
		m := r.Meta
		regions = append(regions, capture.Region{ID: m.Id, Version: m.GetRegionEpoch().GetVersion(),
			ConfVer: m.GetRegionEpoch().GetConfVer(), Start: m.StartKey, End: m.EndKey})
	}
	if err := s.Capture.Arm(stores, regions); err != nil {
		return err
	}
	s.StreamStart = capture.TSO()
	s.opts.Log.Info("stream started", "ts", s.StreamStart, "stores", len(stores), "regions", len(regions))
	return nil
}

// DSN is a go-sql-driver DSN for the server as root.
func (s *Server) DSN(db string) string {
	return "root@tcp(" + s.Addr + ")/" + db
}

// Port is the MySQL port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Close stops TiDB and its store.
func (s *Server) Close() {
	if s.closed.Swap(true) {
		return
	}
	if s.srv != nil {
		s.srv.Close()
	}
	if s.Dom != nil {
		s.Dom.Close()
	}
	if s.Store != nil {
		s.Store.Close()
	}
}
