package apiserver

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/tidbcodec"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

// TestStartBelowCompactedData: once retention has compacted the pool, a
// PullTable from before what is left is OUT_OF_RANGE naming the oldest
// start ts the pool still serves; pulling from there works.
func TestStartBelowCompactedData(t *testing.T) {
	f := history(t)
	// A private copy of the pool, compacted up to the middle of the history.
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join(testDir, "pool"))))
	store, err := objstore.NewLocalFS(dir)
	require.NoError(t, err)
	ctx := context.Background()
	m, err := pool.LoadManifest(ctx, store, 1)
	require.NoError(t, err)
	for _, d := range m.Ranges {
		_, err := pool.Compact(ctx, store, 1, d.RangeId, f.mid()) // format 1 logs
		require.NoError(t, err)
	}
	groups, err := pool.ListGroups(ctx, store, 1)
	require.NoError(t, err)
	for _, g := range groups {
		_, err := pool.CompactGroupBefore(ctx, store, 1, g, f.mid())
		require.NoError(t, err)
	}
	// The schema registry keeps following the untouched pool: only the
	// data is compacted here.
	e := startRegistry(t, f, f.pool)
	e.waitRegistry(t, f, f.final)
	s := startServer(t, store, e.schema)
	tables, err := s.client.ListTables(pullCtx(t), &apiv1.ListTablesRequest{TenantId: 1, Db: "db1", Ts: f.snapTs[1]})
	require.NoError(t, err)
	require.NotEmpty(t, tables.Tables)
	id := tables.Tables[0].Id
	span := tidbcodec.TableSpan(id)
	oldest, err := pool.OldestStart(ctx, store, 1, span.Start, span.End)
	require.NoError(t, err)
	require.Greater(t, oldest, f.snapTs[1]+1)

	err = recvErr(t, s, req{kind: kindTable, tenant: 1, tableID: id, start: f.snapTs[1] + 1})
	require.Equal(t, codes.OutOfRange, status.Code(err), "%v", err)
	msg := status.Convert(err).Message()
	got := regexp.MustCompile(`oldest available start ts is (\d+)`).FindStringSubmatch(msg)
	require.NotNil(t, got, msg)
	named, err := strconv.ParseUint(got[1], 10, 64)
	require.NoError(t, err)
	require.Equal(t, oldest, named, msg)

	recv, err := s.open(pullCtx(t), req{kind: kindTable, tenant: 1, tableID: id, start: named})
	require.NoError(t, err)
	_, err = recv()
	require.NoError(t, err, "pulling from the oldest available start ts works")
}
