package apiserver

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/tidbcodec"
	schemav1 "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// spec is what a pull asks for.
type spec struct {
	kind    string
	tenant  uint64
	tableID int64  // table pulls by id
	db      string // table pulls by name, db pulls
	table   string // table pulls by name
	start   uint64
}

// target is a resolved pull: the keys to read and the schema to follow.
type target struct {
	span   tidbcodec.Span
	filter pool.Filter
	sch    *schemaFollower
}

var recordKeys pool.Filter = func(k []byte) bool { return tidbcodec.ClassifyKey(k) == tidbcodec.KeyRecord }

// tenantSpan holds every table key of a tenant ("t" ... "u").
var tenantSpan = tidbcodec.Span{Start: []byte("t"), End: []byte("u")}

// resolve finds the pulled table or database at ts (the registry has read
// past it) and prepares the schema to follow from base.
func (s *Service) resolve(ctx context.Context, sp spec, ts, base uint64) (target, error) {
	sch := &schemaFollower{s: s, tenant: sp.tenant, kind: sp.kind, known: base}
	switch sp.kind {
	case kindTable:
		t, err := s.findTable(ctx, sp, ts)
		if err != nil {
			return target{}, err
		}
		sch.table, sch.version = t.Id, t.SchemaVersion
		if partitioned(t.InfoJson) {
			// Partitions are keyed by their own ids, anywhere in the
			// tenant's key space: read it all, keep the partitions.
			sch.member = newMembers()
			sch.member.set(t.Id, t.InfoJson)
			return target{span: tenantSpan, filter: recordKeys, sch: sch}, nil
		}
		span := tidbcodec.TableRecordSpan(t.Id)
		return target{span: span, filter: span.Contains, sch: sch}, nil
	case kindDB:
		dbs, err := retry(ctx, s, func(ctx context.Context) (*schemav1.ListDBsResponse, error) {
			return call(ctx, s, "ListDBs", func(ctx context.Context) (*schemav1.ListDBsResponse, error) {
				return s.schema.ListDBs(ctx, &schemav1.ListDBsRequest{TenantId: sp.tenant, Ts: ts})
			})
		})
		if err != nil {
			return target{}, registryStatus(err, "tenant %d at ts %d", sp.tenant, ts)
		}
		sch.db = -1
		for _, d := range dbs.Dbs {
			if strings.EqualFold(d.Name, sp.db) {
				sch.db = d.Id
			}
		}
		if sch.db < 0 {
			return target{}, status.Errorf(codes.NotFound, "tenant %d: database %q does not exist at ts %d", sp.tenant, sp.db, ts)
		}
		// Ids only: the TableInfos of a large database exceed a message,
		// and the pull follows tables by id.
		listed, err := s.listTableIDs(ctx, sp.tenant, sp.db, ts)
		if err != nil {
			return target{}, err
		}
		sch.member = newMembers()
		sch.member.setBase(listed.TableIds)
		for _, t := range listed.Tables {
			sch.member.add(t)
			sch.version = max(sch.version, t.SchemaVersion)
		}
		if listed.SchemaVersion != nil {
			sch.version = listed.GetSchemaVersion()
		}
		return target{span: tenantSpan, filter: recordKeys, sch: sch}, nil
	default:
		v, err := s.tenantVersion(ctx, sp.tenant, ts)
		if err != nil {
			return target{}, err
		}
		sch.version = v
		return target{span: tenantSpan, filter: recordKeys, sch: sch}, nil
	}
}

// findTable resolves a table pull's table at ts, by id or by names.
func (s *Service) findTable(ctx context.Context, sp spec, ts uint64) (*schemav1.Table, error) {
	if sp.tableID == 0 {
		// Find the id by name in a listing without TableInfos (small), then
		// read the table's as by id.
		tables, err := s.listTables(ctx, sp.tenant, sp.db, ts, true)
		if err != nil {
			return nil, err
		}
		for _, t := range tables {
			if strings.EqualFold(t.Name, sp.table) {
				sp.tableID = t.Id
				break
			}
		}
		if sp.tableID == 0 {
			return nil, status.Errorf(codes.NotFound, "tenant %d: table %s.%s does not exist at ts %d", sp.tenant, sp.db, sp.table, ts)
		}
	}
	resp, err := retry(ctx, s, func(ctx context.Context) (*schemav1.GetTableSchemaResponse, error) {
		return call(ctx, s, "GetTableSchema", func(ctx context.Context) (*schemav1.GetTableSchemaResponse, error) {
			return s.schema.GetTableSchema(ctx, &schemav1.GetTableSchemaRequest{TenantId: sp.tenant, TableId: sp.tableID, Ts: ts})
		})
	})
	if err != nil {
		return nil, registryStatus(err, "tenant %d: table %d at ts %d", sp.tenant, sp.tableID, ts)
	}
	t := resp.GetTable()
	if t == nil || t.Id != sp.tableID {
		return nil, status.Errorf(codes.Unavailable, "schema registry answered table %d for table %d", t.GetId(), sp.tableID)
	}
	if (sp.db != "" && !strings.EqualFold(sp.db, t.DbName)) || (sp.table != "" && !strings.EqualFold(sp.table, t.Name)) {
		return nil, status.Errorf(codes.InvalidArgument, "table_id %d is %s.%s at ts %d, not %s.%s",
			t.Id, t.DbName, t.Name, ts, orAny(sp.db), orAny(sp.table))
	}
	return t, nil
}

func orAny(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// listTables lists a database's tables at ts; withoutInfo leaves their
// TableInfos out (a registry built before without_info sends them anyway).
func (s *Service) listTables(ctx context.Context, tenant uint64, db string, ts uint64, withoutInfo bool) ([]*schemav1.Table, error) {
	resp, err := s.listTablesCall(ctx, &schemav1.ListTablesRequest{TenantId: tenant, DbName: db, Ts: ts, WithoutInfo: withoutInfo})
	if err != nil {
		return nil, err
	}
	return resp.Tables, nil
}

// listTableIDs lists a database's tables at ts by id: the ids of those
// keyed by their own id, and the partitioned ones (a registry built before
// ids_only lists every table in Tables, without TableInfos if it knows
// without_info).
func (s *Service) listTableIDs(ctx context.Context, tenant uint64, db string, ts uint64) (*schemav1.ListTablesResponse, error) {
	return s.listTablesCall(ctx, &schemav1.ListTablesRequest{TenantId: tenant, DbName: db, Ts: ts, WithoutInfo: true, IdsOnly: true})
}

func (s *Service) listTablesCall(ctx context.Context, req *schemav1.ListTablesRequest) (*schemav1.ListTablesResponse, error) {
	resp, err := retry(ctx, s, func(ctx context.Context) (*schemav1.ListTablesResponse, error) {
		return call(ctx, s, "ListTables", func(ctx context.Context) (*schemav1.ListTablesResponse, error) {
			return s.schema.ListTables(ctx, req)
		})
	})
	if err != nil {
		return nil, registryStatus(err, "tenant %d: database %q at ts %d", req.TenantId, req.DbName, req.Ts)
	}
	return resp, nil
}

// tenantVersion is the tenant's schema version at ts: the registry's
// ListDBs answer carries it. From a registry built before it did, it is
// read off the first table listed (every table carries the tenant's
// version; a tenant without tables has none yet, its first table's
// creation brings one).
func (s *Service) tenantVersion(ctx context.Context, tenant, ts uint64) (int64, error) {
	dbs, err := retry(ctx, s, func(ctx context.Context) (*schemav1.ListDBsResponse, error) {
		return call(ctx, s, "ListDBs", func(ctx context.Context) (*schemav1.ListDBsResponse, error) {
			return s.schema.ListDBs(ctx, &schemav1.ListDBsRequest{TenantId: tenant, Ts: ts})
		})
	})
	if err != nil {
		return 0, registryStatus(err, "tenant %d at ts %d", tenant, ts)
	}
	if dbs.SchemaVersion != nil {
		return dbs.GetSchemaVersion(), nil
	}
	for _, d := range dbs.Dbs {
		tables, err := s.listTables(ctx, tenant, d.Name, ts, true)
		if err != nil {
			return 0, err
		}
		if len(tables) > 0 {
			return tables[0].SchemaVersion, nil
		}
	}
	return 0, nil
}

// firstSnapshotTs is the ts of the oldest schema snapshot in the pool: the
// tenant's registration point, where a pull from ts 0 starts.
func (s *Service) firstSnapshotTs(ctx context.Context, tenant uint64) (uint64, bool, error) {
	prefix := layout.PoolSchemaSnapshotPrefix(tenant)
	objs, _, err := s.store.List(ctx, prefix, "", 1)
	if err != nil || len(objs) == 0 {
		return 0, false, err
	}
	ts, err := strconv.ParseUint(strings.TrimPrefix(objs[0].Key, prefix), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("schema snapshot key %q: %w", objs[0].Key, err)
	}
	return ts, true, nil
}

// defaultStart is where a pull with start_ts 0 starts: the tenant's first
// schema snapshot in the pool, else the registry's floor.
func (s *Service) defaultStart(ctx context.Context, tenant uint64) (uint64, error) {
	ts, ok, err := s.firstSnapshotTs(ctx, tenant)
	if err != nil {
		return 0, s.internalError(codes.Unavailable, "the change data could not be read; "+resumeHint, err)
	}
	if ok {
		return ts, nil
	}
	p, err := s.latest(ctx, tenant)
	if err != nil {
		return 0, registryStatus(err, "tenant %d", tenant)
	}
	return max(p.floor, 1), nil
}
