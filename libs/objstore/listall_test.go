package objstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/objstore"
)

// stuckStore answers every List with the same page, as a buggy server might.
type stuckStore struct {
	*objstore.Memory
	page []objstore.ObjectInfo
	more bool
}

func (s stuckStore) List(context.Context, string, string, int) ([]objstore.ObjectInfo, bool, error) {
	return s.page, s.more, nil
}

func TestListAllPagesThroughEverything(t *testing.T) {
	ctx := context.Background()
	m := objstore.NewMemory()
	var want []string
	for i := range 2500 {
		k := fmt.Sprintf("k/%05d", i)
		want = append(want, k)
		require.NoError(t, m.Put(ctx, k, nil))
	}
	require.NoError(t, m.Put(ctx, "other", nil))
	all, err := objstore.ListAll(ctx, m, "k/", "")
	require.NoError(t, err)
	require.Len(t, all, len(want))
	for i, o := range all {
		require.Equal(t, want[i], o.Key)
	}
	all, err = objstore.ListAll(ctx, m, "k/", "k/02497")
	require.NoError(t, err)
	require.Len(t, all, 2)
}

func TestListAllStopsOnAStuckStore(t *testing.T) {
	ctx := context.Background()
	page := []objstore.ObjectInfo{{Key: "a"}, {Key: "b"}}
	_, err := objstore.ListAll(ctx, stuckStore{objstore.NewMemory(), page, true}, "", "")
	require.ErrorContains(t, err, "did not advance")
	_, err = objstore.ListAll(ctx, stuckStore{objstore.NewMemory(), nil, true}, "", "")
	require.ErrorContains(t, err, "empty page claims more")
}
