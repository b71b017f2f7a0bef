// Package pull reads a tenant's committed data pool as a change stream:
// rows of one table, one database or the whole tenant from a start ts, in
// commit order, each with the schema version valid at its commit_ts (rebuilt
// from the pool's schema snapshot and the meta range's committed rows), and
// the resolved ts after them.
package pull

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/schema"
	"github.com/tistream/tistream/libs/tidbcodec"
)

// Request says what to pull.
type Request struct {
	Tenant uint64
	Table  int64  // a table id, or 0
	DB     string // a database name, or ""
	From   uint64 // rows with commit_ts >= From
}

// Row is a pulled row with its table and schema version.
type Row struct {
	pool.Row
	TableID       int64
	SchemaVersion int64
}

// A pull's memory: entriesPerPoll (and the api-server's default bytes,
// pool.DefaultMaxBytesPerPoll) bound the publications a Next reads per
// range, so a pull far behind catches up in steps of bounded memory, and
// cacheBytes the decoded publications kept for the ranges that share them.
const (
	entriesPerPoll = 4
	cacheBytes     = 16 << 20
)

// ErrUnknown means the table or database does not exist at the start ts.
var ErrUnknown = errors.New("unknown table or database")

// Stream is an open pull.
type Stream struct {
	req      Request
	data     *pool.Puller
	meta     *schema.MetaFollower
	hist     *schema.History   // part of the tenant's schema (schema.go)
	byDB     map[int64][]int64 // database pulls, until the database is resolved: the tables of snapshot databases of its name
	touched  map[int64]bool    // database pulls: tables a meta change wrote
	dbTables []int64           // database pulls: the database's tables in the snapshot, sorted
	metaAt   uint64            // meta range resolved ts reached
	metaDone bool              // meta puller caught up at its last poll
	dbID     int64
	held     []pool.Row // rows above the meta range's resolved ts
	dataAt   uint64     // data pullers' resolved ts
	resolved uint64     // last resolved ts returned
}

// Open starts a pull.
func Open(ctx context.Context, store objstore.Store, req Request) (*Stream, error) {
	snap, err := readSnapshot(ctx, store, req.Tenant)
	if err != nil {
		return nil, err
	}
	hist, byDB, err := snap.partialHistory(req)
	if err != nil {
		return nil, err
	}
	if hist.Tenant != req.Tenant {
		return nil, fmt.Errorf("%s: schema snapshot of tenant %d", snap.key, hist.Tenant)
	}
	s := &Stream{req: req, hist: hist}
	if req.DB != "" {
		s.byDB, s.touched = byDB, map[int64]bool{}
	}
	// The meta range and the data share their groups' publications: one
	// cache for both readers.
	opts := pool.ReadOptions{Cache: pool.NewCache(cacheBytes), MaxEntriesPerPoll: entriesPerPoll, MaxBytesPerPoll: pool.DefaultMaxBytesPerPoll}
	if s.meta, err = schema.FollowMetaWith(ctx, store, req.Tenant, hist.Resolved()+1, opts); err != nil {
		return nil, err
	}
	if err := s.advanceMeta(ctx, req.From); err != nil {
		return nil, err
	}
	at := max(req.From, s.hist.Floor())
	start, end := []byte("t"), []byte("u")
	filter := func(k []byte) bool { return tidbcodec.ClassifyKey(k) == tidbcodec.KeyRecord }
	switch {
	case req.Table != 0:
		if _, ok := s.hist.Table(req.Table, at); !ok {
			return nil, fmt.Errorf("tenant %d: table %d does not exist at ts %d: %w", req.Tenant, req.Table, at, ErrUnknown)
		}
		span := tidbcodec.TableRecordSpan(req.Table)
		start, end, filter = span.Start, span.End, span.Contains
	case req.DB != "":
		db, ok := s.hist.DBByName(req.DB, at)
		if !ok {
			return nil, fmt.Errorf("tenant %d: database %q does not exist at ts %d: %w", req.Tenant, req.DB, at, ErrUnknown)
		}
		s.dbID = db.Info.ID
		s.dbTables = s.byDB[s.dbID] // none when the database is newer than the snapshot
		s.byDB = nil
	}
	if s.data, err = pool.NewPullerWith(ctx, store, req.Tenant, start, end, filter, req.From,
		opts); err != nil {
		return nil, err
	}
	return s, nil
}

// advanceMeta applies the meta range's rows until its resolved ts reaches
// ts, or until it has nothing more for now (then metaDone is set).
func (s *Stream) advanceMeta(ctx context.Context, ts uint64) error {
	for s.metaAt < ts || !s.metaDone {
		b, err := s.meta.Poll(ctx)
		if err != nil {
			return err
		}
		if err := s.seedTouched(b); err != nil {
			return err
		}
		if _, err := s.hist.ApplyBatch(b); err != nil {
			return err
		}
		s.metaAt = b.Resolved
		s.metaDone = b.CaughtUp
		if b.CaughtUp {
			return nil
		}
	}
	return nil
}

// Next returns the rows that became complete since the last call, in commit
// order, and the resolved ts after them (unchanged if nothing moved). Rows
// wait until the meta range has been read past them, so each is paired with
// the schema version valid at its commit_ts even when the meta range lives
// in another range than the data. caughtUp is true when every range followed
// is at its log's head and nothing is held back.
func (s *Stream) Next(ctx context.Context) (rows []Row, resolved uint64, caughtUp bool, err error) {
	raw, res, dataDone, err := s.data.Poll(ctx)
	if err != nil {
		return nil, 0, false, err
	}
	s.held = append(s.held, raw...)
	s.dataAt = max(s.dataAt, res)
	if err := s.advanceMeta(ctx, s.dataAt); err != nil {
		return nil, 0, false, err
	}
	limit := min(s.dataAt, s.metaAt)
	n := 0
	for ; n < len(s.held) && s.held[n].CommitTs <= limit; n++ {
		r := s.held[n]
		id, err := tidbcodec.DecodeTableID(r.Key)
		if err != nil {
			return nil, 0, false, fmt.Errorf("pulled key %x: %w", r.Key, err)
		}
		if s.dbID != 0 && !s.inDB(id, r.CommitTs) {
			continue
		}
		rows = append(rows, Row{Row: r, TableID: id, SchemaVersion: s.hist.SchemaVersionAt(r.CommitTs)})
	}
	s.held = s.held[n:]
	s.resolved = max(s.resolved, limit)
	return rows, s.resolved, dataDone && s.metaDone && len(s.held) == 0, nil
}

// seedTouched, in a database pull, adds to the history each table of the
// pulled database's snapshot (or, before it is resolved, of the snapshot
// databases with its name) that the batch writes for the first time, and
// notes every table the batch writes.
func (s *Stream) seedTouched(b schema.MetaBatch) error {
	if s.touched == nil {
		return nil
	}
	for i := range b.Rows {
		id, ok := metaTable(b.Rows[i].Key)
		if !ok || s.touched[id] {
			continue
		}
		s.touched[id] = true
		if db, ok := s.snapshotDB(id); ok {
			if err := s.hist.SeedTableID(db, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// snapshotDB returns the database table id was in in the snapshot, if it
// was the pulled one (before it is resolved: one named as it).
func (s *Stream) snapshotDB(id int64) (int64, bool) {
	if s.byDB == nil {
		_, ok := slices.BinarySearch(s.dbTables, id)
		return s.dbID, ok
	}
	for db, ids := range s.byDB {
		if _, ok := slices.BinarySearch(ids, id); ok {
			return db, true
		}
	}
	return 0, false
}

// inDB tells whether table id is in the pulled database at ts: as the
// history says when a change wrote the table, as the snapshot says when none
// did.
func (s *Stream) inDB(id int64, ts uint64) bool {
	if s.touched[id] {
		t, ok := s.hist.Table(id, ts)
		return ok && t.DBID == s.dbID
	}
	_, ok := slices.BinarySearch(s.dbTables, id)
	return ok && ts >= s.hist.BaseTs()
}
