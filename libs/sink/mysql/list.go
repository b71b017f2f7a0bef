package mysqlsink

import (
	"context"
	"fmt"
	"strings"

	"github.com/tistream/tistream/libs/tidbcodec"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func equalFold(a, b string) bool { return strings.EqualFold(a, b) }

// listDBs names the tenant's databases at ts. A ts below what the server
// keeps (the pull's first event at the tenant's registration) is asked
// one later.
func listDBs(ctx context.Context, api apiv1.TiStreamServiceClient, tenant, ts uint64) ([]string, error) {
	resp, err := api.ListDBs(ctx, &apiv1.ListDBsRequest{TenantId: tenant, Ts: ts})
	if status.Code(err) == codes.OutOfRange {
		resp, err = api.ListDBs(ctx, &apiv1.ListDBsRequest{TenantId: tenant, Ts: ts + 1})
	}
	if err != nil {
		return nil, fmt.Errorf("list the databases of tenant %d at %d: %w", tenant, ts, err)
	}
	out := make([]string, len(resp.Dbs))
	for i, d := range resp.Dbs {
		out[i] = d.Name
	}
	return out, nil
}

func listTables(ctx context.Context, api apiv1.TiStreamServiceClient, tenant uint64, db string, ts uint64) ([]*tidbcodec.TableInfo, error) {
	resp, err := api.ListTables(ctx, &apiv1.ListTablesRequest{TenantId: tenant, Db: db, Ts: ts})
	if status.Code(err) == codes.OutOfRange {
		resp, err = api.ListTables(ctx, &apiv1.ListTablesRequest{TenantId: tenant, Db: db, Ts: ts + 1})
	}
	if err != nil {
		return nil, fmt.Errorf("list the tables of %s at %d: %w", db, ts, err)
	}
	out := make([]*tidbcodec.TableInfo, 0, len(resp.Tables))
	for _, t := range resp.Tables {
		info, err := parseInfo(t.TableInfoJson)
		if err != nil {
			return nil, fmt.Errorf("table %s.%s at %d: %w", db, t.Name, ts, err)
		}
		out = append(out, info)
	}
	return out, nil
}
