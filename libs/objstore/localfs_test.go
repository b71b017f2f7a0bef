package objstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/objstore/objstoretest"
)

func TestLocalFSContract(t *testing.T) {
	objstoretest.RunContract(t, func(t *testing.T) objstore.Store {
		s, err := objstore.NewLocalFS(t.TempDir())
		require.NoError(t, err)
		t.Cleanup(func() { requireNoTempFiles(t, s) })
		return s
	})
}

// requireNoTempFiles checks that no operation left a temp file behind.
func requireNoTempFiles(t *testing.T, s *objstore.LocalFS) {
	entries, err := os.ReadDir(filepath.Join(s.Root(), ".tmp"))
	require.NoError(t, err)
	require.Empty(t, entries)
}

func TestLocalFSLayout(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "not", "yet")
	s, err := objstore.NewLocalFS(root)
	require.NoError(t, err)
	require.Equal(t, "file://"+filepath.ToSlash(root), s.String())

	require.NoError(t, s.Put(ctx, "a/b/c", []byte("abc")))
	data, err := os.ReadFile(filepath.Join(root, "a", "b", "c"))
	require.NoError(t, err)
	require.Equal(t, "abc", string(data))

	// Deleting the last key of a directory prunes it, up to but not
	// including the root.
	require.NoError(t, s.Delete(ctx, "a/b/c"))
	_, err = os.Stat(filepath.Join(root, "a"))
	require.ErrorIs(t, err, os.ErrNotExist)
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, ".tmp", entries[0].Name())
}

func TestLocalFSKeyIsAlsoADirectory(t *testing.T) {
	// A file system cannot hold both "a/b" and "a/b/c"; the store must say
	// so with an error naming the key, and keep what it has intact.
	ctx := context.Background()
	s, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, "a/b", []byte("file")))
	err = s.Put(ctx, "a/b/c", []byte("below a file"))
	require.ErrorContains(t, err, "put a/b/c: a path prefix of the key is itself an object")
	require.NoError(t, s.Put(ctx, "x/y/z", []byte("z")))
	for _, put := range []func(context.Context, string, []byte) error{s.Put, s.PutIfAbsent} {
		err = put(ctx, "x/y", []byte("over a directory"))
		require.Error(t, err)
		require.NotErrorIs(t, err, objstore.ErrExists)
		require.ErrorContains(t, err, "x/y: a directory of other keys has this name")
	}
	_, err = s.Get(ctx, "x/y")
	require.ErrorIs(t, err, objstore.ErrNotFound)
	objs, err := objstore.ListAll(ctx, s, "", "")
	require.NoError(t, err)
	require.Equal(t, []objstore.ObjectInfo{{Key: "a/b", Size: 4}, {Key: "x/y/z", Size: 1}}, objs)
	requireNoTempFiles(t, s)
}

func TestLocalFSPutRacesPrune(t *testing.T) {
	// Deleting the only key of a directory prunes the directory while
	// another writer is about to rename into it; the writer must retry, not
	// fail.
	ctx := context.Background()
	s, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	const rounds = 300
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	for w := range 4 {
		wg.Go(func() {
			key := fmt.Sprintf("deep/shared/dir/k%d", w)
			for i := range rounds {
				var err error
				if w%2 == 0 {
					err = s.Put(ctx, key, []byte("v"))
				} else {
					err = s.PutIfAbsent(ctx, key, []byte("v"))
				}
				if err != nil {
					errs <- fmt.Errorf("round %d put %s: %w", i, key, err)
					return
				}
				if err := s.Delete(ctx, key); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	objs, err := objstore.ListAll(ctx, s, "", "")
	require.NoError(t, err)
	require.Empty(t, objs)
	requireNoTempFiles(t, s)
}

func TestLocalFSSkipsTempDir(t *testing.T) {
	ctx := context.Background()
	s, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	// A temp file left by a crash mid-Put must not show up as a key.
	require.NoError(t, os.WriteFile(filepath.Join(s.Root(), ".tmp", "put-123"), []byte("partial"), 0o600))
	require.NoError(t, s.Put(ctx, "k", []byte("v")))
	objs, err := objstore.ListAll(ctx, s, "", "")
	require.NoError(t, err)
	require.Equal(t, []objstore.ObjectInfo{{Key: "k", Size: 1}}, objs)
	objs, err = objstore.ListAll(ctx, s, ".", "")
	require.NoError(t, err)
	require.Empty(t, objs)
}
