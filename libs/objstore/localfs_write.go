package objstore

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A file system cannot hold a key and a longer key below it ("a/b" and
// "a/b/c"); these name the two ways a write can run into that.
var (
	errKeyIsDir    = errors.New("a directory of other keys has this name (a file store cannot hold both \"k\" and \"k/...\")")
	errParentIsKey = errors.New("a path prefix of the key is itself an object (a file store cannot hold both \"k\" and \"k/...\")")
)

// publishAttempts bounds how often publish recreates a parent directory that
// a concurrent Delete pruned between our MkdirAll and our rename/link. On a
// busy machine a writer can lose that race many times in a row (16 was not
// enough with two cores shared by many processes), so after a few attempts
// it backs off a little (publishBackoff per attempt, at most 2 ms) to let
// the pruner finish.
const (
	publishAttempts = 200
	publishBackoff  = 50 * time.Microsecond
)

// writeTemp writes the parts, one after another, to a new file in the temp
// directory and fsyncs it, so whatever later takes its name is complete and
// durable.
func (s *LocalFS) writeTemp(parts [][]byte) (string, error) {
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return "", fmt.Errorf("create temp file: %w", err)
	}
	name := f.Name()
	werr := writeParts(f, parts)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(name)
		return "", fmt.Errorf("write temp file %s: %w", name, werr)
	}
	return name, nil
}

// partsBufSize is the buffer that gathers runs of small parts into one
// write; a part at least this large is written straight from the caller's
// memory (bufio.Writer does both).
const partsBufSize = 64 << 10

var partsWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, partsBufSize) }}

// writeParts writes parts to f in order: one write for a single part, else
// through a pooled buffer so that many small parts (a publication of many
// idle ranges) do not cost a system call each.
func writeParts(f *os.File, parts [][]byte) error {
	sb := &syncBehind{f: f}
	if len(parts) == 1 {
		_, err := sb.Write(parts[0])
		return err
	}
	w := partsWriters.Get().(*bufio.Writer)
	w.Reset(sb)
	defer func() {
		w.Reset(nil)
		partsWriters.Put(w)
	}()
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return w.Flush()
}

// syncBehindBytes is how much of a file is written before the kernel is
// asked to start writing it back.
const syncBehindBytes = 1 << 20

// writeback is startWriteback; tests replace it to see the calls.
var writeback = startWriteback

// syncBehind writes to a file in pieces of at most syncBehindBytes and,
// after each, asks the kernel to start writing back what was written, so
// the device works while the rest is still being copied and the fsync
// that ends the file waits for about its last piece instead of for all of
// it. On this project's 2-core guest a publication of ~20 MiB waited
// 15–18 ms in fsync without it and 4–11 ms with it (docs/benchmarks.md,
// "Write-back behind the writes; pages the collector read first").
type syncBehind struct {
	f      *os.File
	off    int64 // bytes written
	synced int64 // bytes whose write-back was started
}

func (w *syncBehind) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), int(syncBehindBytes-(w.off-w.synced)))
		m, err := w.f.Write(p[:k])
		n += m
		w.off += int64(m)
		if err != nil {
			return n, err
		}
		p = p[k:]
		if w.off-w.synced >= syncBehindBytes {
			writeback(w.f, w.synced, w.off-w.synced)
			w.synced = w.off
		}
	}
	return n, nil
}

// publish gives the temp file the key's name with op (rename or link), making
// parent directories as needed, then fsyncs the directories it changed.
// Delete prunes empty directories concurrently, so a parent can vanish
// between MkdirAll and op: that shows as ENOENT and is retried.
func (s *LocalFS) publish(key string, op func(final string) error) error {
	final := s.path(key)
	parent := filepath.Dir(final)
	created := false
	for attempt := 1; ; attempt++ {
		err := op(final)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			if errors.Is(err, syscall.ENOTDIR) {
				return fmt.Errorf("%w: %w", errParentIsKey, err)
			}
			if fi, serr := os.Lstat(final); serr == nil && fi.IsDir() {
				return fmt.Errorf("%w: %w", errKeyIsDir, err)
			}
			return err
		}
		if attempt == publishAttempts {
			return fmt.Errorf("parent directory kept vanishing after %d attempts: %w", attempt, err)
		}
		if attempt > 4 {
			time.Sleep(min(time.Duration(attempt)*publishBackoff, 2*time.Millisecond))
		}
		// ENOENT from MkdirAll is the same race one level up, and EEXIST is
		// a directory pruned between its mkdir and its check: try again.
		if err := os.MkdirAll(parent, 0o755); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, os.ErrExist) {
			if errors.Is(err, syscall.ENOTDIR) {
				return fmt.Errorf("%w: %w", errParentIsKey, err)
			}
			return fmt.Errorf("create directory %s: %w", parent, err)
		}
		created = true
	}
	// New directories are durable only once each one's entry in its own
	// parent is synced too, so after creating any, sync the chain up to the
	// root. A directory missing by now was pruned after a concurrent Delete of
	// this very key, which is an outcome Put may have, not an error.
	for dir := parent; ; dir = filepath.Dir(dir) {
		if err := syncDir(dir); err != nil && !isMissing(err) {
			return err
		}
		if !created || dir == s.root || !strings.HasPrefix(dir, s.root) {
			return nil
		}
	}
}

// prune removes empty directories from dir up to (not including) the root.
// It is best effort: a directory a concurrent Put just filled is not empty,
// and the Put retries if it loses the race (see publish).
func (s *LocalFS) prune(dir string) {
	for dir != s.root && strings.HasPrefix(dir, s.root+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// syncDir fsyncs a directory so the entries created or removed in it survive
// a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
