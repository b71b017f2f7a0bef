package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// readDirBatch is how many directory entries List reads at a time; entries
// that cannot matter for the page are dropped batch by batch, so a directory
// of ~100k files costs one pass, not 100k retained entries.
const readDirBatch = 1024

// List implements Store.
//
// Directories are walked depth first in full-key order. A directory "a" is
// ordered as "a/", because every key under it starts with "a/": that puts it
// after the file "a-c" and before the file "a0", as a flat S3 listing would.
// Only subtrees that can hold a key with the prefix and after startAfter are
// entered, and the walk stops once the page (plus one key, to answer "more")
// is full.
func (s *LocalFS) List(ctx context.Context, prefix, startAfter string, limit int) ([]ObjectInfo, bool, error) {
	limit = pageLimit(limit)
	w := &lister{ctx: ctx, s: s, prefix: prefix, startAfter: startAfter, want: limit + 1}
	// Start at the deepest directory the prefix names in full; directories
	// above it can only lead there. A prefix that no valid key can start with
	// (it has a ".." segment, say) matches nothing, and must not be turned
	// into a path.
	base := prefix[:strings.LastIndexByte(prefix, '/')+1]
	if base != "" && ValidateKey(strings.TrimSuffix(base, "/")) != nil {
		return nil, false, nil
	}
	if err := w.walk(base); err != nil {
		return nil, false, fmt.Errorf("list %s prefix %q after %q: %w", s, prefix, startAfter, err)
	}
	more := len(w.out) > limit
	if more {
		w.out = w.out[:limit]
	}
	return w.out, more, nil
}

// lister is the state of one List walk.
type lister struct {
	ctx        context.Context
	s          *LocalFS
	prefix     string
	startAfter string
	want       int
	out        []ObjectInfo
}

// entry is one directory entry that may contribute to the page. sortKey is
// the full key of a file, or the key prefix ("a/b/") of a directory.
type entry struct {
	sortKey string
	dir     bool
}

// walk appends the matching keys under the directory rel ("" or "a/b/") to
// w.out in order, until w.want are collected. Its recursion depth is bounded
// by the key length (MaxKeyLen) because only prefixes of keys are walked.
func (w *lister) walk(rel string) error {
	entries, err := w.readDir(rel)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if len(w.out) >= w.want {
			return nil
		}
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if e.dir {
			if err := w.walk(e.sortKey); err != nil {
				return err
			}
			continue
		}
		fi, err := os.Lstat(filepath.Join(w.s.root, filepath.FromSlash(e.sortKey)))
		if err != nil {
			if isMissing(err) {
				continue // deleted since the directory was read
			}
			return err
		}
		w.out = append(w.out, ObjectInfo{Key: e.sortKey, Size: fi.Size()})
	}
	return nil
}

// readDir returns the entries of directory rel that can contribute keys,
// sorted in full-key order. A missing directory is empty: it may have been
// pruned by a concurrent Delete, or the prefix names no directory at all.
func (w *lister) readDir(rel string) ([]entry, error) {
	if w.s.onReadDir != nil {
		w.s.onReadDir(rel)
	}
	d, err := os.Open(filepath.Join(w.s.root, filepath.FromSlash(rel)))
	if err != nil {
		if isMissing(err) {
			return nil, nil
		}
		return nil, err
	}
	defer d.Close()
	var out []entry
	for {
		batch, err := d.ReadDir(readDirBatch)
		for _, de := range batch {
			name := de.Name()
			if rel == "" && name == tmpDirName {
				continue
			}
			switch {
			case de.IsDir():
				if k := rel + name + "/"; w.dirMayMatch(k) {
					out = append(out, entry{sortKey: k, dir: true})
				}
			case de.Type().IsRegular():
				if k := rel + name; w.keyMatches(k) {
					out = append(out, entry{sortKey: k})
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if isMissing(err) {
				break // pruned while we read it
			}
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.sortKey, b.sortKey) })
	return out, nil
}

// keyMatches reports whether a file's key belongs on the page.
func (w *lister) keyMatches(key string) bool {
	return strings.HasPrefix(key, w.prefix) && key > w.startAfter
}

// dirMayMatch reports whether the subtree whose keys all start with dir (which
// ends in "/") can hold a key that matches.
func (w *lister) dirMayMatch(dir string) bool {
	// The subtree's keys share the prefix "dir", so they can start with
	// w.prefix only if one of the two extends the other.
	if !strings.HasPrefix(dir, w.prefix) && !strings.HasPrefix(w.prefix, dir) {
		return false
	}
	// Every key below dir is longer than dir. If dir sorts after startAfter,
	// so do they all; if startAfter runs inside dir, some may; otherwise dir
	// and startAfter differ at a byte where dir is smaller, and so is every
	// key below it.
	return dir > w.startAfter || strings.HasPrefix(w.startAfter, dir)
}
