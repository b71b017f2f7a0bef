package objstore

import "fmt"

// clipRange resolves GetRange's (off, n) against an object of size bytes and
// returns the half-open byte range [start, end) to read. It is the single
// definition of the range semantics for stores that know the size up front.
func clipRange(key string, size, off, n int64) (start, end int64, err error) {
	if off < 0 {
		// Suffix read: the last -off bytes, or the whole object if it is
		// shorter. size+off cannot overflow since size >= 0.
		start = max(size+off, 0)
		return start, size, nil
	}
	if off > size {
		return 0, 0, fmt.Errorf("%w: offset %d is beyond the %d-byte object %s", ErrInvalidRange, off, size, quoteKey(key))
	}
	end = size
	if n >= 0 && n < size-off {
		end = off + n
	}
	return off, end, nil
}

// ClipRange is clipRange for wrappers that know an object's size from
// elsewhere (libs/crypt: the plaintext size in an envelope header), so they
// resolve GetRange's arguments exactly as the stores do.
func ClipRange(key string, size, off, n int64) (start, end int64, err error) {
	return clipRange(key, size, off, n)
}
