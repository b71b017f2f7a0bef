package objstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sort"
)

// PartsPutter is implemented by stores that write an object given in parts
// — its bytes are the parts' concatenation, in order — without joining the
// parts in memory first: the parts go straight into the file or the request
// body. The semantics are exactly Put's and PutIfAbsent's (atomic; an
// exclusive create that fails with ErrExists), and, as with them, the store
// keeps nothing of the parts once the call returns.
//
// Callers do not use it directly but through the package functions
// PutParts and PutIfAbsentParts, which join the parts for a store without
// it. A wrapper implements it only when it can pass the parts on (through
// the package functions, to what it wraps); one that does not simply
// leaves it out and receives the joined object through its own Put or
// PutIfAbsent. (A wrapper embedding the Store interface does not pick it
// up by accident: only the interface's methods are promoted.)
type PartsPutter interface {
	// PutParts is Put of the parts' concatenation.
	PutParts(ctx context.Context, key string, parts [][]byte) error
	// PutIfAbsentParts is PutIfAbsent of the parts' concatenation.
	PutIfAbsentParts(ctx context.Context, key string, parts [][]byte) error
}

// PutParts writes the concatenation of parts to key with s.Put's
// semantics, without joining them when s is a PartsPutter. No parts, or
// only empty ones, write an empty object.
func PutParts(ctx context.Context, s Store, key string, parts ...[]byte) error {
	if len(parts) == 1 {
		return s.Put(ctx, key, parts[0])
	}
	if p, ok := s.(PartsPutter); ok {
		return p.PutParts(ctx, key, parts)
	}
	return s.Put(ctx, key, joinParts(parts))
}

// PutIfAbsentParts writes the concatenation of parts to key with
// s.PutIfAbsent's semantics, without joining them when s is a PartsPutter.
func PutIfAbsentParts(ctx context.Context, s Store, key string, parts ...[]byte) error {
	if len(parts) == 1 {
		return s.PutIfAbsent(ctx, key, parts[0])
	}
	if p, ok := s.(PartsPutter); ok {
		return p.PutIfAbsentParts(ctx, key, parts)
	}
	return s.PutIfAbsent(ctx, key, joinParts(parts))
}

// PartsLen is the length of the parts' concatenation.
func PartsLen(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// joinParts is the parts' concatenation: a single part as it is, else a
// new slice.
func joinParts(parts [][]byte) []byte {
	if len(parts) == 1 {
		return parts[0]
	}
	return appendParts(make([]byte, 0, PartsLen(parts)), parts)
}

// appendParts appends every part to dst.
func appendParts(dst []byte, parts [][]byte) []byte {
	for _, p := range parts {
		dst = append(dst, p...)
	}
	return dst
}

// equalParts reports whether b is the concatenation of parts.
func equalParts(b []byte, parts [][]byte) bool {
	for _, p := range parts {
		if len(p) > len(b) || !bytes.Equal(b[:len(p)], p) {
			return false
		}
		b = b[len(p):]
	}
	return len(b) == 0
}

// partsBody is a request body reading parts in sequence: seekable, as the
// S3 client needs to sign the payload and to send it again on a retry.
func partsBody(parts [][]byte) (io.ReadSeeker, int64) {
	if len(parts) == 1 {
		return bytes.NewReader(parts[0]), int64(len(parts[0]))
	}
	r := &partsReaderAt{parts: parts, ends: make([]int64, len(parts))}
	var n int64
	for i, p := range parts {
		n += int64(len(p))
		r.ends[i] = n
	}
	return io.NewSectionReader(r, 0, n), n
}

// partsReaderAt reads the concatenation of parts at any offset.
type partsReaderAt struct {
	parts [][]byte
	ends  []int64 // ends[i]: the offset just past part i
}

// ReadAt implements io.ReaderAt.
func (r *partsReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("objstore: negative offset into a body of parts")
	}
	n := 0
	for i := sort.Search(len(r.ends), func(i int) bool { return r.ends[i] > off }); i < len(r.parts) && n < len(p); i++ {
		start := r.ends[i] - int64(len(r.parts[i]))
		n += copy(p[n:], r.parts[i][off+int64(n)-start:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
