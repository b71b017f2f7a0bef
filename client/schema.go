package client

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/tistream/tistream/libs/tidbcodec"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

// TableSchema is a table's definition valid from a schema version on: its
// TiDB TableInfo and what decoding needs from it.
type TableSchema struct {
	DB      string
	Info    *tidbcodec.TableInfo
	Version int64 // the tenant's schema version it is valid from
	// Columns are the public columns in table order: what a row decodes to.
	Columns []*tidbcodec.ColumnInfo
	descs   []tidbcodec.ColumnDesc
	handle  *tidbcodec.ColumnInfo // the int primary key that is the record key's handle
}

func newTableSchema(db string, version int64, info *tidbcodec.TableInfo) *TableSchema {
	ts := &TableSchema{DB: db, Info: info, Version: version, handle: info.HandleColumn()}
	cols := make([]*tidbcodec.ColumnInfo, 0, len(info.Columns))
	for _, c := range info.Columns {
		if c != nil && c.State == tidbcodec.StatePublic {
			cols = append(cols, c)
		}
	}
	sort.SliceStable(cols, func(i, j int) bool { return cols[i].Offset < cols[j].Offset })
	ts.Columns = cols
	for _, c := range cols {
		ts.descs = append(ts.descs, tidbcodec.ColumnDescOf(c))
	}
	return ts
}

// parseTableInfo decodes a TableInfo from the server, refusing what a
// decoder could not use.
func parseTableInfo(raw []byte) (*tidbcodec.TableInfo, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("TableInfo is not a JSON object")
	}
	info := &tidbcodec.TableInfo{}
	if err := json.Unmarshal(raw, info); err != nil {
		return nil, fmt.Errorf("TableInfo: %w", err)
	}
	return info, nil
}

// schemaCache holds each table's versions (ascending) and which table
// each physical id (a partition's, or the table's own) belongs to.
type schemaCache struct {
	mu     sync.Mutex
	tables map[int64][]*TableSchema
	phys   map[int64]int64
}

func newSchemaCache() *schemaCache {
	return &schemaCache{tables: map[int64][]*TableSchema{}, phys: map[int64]int64{}}
}

func (c *schemaCache) put(ts *TableSchema) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := ts.Info.ID
	vs := c.tables[id]
	i := sort.Search(len(vs), func(i int) bool { return vs[i].Version >= ts.Version })
	if i < len(vs) && vs[i].Version == ts.Version {
		vs[i] = ts
	} else {
		vs = append(vs, nil)
		copy(vs[i+1:], vs[i:])
		vs[i] = ts
	}
	// Bounded: a table keeps its latest versions only; rows come in
	// version order, so older ones are not asked for again.
	const keep = 8
	if len(vs) > keep {
		vs = append([]*TableSchema(nil), vs[len(vs)-keep:]...)
	}
	c.tables[id] = vs
	c.phys[id] = id
	if p, err := ts.Info.PhysicalIDs(); err == nil {
		for _, pid := range p {
			c.phys[pid] = id
		}
	}
}

// get is the version of the table holding physical id valid at schema
// version v: the last one at or below v.
func (c *schemaCache) get(physID int64, v int64) (*TableSchema, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.phys[physID]
	if !ok {
		return nil, false
	}
	vs := c.tables[id]
	i := sort.Search(len(vs), func(i int) bool { return vs[i].Version > v })
	if i == 0 {
		return nil, false
	}
	return vs[i-1], true
}

// Schemas answers "which TableInfo decodes this row": from the DDL events
// of the stream (Observe), else from ListDBs and ListTables at the row's
// commit ts. It is safe for concurrent use.
type Schemas struct {
	c      *Client
	tenant uint64
	cache  *schemaCache
}

// NewSchemas is an empty schema cache of a tenant.
func (c *Client) NewSchemas(tenant uint64) *Schemas {
	return &Schemas{c: c, tenant: tenant, cache: newSchemaCache()}
}

// Observe learns the table definitions a DDL event carries. Feed it every
// event of the stream whose rows are decoded (other events are ignored):
// a cached version is used for later schema versions until a DDL of its
// table says otherwise.
func (s *Schemas) Observe(ev Event) error {
	if ev.Kind != EventDDL || len(ev.DDL.TableInfoJson) == 0 {
		return nil
	}
	d := ev.DDL
	info, err := parseTableInfo(d.TableInfoJson)
	if err != nil {
		return fmt.Errorf("tistream: DDL at %d of table %d: %w", d.CommitTs, d.TableId, err)
	}
	if info.ID != d.TableId {
		return fmt.Errorf("tistream: DDL at %d of table %d carries the TableInfo of table %d", d.CommitTs, d.TableId, info.ID)
	}
	s.cache.put(newTableSchema(d.DbName, d.SchemaVersion, info))
	return nil
}

// Table is the schema that decodes a row of physical table physID with
// schema version v, committed at ts.
func (s *Schemas) Table(ctx context.Context, physID int64, v int64, ts uint64) (*TableSchema, error) {
	if t, ok := s.cache.get(physID, v); ok {
		return t, nil
	}
	if err := s.load(ctx, ts); err != nil {
		return nil, err
	}
	if t, ok := s.cache.get(physID, v); ok {
		return t, nil
	}
	return nil, fmt.Errorf("tistream: no table with physical id %d at ts %d (schema version %d)", physID, ts, v)
}

// load caches every table of the tenant at ts.
func (s *Schemas) load(ctx context.Context, ts uint64) error {
	api := s.c.api
	dbs, err := api.ListDBs(ctx, &apiv1.ListDBsRequest{TenantId: s.tenant, Ts: ts})
	if err != nil {
		return fmt.Errorf("tistream: list databases at %d: %w", ts, err)
	}
	for _, db := range dbs.Dbs {
		resp, err := api.ListTables(ctx, &apiv1.ListTablesRequest{TenantId: s.tenant, Db: db.Name, Ts: ts})
		if err != nil {
			return fmt.Errorf("tistream: list tables of %s at %d: %w", db.Name, ts, err)
		}
		for _, t := range resp.Tables {
			info, err := parseTableInfo(t.TableInfoJson)
			if err != nil {
				return fmt.Errorf("tistream: table %s.%s at %d: %w", db.Name, t.Name, ts, err)
			}
			s.cache.put(newTableSchema(db.Name, t.SchemaVersion, info))
		}
	}
	return nil
}
