package objstore

import (
	"context"
	"errors"
)

// Errors every implementation returns wrapped with the key it concerns; test
// them with errors.Is.
var (
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrExists: PutIfAbsent found the key already taken.
	ErrExists = errors.New("object already exists")
	// ErrInvalidKey: the key breaks a rule of ValidateKey.
	ErrInvalidKey = errors.New("invalid object key")
	// ErrInvalidRange: GetRange started beyond the end of the object.
	ErrInvalidRange = errors.New("range not satisfiable")
)

// DefaultListLimit is the page size List uses when given limit <= 0.
const DefaultListLimit = 1000

// ObjectInfo describes one object returned by List.
type ObjectInfo struct {
	Key  string
	Size int64
}

// Store is the object-storage interface. Implementations are safe for
// concurrent use, and never keep or modify the data a caller passes to Put
// or PutIfAbsent (or the parts passed to PartsPutter's methods) after the
// call returns: a caller may reuse that buffer (the pool's writers recycle
// theirs).
type Store interface {
	// Put writes data atomically: a reader sees the old object or the whole
	// new one, never a part.
	Put(ctx context.Context, key string, data []byte) error
	// PutIfAbsent creates key only if it does not exist; otherwise it returns
	// an error matching ErrExists and leaves the existing object untouched.
	// Exactly one of many concurrent callers wins.
	PutIfAbsent(ctx context.Context, key string, data []byte) error
	// Get returns the whole object, or an error matching ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetRange reads n bytes from off; n < 0 means to the end. off < 0 means
	// the last -off bytes (n ignored). A range running past the end returns
	// what exists; off beyond the size is an error matching ErrInvalidRange.
	GetRange(ctx context.Context, key string, off, n int64) ([]byte, error)
	// List returns up to limit objects whose key starts with prefix and sorts
	// strictly after startAfter ("" = from the beginning), in byte-wise order
	// of the full key, and whether more remain. limit <= 0 means
	// DefaultListLimit.
	List(ctx context.Context, prefix, startAfter string, limit int) ([]ObjectInfo, bool, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// String names the store for logs and errors, e.g. "file:///data".
	String() string
}

// pageLimit turns List's limit argument into the page size to serve.
func pageLimit(limit int) int {
	if limit <= 0 {
		return DefaultListLimit
	}
	return limit
}
