package apiserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/objstore"
)

// leakyStore fails reads of data (format 1 data files, group publications
// and segments) the way a real store does: with an error naming the
// bucket, the prefix and the object's key.
type leakyStore struct {
	objstore.Store
	err error
}

func dataKey(key string) bool {
	return strings.Contains(key, "/data/") || strings.Contains(key, "/pub/") || strings.Contains(key, "/seg/")
}

func (s leakyStore) Get(ctx context.Context, key string) ([]byte, error) {
	if dataKey(key) {
		return nil, fmt.Errorf("get %s in s3://secret-bucket/prod-prefix: %w", key, s.err)
	}
	return s.Store.Get(ctx, key)
}

func (s leakyStore) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if dataKey(key) {
		return nil, fmt.Errorf("get %s in s3://secret-bucket/prod-prefix: %w", key, s.err)
	}
	return s.Store.GetRange(ctx, key, off, n)
}

// A pull that fails inside the server tells the client what failed in its
// terms and an incident id; the bucket, prefix and object layout stay in
// the server log.
func TestErrorsNameNoStorageInternals(t *testing.T) {
	f := history(t)
	e := startRegistry(t, f, f.pool)
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{errors.New("connection reset by peer"), codes.Unavailable},
		{fmt.Errorf("block 3: %w", container.ErrCorrupt), codes.DataLoss},
	} {
		s := startServer(t, leakyStore{f.pool, tc.err}, e.schema)
		err := recvErr(t, s, req{kind: kindTenant, tenant: 1})
		require.Equal(t, tc.code, status.Code(err), "%v", err)
		msg := status.Convert(err).Message()
		require.Contains(t, msg, "incident")
		for _, leak := range []string{"secret-bucket", "prod-prefix", "committed_data_pool", "/data/", "range-", "group-", "/pub/"} {
			require.NotContains(t, msg, leak)
		}
	}
}
