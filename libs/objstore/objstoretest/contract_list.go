package objstoretest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/objstore"
)

// trickyKeys sort differently as full keys than a naive directory walk would
// order them: '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f), and '0'
// (0x30) after it, so the "directory" a sorts between a.x and a0, and a/b
// between a/b-d and a/b0. No key is a path prefix of another (see the
// package doc of objstore).
var trickyKeys = []string{"a-c", "a.x", "a/b-d", "a/b/c", "a/b0", "a/c", "a0", "b"}

func testListOrder(ctx context.Context, t *testing.T, s objstore.Store) {
	// Insert in reverse so no store can pass by remembering insertion order.
	for _, k := range slices.Backward(trickyKeys) {
		require.NoError(t, s.Put(ctx, k, []byte(k+"!")))
	}
	objs, more, err := s.List(ctx, "", "", 0)
	require.NoError(t, err)
	require.False(t, more)
	want := make([]objstore.ObjectInfo, len(trickyKeys))
	for i, k := range trickyKeys {
		want[i] = objstore.ObjectInfo{Key: k, Size: int64(len(k) + 1)}
	}
	require.Equal(t, want, objs)
	require.True(t, slices.IsSorted(trickyKeys), "the fixture itself is in byte order")
}

func testListPrefix(ctx context.Context, t *testing.T, s objstore.Store) {
	putAll(ctx, t, s, trickyKeys...)
	putAll(ctx, t, s, "store-1/0001-a", "store-1/0001/x", "store-1/00012", "store-1/0002", "store-10/0001")
	for _, c := range []struct {
		prefix string
		want   []string
	}{
		{"store-1/0001", []string{"store-1/0001-a", "store-1/0001/x", "store-1/00012"}},
		{"store-1/0001/", []string{"store-1/0001/x"}},
		{"store-1/", []string{"store-1/0001-a", "store-1/0001/x", "store-1/00012", "store-1/0002"}},
		{"store-1", []string{"store-1/0001-a", "store-1/0001/x", "store-1/00012", "store-1/0002", "store-10/0001"}},
		{"a/b", []string{"a/b-d", "a/b/c", "a/b0"}},
		{"a/", []string{"a/b-d", "a/b/c", "a/b0", "a/c"}},
		{"a", []string{"a-c", "a.x", "a/b-d", "a/b/c", "a/b0", "a/c", "a0"}},
		{"a/b/c", []string{"a/b/c"}},
		{"a/b/c/", nil},
		{"zzz", nil},
		{"store-1/0003/", nil},
		{"../", nil},
		{"a/../", nil},
	} {
		t.Run(c.prefix, func(t *testing.T) {
			objs, more, err := s.List(ctx, c.prefix, "", 0)
			require.NoError(t, err)
			require.False(t, more)
			require.Equal(t, c.want, nilIfEmpty(keysOf(objs)))
		})
	}
}

func testListStartAfter(ctx context.Context, t *testing.T, s objstore.Store) {
	putAll(ctx, t, s, trickyKeys...)
	for _, c := range []struct {
		prefix, startAfter string
		want               []string
	}{
		{"", "a/b/c", []string{"a/b0", "a/c", "a0", "b"}},         // an existing key
		{"", "a/b/", []string{"a/b/c", "a/b0", "a/c", "a0", "b"}}, // between keys, inside a "directory"
		{"", "a/b", []string{"a/b-d", "a/b/c", "a/b0", "a/c", "a0", "b"}},
		{"", "a", trickyKeys},
		{"", "a-c", trickyKeys[1:]},
		{"", "a/zzz", []string{"a0", "b"}},
		{"", "b", nil},
		{"", "zzz", nil},
		{"a/", "a/b-d", []string{"a/b/c", "a/b0", "a/c"}},
		{"a/", "0", []string{"a/b-d", "a/b/c", "a/b0", "a/c"}}, // before the prefix
		{"a/", "a0", nil},                                      // after the prefix
	} {
		t.Run(fmt.Sprintf("%s|%s", c.prefix, c.startAfter), func(t *testing.T) {
			objs, more, err := s.List(ctx, c.prefix, c.startAfter, 0)
			require.NoError(t, err)
			require.False(t, more)
			require.Equal(t, c.want, nilIfEmpty(keysOf(objs)))
		})
	}
}

func testListPagination(ctx context.Context, t *testing.T, s objstore.Store) {
	keys := slices.Clone(trickyKeys)
	for i := range 12 {
		keys = append(keys, fmt.Sprintf("p/%02d/x", i), fmt.Sprintf("p/%02d-y", i))
	}
	slices.Sort(keys)
	putAll(ctx, t, s, keys...)
	for _, limit := range []int{1, 2, 3, 7, len(keys) - 1, len(keys), len(keys) + 1} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			var got []string
			after := ""
			for range len(keys) + 1 { // each page returns at least one key
				page, more, err := s.List(ctx, "", after, limit)
				require.NoError(t, err)
				require.LessOrEqual(t, len(page), limit)
				got = append(got, keysOf(page)...)
				if !more {
					break
				}
				require.NotEmpty(t, page, "a page claiming more must not be empty")
				after = page[len(page)-1].Key
			}
			require.Equal(t, keys, got)
		})
	}
	_, more, err := s.List(ctx, "", "", len(keys))
	require.NoError(t, err)
	require.False(t, more, "a page holding exactly the rest has no more")
	_, more, err = s.List(ctx, "", "", len(keys)-1)
	require.NoError(t, err)
	require.True(t, more)
}

func testListDefaultLimit(ctx context.Context, t *testing.T, s objstore.Store) {
	const n = objstore.DefaultListLimit + 1
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("many/%02d/%04d", i%7, i)
	}
	// Several writers: against a real server a thousand sequential puts are
	// the slowest part of the suite.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				errs <- s.Put(ctx, keys[i], nil)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	slices.Sort(keys)
	for _, limit := range []int{0, -1} {
		page, more, err := s.List(ctx, "many/", "", limit)
		require.NoError(t, err)
		require.True(t, more, "limit %d", limit)
		require.Equal(t, keys[:objstore.DefaultListLimit], keysOf(page), "limit %d", limit)
	}
	all, err := objstore.ListAll(ctx, s, "many/", "")
	require.NoError(t, err)
	require.Equal(t, keys, keysOf(all))
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
