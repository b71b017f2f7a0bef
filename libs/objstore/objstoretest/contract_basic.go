package objstoretest

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/objstore"
)

func testRoundTrip(ctx context.Context, t *testing.T, s objstore.Store) {
	big := make([]byte, 8<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"small", []byte("hello, object")},
		{"empty", []byte{}},
		{"nil", nil},
		{"binary", []byte{0, 1, 2, 0xff, 0xfe, '\n', 0}},
		{"8MiB", big},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := "round-trip/" + c.name
			require.NoError(t, s.Put(ctx, key, c.data))
			got, err := s.Get(ctx, key)
			require.NoError(t, err)
			requireBytes(t, c.data, got)
			objs, _, err := s.List(ctx, key, "", 0)
			require.NoError(t, err)
			require.Equal(t, []objstore.ObjectInfo{{Key: key, Size: int64(len(c.data))}}, objs)
		})
	}
	// The store must own its copy: callers reuse buffers.
	buf := []byte("original")
	require.NoError(t, s.Put(ctx, "round-trip/copied", buf))
	copy(buf, "CHANGED!")
	got, err := s.Get(ctx, "round-trip/copied")
	require.NoError(t, err)
	require.Equal(t, "original", string(got))
	copy(got, "CHANGED!")
	got, err = s.Get(ctx, "round-trip/copied")
	require.NoError(t, err)
	require.Equal(t, "original", string(got))
}

func testOverwrite(ctx context.Context, t *testing.T, s objstore.Store) {
	require.NoError(t, s.Put(ctx, "k", []byte("a long first version")))
	require.NoError(t, s.Put(ctx, "k", []byte("v2")))
	got, err := s.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "v2", string(got))
	objs, more, err := s.List(ctx, "", "", 0)
	require.NoError(t, err)
	require.False(t, more)
	require.Equal(t, []objstore.ObjectInfo{{Key: "k", Size: 2}}, objs)
}

func testGetMissing(ctx context.Context, t *testing.T, s objstore.Store) {
	putAll(ctx, t, s, "dir/present")
	for _, key := range []string{"missing", "dir/missing", "dir/present/below", "dir"} {
		_, err := s.Get(ctx, key)
		require.ErrorIs(t, err, objstore.ErrNotFound, key)
		require.Contains(t, err.Error(), key)
		_, err = s.GetRange(ctx, key, 0, 1)
		require.ErrorIs(t, err, objstore.ErrNotFound, key)
		_, err = s.GetRange(ctx, key, -1, 0)
		require.ErrorIs(t, err, objstore.ErrNotFound, key)
		_, err = s.GetRange(ctx, key, 0, 0)
		require.ErrorIs(t, err, objstore.ErrNotFound, key)
	}
}

func testPutIfAbsent(ctx context.Context, t *testing.T, s objstore.Store) {
	require.NoError(t, s.PutIfAbsent(ctx, "lease/owner", []byte("first")))
	err := s.PutIfAbsent(ctx, "lease/owner", []byte("second"))
	require.ErrorIs(t, err, objstore.ErrExists)
	require.Contains(t, err.Error(), "lease/owner")
	// Same content is still a loss: the second caller did not create it.
	require.ErrorIs(t, s.PutIfAbsent(ctx, "lease/owner", []byte("first")), objstore.ErrExists)
	got, err := s.Get(ctx, "lease/owner")
	require.NoError(t, err)
	require.Equal(t, "first", string(got))

	// A key made by Put is taken too, and a deleted key is free again.
	require.NoError(t, s.Put(ctx, "lease/put", []byte("x")))
	require.ErrorIs(t, s.PutIfAbsent(ctx, "lease/put", []byte("y")), objstore.ErrExists)
	require.NoError(t, s.Delete(ctx, "lease/put"))
	require.NoError(t, s.PutIfAbsent(ctx, "lease/put", []byte("z")))
	got, err = s.Get(ctx, "lease/put")
	require.NoError(t, err)
	require.Equal(t, "z", string(got))

	require.NoError(t, s.PutIfAbsent(ctx, "lease/empty", nil))
	require.ErrorIs(t, s.PutIfAbsent(ctx, "lease/empty", nil), objstore.ErrExists)
}

func testGetRange(ctx context.Context, t *testing.T, s objstore.Store) {
	require.NoError(t, s.Put(ctx, "r", []byte("0123456789")))
	for _, c := range []struct {
		name   string
		off, n int64
		want   string
	}{
		{"whole", 0, -1, "0123456789"},
		{"middle", 2, 3, "234"},
		{"first byte", 0, 1, "0"},
		{"last byte", 9, 1, "9"},
		{"to end", 7, -1, "789"},
		{"exactly to end", 7, 3, "789"},
		{"past end", 8, 5, "89"},
		{"huge n", 3, 1<<63 - 1, "3456789"},
		{"zero bytes", 4, 0, ""},
		{"at end", 10, 5, ""},
		{"at end to end", 10, -1, ""},
		{"suffix", -3, 0, "789"},
		{"suffix ignores n", -3, 1, "789"},
		{"suffix whole", -10, -1, "0123456789"},
		{"suffix longer than object", -25, 2, "0123456789"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.GetRange(ctx, "r", c.off, c.n)
			require.NoError(t, err)
			require.Equal(t, c.want, string(got))
		})
	}
	for _, off := range []int64{11, 1000} {
		_, err := s.GetRange(ctx, "r", off, 1)
		require.ErrorIs(t, err, objstore.ErrInvalidRange, "off %d", off)
		require.Contains(t, err.Error(), "r")
	}
}

func testGetRangeEmptyObject(ctx context.Context, t *testing.T, s objstore.Store) {
	require.NoError(t, s.Put(ctx, "empty", nil))
	for _, c := range []struct{ off, n int64 }{{0, -1}, {0, 5}, {0, 0}, {-4, 0}} {
		got, err := s.GetRange(ctx, "empty", c.off, c.n)
		require.NoError(t, err, "off %d n %d", c.off, c.n)
		require.Empty(t, got)
	}
	_, err := s.GetRange(ctx, "empty", 1, 1)
	require.ErrorIs(t, err, objstore.ErrInvalidRange)
}

// testGetRangeInto reads through the package function: a store's own
// GetRangeInto fills the given buffer, a store without one answers from
// GetRange; either way the bytes and errors are GetRange's.
func testGetRangeInto(ctx context.Context, t *testing.T, s objstore.Store) {
	require.NoError(t, s.Put(ctx, "r", []byte("0123456789")))
	_, native := s.(objstore.RangeIntoGetter)
	for _, c := range []struct {
		name string
		off  int64
		n    int
		want string
	}{
		{"whole", 0, 10, "0123456789"},
		{"middle", 2, 3, "234"},
		{"past end", 8, 5, "89"},
		{"zero bytes", 4, 0, ""},
		{"at end", 10, 5, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			buf := bytes.Repeat([]byte{'x'}, c.n+4)[:c.n] // room past n stays untouched
			got, err := objstore.GetRangeInto(ctx, s, "r", c.off, buf)
			require.NoError(t, err)
			require.Equal(t, c.want, string(got))
			if native && len(got) > 0 {
				require.Equal(t, &buf[0], &got[0], "a RangeIntoGetter reads into the buffer given")
			}
			require.Equal(t, "xxxx", string(buf[c.n:c.n+4]))
		})
	}
	for _, off := range []int64{11, 1000} {
		_, err := objstore.GetRangeInto(ctx, s, "r", off, make([]byte, 1))
		require.ErrorIs(t, err, objstore.ErrInvalidRange, "off %d", off)
	}
	_, err := objstore.GetRangeInto(ctx, s, "r", -3, make([]byte, 3))
	require.ErrorIs(t, err, objstore.ErrInvalidRange, "a suffix read")
	_, err = objstore.GetRangeInto(ctx, s, "missing", 0, make([]byte, 3))
	require.ErrorIs(t, err, objstore.ErrNotFound)
}

func testDelete(ctx context.Context, t *testing.T, s objstore.Store) {
	putAll(ctx, t, s, "d/x/1", "d/x/2", "d/y")
	require.NoError(t, s.Delete(ctx, "d/x/1"))
	_, err := s.Get(ctx, "d/x/1")
	require.ErrorIs(t, err, objstore.ErrNotFound)
	require.NoError(t, s.Delete(ctx, "d/x/1"), "deleting twice")
	require.NoError(t, s.Delete(ctx, "never/existed"))
	require.NoError(t, s.Delete(ctx, "d"), "a key prefix is not an object")

	objs, err := objstore.ListAll(ctx, s, "", "")
	require.NoError(t, err)
	require.Equal(t, []string{"d/x/2", "d/y"}, keysOf(objs))

	// Emptying a "directory" and writing into it again works.
	require.NoError(t, s.Delete(ctx, "d/x/2"))
	require.NoError(t, s.Put(ctx, "d/x/3", []byte("3")))
	objs, err = objstore.ListAll(ctx, s, "", "")
	require.NoError(t, err)
	require.Equal(t, []string{"d/x/3", "d/y"}, keysOf(objs))
}

func testInvalidKeys(ctx context.Context, t *testing.T, s objstore.Store) {
	for _, key := range []string{
		"", "/abs", "trailing/", "a//b", ".", "..", "a/./b", "a/../b", "../up",
		"nul\x00byte", "\xff\xfe", ".tmp/x", ".tmp", strings.Repeat("k", objstore.MaxKeyLen+1),
	} {
		shown := key[:min(len(key), 20)]
		for op, err := range map[string]error{
			"Put":              s.Put(ctx, key, []byte("x")),
			"PutIfAbsent":      s.PutIfAbsent(ctx, key, []byte("x")),
			"PutParts":         objstore.PutParts(ctx, s, key, []byte("x"), []byte("y")),
			"PutIfAbsentParts": objstore.PutIfAbsentParts(ctx, s, key, []byte("x"), []byte("y")),
			"Delete":           s.Delete(ctx, key),
		} {
			require.ErrorIs(t, err, objstore.ErrInvalidKey, "%s %q", op, shown)
		}
		_, err := s.Get(ctx, key)
		require.ErrorIs(t, err, objstore.ErrInvalidKey, "Get %q", shown)
		_, err = s.GetRange(ctx, key, 0, 1)
		require.ErrorIs(t, err, objstore.ErrInvalidKey, "GetRange %q", shown)
	}
	objs, err := objstore.ListAll(ctx, s, "", "")
	require.NoError(t, err)
	require.Empty(t, objs, "nothing may have been written")
}

func testUnusualValidKeys(ctx context.Context, t *testing.T, s objstore.Store) {
	// 1024 bytes in segments short enough for any file system's name limit.
	longKey := strings.Repeat(strings.Repeat("L", 199)+"/", 5) + strings.Repeat("L", objstore.MaxKeyLen-1000)
	require.Len(t, longKey, objstore.MaxKeyLen)
	keys := []string{
		"with space", "ünïcødé/€", `back\slash`, "x..y", ".hidden", "a/.b", "..x", "tmp/.tmp",
		"q?u#e%r&y=+", "new\nline", longKey,
	}
	for _, k := range keys {
		require.NoError(t, s.Put(ctx, k, []byte(k)), "%q", k)
		got, err := s.Get(ctx, k)
		require.NoError(t, err, "%q", k)
		require.Equal(t, k, string(got))
	}
	objs, err := objstore.ListAll(ctx, s, "", "")
	require.NoError(t, err)
	require.ElementsMatch(t, keys, keysOf(objs))
}
