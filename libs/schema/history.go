package schema

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"

	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// DB is one version of a database: Info is nil from a drop on.
type DB struct {
	Ts   uint64
	Info *tidbcodec.DBInfo
	Raw  json.RawMessage
}

// Table is one version of a table: Info is nil from a drop on.
type Table struct {
	Ts   uint64
	DBID int64
	Info *tidbcodec.TableInfo
	Raw  json.RawMessage
}

// History is the schema of one tenant over time. Changes must be applied in
// commit order. It is not safe for concurrent use.
type History struct {
	Tenant   uint64
	dbs      map[int64][]DB
	tables   map[int64][]Table
	versions []versionPoint
	floor    uint64 // the history answers for ts >= floor
	last     uint64 // commit ts of the last applied change
}

type versionPoint struct {
	ts      uint64
	version int64
}

// New returns an empty history; load a snapshot before applying changes.
func New(tenant uint64) *History {
	return &History{Tenant: tenant, dbs: map[int64][]DB{}, tables: map[int64][]Table{}}
}

// Floor is the oldest ts the history can answer for.
func (h *History) Floor() uint64 { return h.floor }

// LoadSnapshot sets the schema at the snapshot's ts.
func (h *History) LoadSnapshot(s *schemasnap.Snapshot) error {
	if s.Header.TenantId != h.Tenant {
		return fmt.Errorf("schema snapshot of tenant %d loaded into tenant %d", s.Header.TenantId, h.Tenant)
	}
	ts := s.Header.Ts
	for _, o := range s.Objects {
		switch o.Kind {
		case formatv1.SchemaObject_KIND_DATABASE:
			if err := h.putDB(ts, o.DbId, o.InfoJson); err != nil {
				return err
			}
		case formatv1.SchemaObject_KIND_TABLE:
			if err := h.putTable(ts, o.DbId, o.InfoJson); err != nil {
				return err
			}
		}
	}
	h.versions = append(h.versions[:0], versionPoint{ts: ts, version: s.Header.SchemaVersion})
	h.floor, h.last = ts, ts
	return nil
}

func (h *History) putDB(ts uint64, id int64, raw []byte) error {
	info := &tidbcodec.DBInfo{}
	if err := json.Unmarshal(raw, info); err != nil {
		return fmt.Errorf("DBInfo of db %d at %d: %w", id, ts, err)
	}
	if info.ID != id {
		return fmt.Errorf("DBInfo at field DB:%d has id %d", id, info.ID)
	}
	h.dbs[id] = appendVersion(h.dbs[id], DB{Ts: ts, Info: info, Raw: slices.Clone(raw)}, func(d DB) uint64 { return d.Ts })
	return nil
}

func (h *History) putTable(ts uint64, dbID int64, raw []byte) error {
	info := &tidbcodec.TableInfo{}
	if err := json.Unmarshal(raw, info); err != nil {
		return fmt.Errorf("TableInfo in db %d at %d: %w", dbID, ts, err)
	}
	h.tables[info.ID] = appendVersion(h.tables[info.ID], Table{Ts: ts, DBID: dbID, Info: info, Raw: slices.Clone(raw)}, func(t Table) uint64 { return t.Ts })
	return nil
}

// appendVersion adds v, replacing a version at the same ts (one transaction
// writing a key twice keeps the last write).
func appendVersion[T any](vs []T, v T, ts func(T) uint64) []T {
	if n := len(vs); n > 0 && ts(vs[n-1]) == ts(v) {
		vs[n-1] = v
		return vs
	}
	return append(vs, v)
}

// ApplyMeta applies one committed change of the meta range. Keys the schema
// does not depend on (DDL job queues, id allocators, ...) are ignored.
// It reports whether the schema changed.
func (h *History) ApplyMeta(commitTs uint64, key []byte, op formatv1.Op, value []byte) (bool, error) {
	if commitTs < h.last {
		return false, fmt.Errorf("meta change at %d applied after %d: changes must come in commit order", commitTs, h.last)
	}
	if commitTs <= h.floor {
		return false, nil // already in the snapshot
	}
	mk, err := tidbcodec.DecodeMetaKey(key)
	if err != nil {
		return false, fmt.Errorf("meta key %x at %d: %w", key, commitTs, err)
	}
	h.last = commitTs
	switch {
	case mk.Type == tidbcodec.MetaStringData && string(mk.Key) == tidbcodec.MetaSchemaVersion:
		if op != formatv1.Op_OP_PUT {
			return false, nil
		}
		v, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil {
			return false, fmt.Errorf("schema version %q at %d: %w", value, commitTs, err)
		}
		h.versions = appendVersion(h.versions, versionPoint{ts: commitTs, version: v}, func(p versionPoint) uint64 { return p.ts })
		return true, nil
	case mk.Type != tidbcodec.MetaHashData:
		return false, nil
	case string(mk.Key) == tidbcodec.MetaDBs:
		id, err := tidbcodec.ParseDBField(string(mk.Field))
		if err != nil {
			return false, nil // another field of hash DBs
		}
		if op == formatv1.Op_OP_DELETE {
			h.dbs[id] = appendVersion(h.dbs[id], DB{Ts: commitTs}, func(d DB) uint64 { return d.Ts })
			return true, nil
		}
		return true, h.putDB(commitTs, id, value)
	}
	dbID, err := tidbcodec.ParseDBField(string(mk.Key))
	if err != nil {
		return false, nil
	}
	tableID, err := tidbcodec.ParseTableField(string(mk.Field))
	if err != nil {
		return false, nil // auto-id counters and other fields of the hash
	}
	if op == formatv1.Op_OP_DELETE {
		h.tables[tableID] = appendVersion(h.tables[tableID], Table{Ts: commitTs, DBID: dbID}, func(t Table) uint64 { return t.Ts })
		return true, nil
	}
	return true, h.putTable(commitTs, dbID, value)
}

// at returns the version of vs valid at ts (the last with Ts <= ts).
func at[T any](vs []T, ts uint64, tsOf func(T) uint64) (T, bool) {
	i := sort.Search(len(vs), func(i int) bool { return tsOf(vs[i]) > ts })
	if i == 0 {
		var zero T
		return zero, false
	}
	return vs[i-1], true
}

// SchemaVersionAt is the schema version valid for a row committed at ts.
func (h *History) SchemaVersionAt(ts uint64) int64 {
	p, ok := at(h.versions, ts, func(p versionPoint) uint64 { return p.ts })
	if !ok {
		return 0
	}
	return p.version
}

// Table returns the table's schema valid at ts.
func (h *History) Table(id int64, ts uint64) (Table, bool) {
	t, ok := at(h.tables[id], ts, func(t Table) uint64 { return t.Ts })
	return t, ok && t.Info != nil
}

// DB returns the database valid at ts.
func (h *History) DB(id int64, ts uint64) (DB, bool) {
	d, ok := at(h.dbs[id], ts, func(d DB) uint64 { return d.Ts })
	return d, ok && d.Info != nil
}

// DBs lists the databases that exist at ts, by id.
func (h *History) DBs(ts uint64) []DB {
	var out []DB
	for _, id := range slices.Sorted(maps.Keys(h.dbs)) {
		if d, ok := h.DB(id, ts); ok {
			out = append(out, d)
		}
	}
	return out
}

// DBByName finds a database by name (case-insensitive, as MySQL) at ts.
func (h *History) DBByName(name string, ts uint64) (DB, bool) {
	l := tidbcodec.NewCIStr(name).L
	for _, d := range h.DBs(ts) {
		if d.Info.Name.L == l {
			return d, true
		}
	}
	return DB{}, false
}

// Tables lists the tables of a database at ts, by id.
func (h *History) Tables(dbID int64, ts uint64) []Table {
	var out []Table
	for _, id := range slices.Sorted(maps.Keys(h.tables)) {
		if t, ok := h.Table(id, ts); ok && t.DBID == dbID {
			out = append(out, t)
		}
	}
	return out
}

// TableIDsSince lists every table that belongs to the database at ts or at
// any later point: what a pull of the database from ts must cover.
func (h *History) TableIDsSince(dbID int64, ts uint64) []int64 {
	var out []int64
	for _, id := range slices.Sorted(maps.Keys(h.tables)) {
		vs := h.tables[id]
		for i, v := range vs {
			end := ^uint64(0)
			if i+1 < len(vs) {
				end = vs[i+1].Ts
			}
			if v.Info != nil && v.DBID == dbID && end > ts {
				out = append(out, id)
				break
			}
		}
	}
	return out
}
