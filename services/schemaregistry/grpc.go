package schemaregistry

import (
	"context"

	"github.com/tistream/tistream/libs/schema"
	schemav1 "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// api answers SchemaRegistryService from the tenants' histories.
type api struct {
	schemav1.UnimplementedSchemaRegistryServiceServer
	s *Service
}

// withHistory runs fn on the tenant's history under its read lock.
func (a *api) withHistory(tenantID uint64, fn func(h *schema.History) error) error {
	if tenantID == 0 {
		return status.Error(codes.InvalidArgument, "tenant_id is required")
	}
	t := a.s.tenant(tenantID)
	if t == nil {
		return status.Errorf(codes.NotFound, "tenant %d is not registered", tenantID)
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.hist == nil {
		return status.Errorf(codes.FailedPrecondition, "tenant %d: the registry has not loaded its schema history yet; retry", tenantID)
	}
	return fn(t.hist)
}

// at resolves a request's ts against what the history knows: 0 is its
// resolved ts; below its floor is OUT_OF_RANGE, above its resolved ts
// FAILED_PRECONDITION (retry later).
func at(h *schema.History, ts uint64) (uint64, error) {
	if ts == 0 {
		ts = h.Resolved()
	}
	if ts < h.Floor() {
		return 0, status.Errorf(codes.OutOfRange, "tenant %d: ts %d is below the registry's floor %d (schema versions older than the retention window are dropped)", h.Tenant, ts, h.Floor())
	}
	if ts > h.Resolved() {
		return 0, status.Errorf(codes.FailedPrecondition, "tenant %d: schema at ts %d is not known yet; the registry has read up to %d", h.Tenant, ts, h.Resolved())
	}
	return ts, nil
}

func tableProto(h *schema.History, t schema.Table, ts uint64) *schemav1.Table {
	out := &schemav1.Table{Id: t.Info.ID, DbId: t.DBID, Name: t.Info.Name.O, InfoJson: t.Raw,
		SchemaVersion: h.SchemaVersionAt(ts), VersionTs: t.Ts}
	if d, ok := h.DB(t.DBID, ts); ok {
		out.DbName = d.Info.Name.O
	}
	return out
}

func (a *api) GetTableSchema(_ context.Context, req *schemav1.GetTableSchemaRequest) (*schemav1.GetTableSchemaResponse, error) {
	if req.TableId <= 0 && req.TenantId != 0 {
		return nil, status.Errorf(codes.InvalidArgument, "table_id must be positive, got %d", req.TableId)
	}
	resp := &schemav1.GetTableSchemaResponse{}
	err := a.withHistory(req.TenantId, func(h *schema.History) error {
		ts, err := at(h, req.Ts)
		if err != nil {
			return err
		}
		t, ok := h.Table(req.TableId, ts)
		if !ok {
			return status.Errorf(codes.NotFound, "tenant %d: table %d does not exist at ts %d", req.TenantId, req.TableId, ts)
		}
		resp.Table = tableProto(h, t, ts)
		return nil
	})
	return resp, err
}

func (a *api) ListDBs(_ context.Context, req *schemav1.ListDBsRequest) (*schemav1.ListDBsResponse, error) {
	resp := &schemav1.ListDBsResponse{}
	err := a.withHistory(req.TenantId, func(h *schema.History) error {
		ts, err := at(h, req.Ts)
		if err != nil {
			return err
		}
		for _, d := range h.DBs(ts) {
			resp.Dbs = append(resp.Dbs, &schemav1.Database{Id: d.Info.ID, Name: d.Info.Name.O, InfoJson: d.Raw})
		}
		resp.SchemaVersion = proto.Int64(h.SchemaVersionAt(ts))
		return nil
	})
	return resp, err
}

func (a *api) ListTables(_ context.Context, req *schemav1.ListTablesRequest) (*schemav1.ListTablesResponse, error) {
	if req.DbName == "" && req.TenantId != 0 {
		return nil, status.Error(codes.InvalidArgument, "db_name is required")
	}
	resp := &schemav1.ListTablesResponse{}
	err := a.withHistory(req.TenantId, func(h *schema.History) error {
		ts, err := at(h, req.Ts)
		if err != nil {
			return err
		}
		d, ok := h.DBByName(req.DbName, ts)
		if !ok {
			return status.Errorf(codes.NotFound, "tenant %d: database %q does not exist at ts %d", req.TenantId, req.DbName, ts)
		}
		for _, t := range h.Tables(d.Info.ID, ts) {
			if !req.WithoutInfo && !req.IdsOnly {
				resp.Tables = append(resp.Tables, tableProto(h, t, ts))
				continue
			}
			phys, err := t.Info.PhysicalIDs()
			if err != nil {
				return status.Errorf(codes.Internal, "tenant %d: table %d: %v", req.TenantId, t.Info.ID, err)
			}
			own := len(phys) == 1 && phys[0] == t.Info.ID
			if req.IdsOnly && own {
				resp.TableIds = append(resp.TableIds, t.Info.ID)
				continue
			}
			tp := tableProto(h, t, ts)
			tp.InfoJson = nil
			if !own {
				tp.PhysicalIds = phys
			}
			resp.Tables = append(resp.Tables, tp)
		}
		resp.SchemaVersion = proto.Int64(h.SchemaVersionAt(ts))
		return nil
	})
	return resp, err
}

// GetSchemaChanges returns the changes in (from_ts, to_ts]. to_ts 0, or
// beyond what the registry has read, means "as far as it has read": the
// answer's resolved_ts says how far that is. An answer longer than
// MaxChanges is cut after a whole commit ts, and resolved_ts is then that
// ts, so a caller continues from it.
func (a *api) GetSchemaChanges(_ context.Context, req *schemav1.GetSchemaChangesRequest) (*schemav1.GetSchemaChangesResponse, error) {
	if req.ToTs != 0 && req.ToTs < req.FromTs && req.TenantId != 0 {
		return nil, status.Errorf(codes.InvalidArgument, "to_ts %d is below from_ts %d", req.ToTs, req.FromTs)
	}
	resp := &schemav1.GetSchemaChangesResponse{}
	err := a.withHistory(req.TenantId, func(h *schema.History) error {
		if req.FromTs < h.Floor() {
			return status.Errorf(codes.OutOfRange, "tenant %d: from_ts %d is below the registry's floor %d (schema changes older than the retention window are dropped)", req.TenantId, req.FromTs, h.Floor())
		}
		// Changes are complete, jobs included, up to ChangesResolved.
		resp.ResolvedTs, resp.FloorTs = h.ChangesResolved(), h.Floor()
		to := req.ToTs
		if to == 0 || to > resp.ResolvedTs {
			to = resp.ResolvedTs
		}
		cs := h.Changes(req.FromTs, to)
		if limit := a.s.cfg.MaxChanges; len(cs) > limit {
			cut := cs[limit-1].CommitTs
			n := limit
			for n < len(cs) && cs[n].CommitTs == cut {
				n++
			}
			cs, resp.ResolvedTs = cs[:n], cut
		}
		resp.Changes = make([]*schemav1.SchemaChange, len(cs))
		for i, c := range cs {
			resp.Changes[i] = changeProto(c)
		}
		return nil
	})
	return resp, err
}

// changeProto maps a change to the API. The API has no kind for an altered
// database: it goes out as KIND_VERSION carrying the database's id, name
// and new DBInfo (docs/fleet.md).
func changeProto(c schema.Change) *schemav1.SchemaChange {
	kind := schemav1.SchemaChange_Kind(c.Kind)
	if c.Kind == schema.ChangeAlterDB {
		kind = schemav1.SchemaChange_KIND_VERSION
	}
	out := &schemav1.SchemaChange{CommitTs: c.CommitTs, SchemaVersion: c.SchemaVersion, Kind: kind,
		DbId: c.DBID, TableId: c.TableID, DbName: c.DBName, TableName: c.TableName, InfoJson: c.Info,
		OldDbId: c.OldDBID, OldDbName: c.OldDBName, OldTableName: c.OldTableName}
	if j := c.Job; j != nil {
		out.Job = &schemav1.DDLJob{Id: j.ID, Type: int32(j.Type), State: int32(j.State), SchemaId: j.SchemaID,
			TableId: j.TableID, SchemaName: j.SchemaName, TableName: j.TableName, Query: j.Query, CommitTs: j.CommitTs}
	}
	return out
}
