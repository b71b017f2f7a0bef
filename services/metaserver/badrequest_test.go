package metaserver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/tidbcodec"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	"google.golang.org/grpc/codes"
)

// Bad split and merge requests get a clear error and change nothing in
// etcd or the pool.
func TestSplitMergeBadRequests(t *testing.T) {
	env := newEnv(t)
	_, c := env.leader()
	ctx := context.Background()
	env.register(c, 1, 4, 101, 102, 103, 104, 105, 106) // ranges 1 [, t101) (the meta keys) 2 [t101, t103) 3 [t103, t105) 4 [t105, )
	env.sorter("s1")
	require.Eventually(t, func() bool { return allOwned(env.ranges(1), "s1") }, waitFor, pollEvery)
	// Range 4 is being split: no longer ACTIVE.
	_, err := c.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: 1, RangeId: 4, SplitKey: tidbcodec.TablePrefix(106)})
	require.NoError(t, err)
	etcdBefore, poolBefore := env.dump(), objects(t, env.pool)

	split := func(tenant, id uint64, key []byte) error {
		_, err := c.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: tenant, RangeId: id, SplitKey: key})
		return err
	}
	merge := func(tenant, l, r uint64) error {
		_, err := c.MergeRanges(ctx, &metav1.MergeRangesRequest{TenantId: tenant, LeftRangeId: l, RightRangeId: r})
		return err
	}
	t102, t104 := tidbcodec.TablePrefix(102), tidbcodec.TablePrefix(104)
	for _, tc := range []struct {
		name     string
		err      error
		code     codes.Code
		contains string
	}{
		{"split: unknown tenant", split(9, 1, t102), codes.NotFound, "tenant 9 is not registered"},
		{"split: unknown range", split(1, 42, t102), codes.NotFound, "range 42 of tenant 1 does not exist"},
		{"split: range id 0", split(1, 0, t102), codes.InvalidArgument, "range_id must be non-zero"},
		{"split: tenant id 0", split(0, 1, t102), codes.InvalidArgument, "tenant_id"},
		{"split: no key", split(1, 1, nil), codes.InvalidArgument, "split_key is required"},
		{"split: key above the range", split(1, 2, t104), codes.InvalidArgument, "not strictly inside range 2"},
		{"split: key at the end", split(1, 2, tidbcodec.TablePrefix(103)), codes.InvalidArgument, "not strictly inside range 2"},
		{"split: key at the start", split(1, 3, tidbcodec.TablePrefix(103)), codes.InvalidArgument, "not strictly inside range 3"},
		{"split: key below the start", split(1, 3, t102), codes.InvalidArgument, "not strictly inside range 3"},
		{"split: sealing range", split(1, 4, tidbcodec.TablePrefix(105)), codes.FailedPrecondition, "range 4 of tenant 1 is STATE_SEALING"},
		{"split: child of a sealing range", split(1, 6, tidbcodec.TablePrefix(107)), codes.FailedPrecondition, "parent 4 is still STATE_SEALING"},
		{"merge: not adjacent", merge(1, 3, 2), codes.InvalidArgument, "are not adjacent"},
		{"merge: itself", merge(1, 1, 1), codes.InvalidArgument, "with itself"},
		{"merge: unknown tenant", merge(9, 1, 2), codes.NotFound, "tenant 9"},
		{"merge: unknown range", merge(1, 3, 42), codes.NotFound, "range 42"},
		{"merge: range id 0", merge(1, 0, 2), codes.InvalidArgument, "must be non-zero"},
		{"merge: sealing range", merge(1, 3, 4), codes.FailedPrecondition, "range 4 of tenant 1 is STATE_SEALING"},
	} {
		t.Run(tc.name, func(t *testing.T) { requireCode(t, tc.err, tc.code, tc.contains) })
	}
	require.Equal(t, etcdBefore, env.dump())
	require.Equal(t, poolBefore, objects(t, env.pool))

	_, err = c.ListTasks(ctx, &metav1.ListTasksRequest{TenantId: 9})
	requireCode(t, err, codes.NotFound, "tenant 9 is not registered")
}
