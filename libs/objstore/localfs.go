package objstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// LocalFS is a Store on a local file system: key "a/b/c" is the file
// <root>/a/b/c. Writes go through <root>/.tmp (same file system, never
// listed) and are published by rename or link, so readers never see a part of
// an object.
type LocalFS struct {
	root string // absolute, cleaned
	tmp  string // <root>/.tmp

	// onReadDir, when set (by tests), is told of each directory List reads,
	// to check that List stays within the subtrees a page needs.
	onReadDir func(rel string)
}

var (
	_ Store       = (*LocalFS)(nil)
	_ PartsPutter = (*LocalFS)(nil)
)

// NewLocalFS opens a store rooted at dir, creating dir if missing. A relative
// dir is resolved against the working directory now, so a later chdir does
// not move the store.
func NewLocalFS(dir string) (*LocalFS, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local store %s: %w", dir, err)
	}
	s := &LocalFS{root: root, tmp: filepath.Join(root, tmpDirName)}
	if err := os.MkdirAll(s.tmp, 0o755); err != nil {
		return nil, fmt.Errorf("local store %s: create temp dir: %w", root, err)
	}
	return s, nil
}

// Root returns the absolute directory the store lives in.
func (s *LocalFS) Root() string { return s.root }

// String implements Store.
func (s *LocalFS) String() string { return "file://" + filepath.ToSlash(s.root) }

// path maps a validated key to its file. Validation has ruled out "..",
// leading "/" and empty segments, so the result stays under root.
func (s *LocalFS) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Put implements Store: temp file + fsync + rename + fsync of the directory.
func (s *LocalFS) Put(ctx context.Context, key string, data []byte) error {
	return s.put(ctx, key, [][]byte{data})
}

// PutParts implements PartsPutter: Put, the parts written one after
// another into the temp file.
func (s *LocalFS) PutParts(ctx context.Context, key string, parts [][]byte) error {
	return s.put(ctx, key, parts)
}

func (s *LocalFS) put(ctx context.Context, key string, parts [][]byte) error {
	if err := checkOp(ctx, "put", key); err != nil {
		return err
	}
	tmp, err := s.writeTemp(parts)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	defer os.Remove(tmp) // fails harmlessly once renamed
	if err := s.publish(key, func(final string) error { return os.Rename(tmp, final) }); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// PutIfAbsent implements Store. link(2) creates the name only if it does not
// exist and points it at a file already complete and synced, so the exclusive
// create and the atomic publish are one step.
func (s *LocalFS) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	return s.putIfAbsent(ctx, key, [][]byte{data})
}

// PutIfAbsentParts implements PartsPutter: PutIfAbsent, the parts written
// one after another into the temp file.
func (s *LocalFS) PutIfAbsentParts(ctx context.Context, key string, parts [][]byte) error {
	return s.putIfAbsent(ctx, key, parts)
}

func (s *LocalFS) putIfAbsent(ctx context.Context, key string, parts [][]byte) error {
	if err := checkOp(ctx, "put-if-absent", key); err != nil {
		return err
	}
	tmp, err := s.writeTemp(parts)
	if err != nil {
		return fmt.Errorf("put-if-absent %s: %w", key, err)
	}
	defer os.Remove(tmp) // the link keeps the data
	// Only link's own EEXIST means the key is taken; publish's directory
	// handling can see EEXIST from a racing prune too.
	taken := false
	err = s.publish(key, func(final string) error {
		err := os.Link(tmp, final)
		taken = errors.Is(err, fs.ErrExist)
		return err
	})
	switch {
	case err == nil:
		return nil
	case taken && !errors.Is(err, errKeyIsDir):
		return fmt.Errorf("put-if-absent %s: %w", key, ErrExists)
	default:
		return fmt.Errorf("put-if-absent %s: %w", key, err)
	}
}

// Get implements Store.
func (s *LocalFS) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkOp(ctx, "get", key); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(s.path(key))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, notFoundErr(err))
	}
	return data, nil
}

// GetRange implements Store.
func (s *LocalFS) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	return s.getRange(ctx, key, off, n, nil)
}

// GetRangeInto implements RangeIntoGetter.
func (s *LocalFS) GetRangeInto(ctx context.Context, key string, off int64, buf []byte) ([]byte, error) {
	if off < 0 {
		return nil, negativeOffsetErr(key, off)
	}
	return s.getRange(ctx, key, off, int64(len(buf)), buf)
}

// getRange reads into buf when it is not nil (it then holds n bytes).
func (s *LocalFS) getRange(ctx context.Context, key string, off, n int64, buf []byte) ([]byte, error) {
	if err := checkOp(ctx, "get", key); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, notFoundErr(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	start, end, err := clipRange(key, fi.Size(), off, n)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	// The open file is one inode: a concurrent Put renames a new file over
	// the name and leaves this one whole, so the read is consistent.
	if buf == nil {
		buf = make([]byte, end-start)
	}
	b, err := readAtInto(f, buf, start, end)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return b, nil
}

// Delete implements Store. Empty parent directories are pruned so deleted
// key ranges do not leave directory skeletons behind for List to walk.
func (s *LocalFS) Delete(ctx context.Context, key string) error {
	if err := checkOp(ctx, "delete", key); err != nil {
		return err
	}
	p := s.path(key)
	fi, err := os.Lstat(p)
	if err != nil {
		if isMissing(err) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if fi.IsDir() {
		return nil // a directory of other keys, not an object
	}
	if err := os.Remove(p); err != nil && !isMissing(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	parent := filepath.Dir(p)
	if err := syncDir(parent); err != nil && !isMissing(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	s.prune(parent)
	return nil
}

// isMissing reports errors meaning "no such object": the name is absent, or a
// path component is a file (key "a/b" when "a" is an object).
func isMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// notFoundErr maps the file-system errors that mean "no such object" to
// ErrNotFound, keeping the rest as they are.
func notFoundErr(err error) error {
	if isMissing(err) || errors.Is(err, syscall.EISDIR) {
		return ErrNotFound
	}
	return err
}
