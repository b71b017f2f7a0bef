package mysqlsink

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tistream/tistream/client"
	tc "github.com/tistream/tistream/libs/tidbcodec"
)

// table is a downstream table as the sink last made it.
type table struct {
	db   string
	info *tc.TableInfo
}

// Sink applies one pull to one downstream database server.
type Sink struct {
	cfg    Config
	id     string
	db     *sql.DB
	cli    *client.Client
	dec    *client.Decoder
	log    *slog.Logger
	m      *metrics
	stderr io.Writer

	tables  map[int64]*table
	skipped map[int64]string // physical ids whose rows the sink passes, and why (skipSystem, skipDropped)
	pos     position         // applied downstream
	skip    position         // a restarted sink's position: events up to it are applied already
	ddlTs   uint64           // commit ts of the last DDL seen, and how many at it
	ddlN    int
	synced  bool // the downstream has every table of the start
	buf     []*client.Row

	lastSync uint64 // the last syncpoint written
	progress progress

	// Tests stop a sink after stopAfter events (errStopped), or once it
	// applied resolved ts stopAt (nil), through cancel.
	stopAfter int
	stopAt    uint64
	cancel    context.CancelFunc
	handled   int
}

// errStopped ends a sink that a test stopped on purpose.
var errStopped = errors.New("sink stopped by the test")

// New prepares a sink; Run starts it.
func New(cfg Config, db *sql.DB, cli *client.Client, log *slog.Logger, reg prometheus.Registerer, stderr io.Writer) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Sink{cfg: cfg, id: cfg.id(), db: db, cli: cli, dec: cli.NewDecoder(cfg.Tenant), log: log, m: newMetrics(reg),
		stderr: stderr, tables: map[int64]*table{}, skipped: map[int64]string{}}, nil
}

// Run applies the pull until ctx ends or something fails; every error is
// final (the client has already retried the stream).
func (s *Sink) Run(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, "SELECT 1"); err != nil {
		return fmt.Errorf("downstream: %w", err)
	}
	if err := setupMeta(ctx, s.db); err != nil {
		return err
	}
	pos, found, err := readPosition(ctx, s.db, s.id)
	if err != nil {
		return err
	}
	from := s.cfg.From
	if found {
		s.pos, s.skip, from = pos, pos, max(pos.start, pos.resolved+1)
		if pos.resolved == 0 {
			from = pos.start
		}
		s.log.Info("sink resuming", "sink", s.id, "resolved_ts", pos.resolved, "applied_ts", pos.ts, "applied_ddls", pos.ddls)
		if pos.resolved > 0 {
			if err := s.loadTables(ctx, pos.resolved, false); err != nil {
				return err
			}
			s.synced = true
		}
	} else {
		s.pos = position{start: from}
	}
	s.lastSync = s.pos.resolved
	target := client.Tenant(s.cfg.Tenant)
	if s.cfg.DB != "" {
		target = client.DB(s.cfg.Tenant, s.cfg.DB)
	}
	s.progress.start(s.pos.resolved)
	waitUntil := time.Now().Add(s.cfg.Wait)
	for {
		err := s.follow(ctx, target, from)
		if errors.Is(err, client.ErrNotFound) && !s.synced && time.Now().Before(waitUntil) {
			// A sink started with its fleet: the tenant (or database) may
			// not be registered yet.
			s.log.Info("sink waits for its tenant or database to appear", "target", target.String(), "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		return err
	}
}

// follow pulls from `from` and applies what comes until ctx ends or an
// error.
func (s *Sink) follow(ctx context.Context, target client.Target, from uint64) error {
	stream, err := s.cli.Pull(ctx, target, from)
	if err != nil {
		return err
	}
	defer stream.Close()
	for {
		ev, err := stream.Next()
		if err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pull %s from %d: %w", target, from, err)
		}
		s.m.reconnects.Set(float64(stream.Reconnects()))
		if err := s.handle(ctx, ev); err != nil {
			return err
		}
		if s.handled++; s.stopAfter > 0 && s.handled >= s.stopAfter {
			return errStopped
		}
		if s.stopAt > 0 && s.pos.resolved >= s.stopAt {
			return nil
		}
	}
}

func (s *Sink) handle(ctx context.Context, ev client.Event) error {
	if !s.synced {
		// The tables that exist at the start come from the schema at the
		// first event (no DDL comes before it); later ones from DDLs.
		at := ev.Ts()
		if ev.Kind != client.EventResolved {
			at--
		}
		if err := s.loadTables(ctx, at, true); err != nil {
			return err
		}
		s.synced = true
	}
	if err := s.dec.Observe(ev); err != nil {
		return err
	}
	switch ev.Kind {
	case client.EventRow:
		r := ev.Row
		if r.CommitTs < s.skip.ts {
			return nil // applied before the restart
		}
		physID, _, keyErr := tc.DecodeRecordKeyHandle(r.Key)
		if why := s.skipped[physID]; keyErr == nil && why != "" {
			s.m.skipped.WithLabelValues(why).Inc()
			return nil
		}
		if len(s.buf) >= s.cfg.MaxBatchRows && r.CommitTs > s.buf[len(s.buf)-1].CommitTs {
			if err := s.flush(ctx, s.positionBefore(r.CommitTs), false); err != nil {
				return err
			}
		}
		row, err := s.dec.Decode(ctx, r)
		if keyErr == nil && (err != nil || s.tables[row.TableID] == nil) {
			// A table the sink does not follow yet. One that exists at the
			// row's commit ts came into a database pull without a DDL the
			// sink applied: it is created below. One that does not is a
			// table dropped (or truncated) before: TiDB on a store without
			// delete-range (unistore) deletes its rows in transactions of
			// its own after the DDL; TiKV drops them raw, unseen.
			exists, lerr := s.existsAt(ctx, physID, r.CommitTs)
			if lerr != nil {
				return lerr
			}
			if !exists {
				s.log.Info("sink passes the rows of a table that no longer exists", "physical_id", physID, "commit_ts", r.CommitTs)
				s.skipped[physID] = skipDropped
				s.m.skipped.WithLabelValues(skipDropped).Inc()
				return nil
			}
		}
		if err != nil {
			return err
		}
		if systemDB(row.DB) { // a table of TiDB's own the sink had not seen
			s.skipTable(row.Schema.Info, skipSystem)
			s.m.skipped.WithLabelValues(skipSystem).Inc()
			return nil
		}
		if err := s.ensureTable(ctx, row); err != nil {
			return err
		}
		s.buf = append(s.buf, row)
	case client.EventDDL:
		return s.ddl(ctx, ev)
	case client.EventResolved:
		R := ev.Resolved
		sync := s.cfg.SyncpointInterval > 0 && physicalMs(R)-physicalMs(s.lastSync) >= s.cfg.SyncpointInterval.Milliseconds()
		if err := s.flush(ctx, position{start: s.pos.start, resolved: R, ts: R}, sync); err != nil {
			return err
		}
		if sync {
			s.lastSync = R
			s.m.syncpoints.Inc()
		}
		s.progress.maybePrint(s.stderr, s.cfg.ProgressEvery, R)
	}
	return nil
}

// positionBefore is the position once every row below ts is applied (and
// the DDLs at ts applied so far).
func (s *Sink) positionBefore(ts uint64) position {
	p := position{start: s.pos.start, resolved: s.pos.resolved, ts: ts}
	if s.ddlTs == ts {
		p.ddls = s.ddlN
	}
	return p
}

// applied records a committed position and its rows.
func (s *Sink) applied(pos position) {
	txns := 0
	now := time.Now()
	for i, r := range s.buf {
		if r.Delete {
			s.m.rows.WithLabelValues("delete").Inc()
		} else {
			s.m.rows.WithLabelValues("put").Inc()
		}
		if i == 0 || r.CommitTs != s.buf[i-1].CommitTs || r.StartTs != s.buf[i-1].StartTs {
			txns++
			s.m.applyLag.Observe(now.Sub(time.UnixMilli(physicalMs(r.CommitTs))).Seconds())
		}
	}
	s.m.txns.Add(float64(txns))
	s.m.flushes.Inc()
	s.progress.add(len(s.buf), txns)
	clear(s.buf)
	s.buf = s.buf[:0]
	s.pos = pos
	s.m.checkpoint.Set(float64(pos.resolved))
	if pos.resolved > 0 {
		s.m.lag.Set(now.Sub(time.UnixMilli(physicalMs(pos.resolved))).Seconds())
	}
}

// loadTables learns the tables at ts from the api-server; with create, it
// also creates them downstream (a new sink's first step).
func (s *Sink) loadTables(ctx context.Context, ts uint64, create bool) error {
	api := s.cli.API()
	dbs, err := listDBs(ctx, api, s.cfg.Tenant, ts)
	if err != nil {
		return err
	}
	for _, db := range dbs {
		if s.cfg.DB != "" && !equalFold(db, s.cfg.DB) {
			continue
		}
		if systemDB(db) {
			infos, err := listTables(ctx, api, s.cfg.Tenant, db, ts)
			if err != nil {
				return err
			}
			for _, info := range infos {
				s.skipTable(info, skipSystem)
			}
			continue
		}
		if create {
			if _, err := s.db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+Quote(db)); err != nil {
				return fmt.Errorf("create database %s: %w", db, err)
			}
		}
		infos, err := listTables(ctx, api, s.cfg.Tenant, db, ts)
		if err != nil {
			return err
		}
		for _, info := range infos {
			if create {
				if err := s.createTable(ctx, db, info); err != nil {
					return err
				}
			}
			s.tables[info.ID] = &table{db: db, info: info}
		}
	}
	return nil
}

// existsAt tells whether a physical table (a table or a partition) exists
// upstream at ts.
func (s *Sink) existsAt(ctx context.Context, physID int64, ts uint64) (bool, error) {
	api := s.cli.API()
	dbs, err := listDBs(ctx, api, s.cfg.Tenant, ts)
	if err != nil {
		return false, err
	}
	for _, db := range dbs {
		infos, err := listTables(ctx, api, s.cfg.Tenant, db, ts)
		if err != nil {
			return false, err
		}
		for _, info := range infos {
			if ids, err := info.PhysicalIDs(); err == nil && slices.Contains(ids, physID) {
				return true, nil
			}
		}
	}
	return false, nil
}

// ensureTable creates a row's table downstream if the sink has not seen it
// (a table that came into a database pull without a DDL the sink applied).
func (s *Sink) ensureTable(ctx context.Context, r *client.Row) error {
	if _, ok := s.tables[r.TableID]; ok {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+Quote(r.DB)); err != nil {
		return fmt.Errorf("create database %s: %w", r.DB, err)
	}
	if err := s.createTable(ctx, r.DB, r.Schema.Info); err != nil {
		return err
	}
	s.log.Info("sink created the table of a row whose CREATE it did not apply", "db", r.DB, "table", r.Table, "table_id", r.TableID,
		"commit_ts", r.CommitTs, "schema_version", r.SchemaVersion)
	s.tables[r.TableID] = &table{db: r.DB, info: r.Schema.Info}
	return nil
}

func (s *Sink) createTable(ctx context.Context, db string, info *tc.TableInfo) error {
	if !tc.IsNullJSON(info.View) || !tc.IsNullJSON(info.Sequence) {
		return nil // views and sequences hold no rows
	}
	q, err := CreateTableSQL(db, info)
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("create table %s.%s: %w", db, info.Name.O, err)
	}
	return nil
}
