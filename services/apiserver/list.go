package apiserver

import (
	"context"

	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	schemav1 "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func (h *handler) ListDBs(ctx context.Context, req *apiv1.ListDBsRequest) (*apiv1.ListDBsResponse, error) {
	if req.TenantId == 0 {
		return nil, errNoTenant
	}
	s := h.s
	ts, err := s.listTs(ctx, req.TenantId, req.Ts)
	if err != nil {
		return nil, err
	}
	resp, err := retry(ctx, s, func(ctx context.Context) (*schemav1.ListDBsResponse, error) {
		return call(ctx, s, "ListDBs", func(ctx context.Context) (*schemav1.ListDBsResponse, error) {
			return s.schema.ListDBs(ctx, &schemav1.ListDBsRequest{TenantId: req.TenantId, Ts: ts})
		})
	})
	if err != nil {
		return nil, registryStatus(err, "tenant %d: databases at ts %d", req.TenantId, ts)
	}
	out := &apiv1.ListDBsResponse{Dbs: make([]*apiv1.Database, 0, len(resp.Dbs))}
	for _, d := range resp.Dbs {
		out.Dbs = append(out.Dbs, &apiv1.Database{Id: d.Id, Name: d.Name})
	}
	return out, nil
}

func (h *handler) ListTables(ctx context.Context, req *apiv1.ListTablesRequest) (*apiv1.ListTablesResponse, error) {
	switch {
	case req.TenantId == 0:
		return nil, errNoTenant
	case req.Db == "":
		return nil, status.Error(codes.InvalidArgument, "db is required")
	}
	ts, err := h.s.listTs(ctx, req.TenantId, req.Ts)
	if err != nil {
		return nil, err
	}
	tables, err := h.s.listTables(ctx, req.TenantId, req.Db, ts, false)
	if err != nil {
		return nil, err
	}
	out := &apiv1.ListTablesResponse{Tables: make([]*apiv1.Table, 0, len(tables))}
	for _, t := range tables {
		out.Tables = append(out.Tables, &apiv1.Table{Id: t.Id, Name: t.Name, DbId: t.DbId,
			TableInfoJson: t.InfoJson, SchemaVersion: t.SchemaVersion})
	}
	return out, nil
}

// listTs turns a listing's ts into one the registry answers for: 0 is the
// latest it has read.
func (s *Service) listTs(ctx context.Context, tenant, ts uint64) (uint64, error) {
	if ts != 0 {
		return ts, nil
	}
	p, err := s.latest(ctx, tenant)
	if err != nil {
		return 0, registryStatus(err, "tenant %d: the latest schema", tenant)
	}
	return p.resolved, nil
}
