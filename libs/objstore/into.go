package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// RangeIntoGetter is implemented by stores that read a range of an object
// into a buffer the caller gives, so a reader that recycles its buffers
// reads into memory it already holds instead of a new allocation (on a
// machine where a page's first touch is dear, most of the cost of a read).
// GetRangeInto reads what GetRange(ctx, key, off, len(buf)) would return
// (off >= 0) into buf and returns it: a prefix of buf, shorter when the
// object ends first. The store keeps no reference to buf.
//
// Callers use the package function GetRangeInto, which falls back to
// GetRange for a store without it. A wrapper implements it only when it can
// pass the buffer on (through the package function); one that does not
// simply leaves it out.
type RangeIntoGetter interface {
	GetRangeInto(ctx context.Context, key string, off int64, buf []byte) ([]byte, error)
}

// GetRangeInto reads len(buf) bytes of key from off (off >= 0) into buf
// when s is a RangeIntoGetter, and with GetRange otherwise (the bytes are
// then in a buffer of the store's, not in buf). The result has GetRange's
// semantics: fewer bytes when the object ends first, ErrInvalidRange when
// off is past its end.
func GetRangeInto(ctx context.Context, s Store, key string, off int64, buf []byte) ([]byte, error) {
	if off < 0 {
		return nil, negativeOffsetErr(key, off)
	}
	if g, ok := s.(RangeIntoGetter); ok {
		return g.GetRangeInto(ctx, key, off, buf)
	}
	return s.GetRange(ctx, key, off, int64(len(buf)))
}

// negativeOffsetErr refuses a suffix read, which GetRangeInto does not do
// (the package function and the stores' methods alike).
func negativeOffsetErr(key string, off int64) error {
	return fmt.Errorf("get %s: %w: offset %d (GetRangeInto reads from an offset)", quoteKey(key), ErrInvalidRange, off)
}

// readAtInto reads [start, end) of r into buf[:end-start]; io.EOF before
// the end (the object shrank under the reader: only a replaced name can
// do that, and LocalFS reads one open inode) is an error.
func readAtInto(r io.ReaderAt, buf []byte, start, end int64) ([]byte, error) {
	buf = buf[:end-start]
	if _, err := r.ReadAt(buf, start); err != nil && !(errors.Is(err, io.EOF) && len(buf) == 0) {
		return nil, fmt.Errorf("read %d bytes at %d: %w", len(buf), start, err)
	}
	return buf, nil
}
