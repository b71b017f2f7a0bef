package crypt

import (
	"context"
	"errors"
	"fmt"

	"github.com/tistream/tistream/libs/objstore"
)

const (
	// probeLen is what a ranged read of an object whose header is not
	// cached reads first: any header a KMS of today makes fits.
	probeLen = 1 << 10
	// nearStart: a range ending within this many bytes is read with the
	// header in one request, as the pool's first read of an index is.
	nearStart = 256 << 10
)

// GetRange implements objstore.Store. With the object's header cached it
// is one request for the chunks covering the range; otherwise the first
// request reads the header (and, near the start, the range too). A cached
// header that no longer matches the object (overwritten since) is dropped
// and the read done again from the object as it is.
func (s *Store) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	return s.getRange(ctx, key, off, n, nil)
}

// GetRangeInto implements objstore.RangeIntoGetter, as GetRange: the
// plaintext is decrypted into buf (the chunks' ciphertext is read into a
// buffer the store recycles), and a plaintext object is read into it, so a
// reader that recycles its buffers does so for encrypted tenants too.
func (s *Store) GetRangeInto(ctx context.Context, key string, off int64, buf []byte) ([]byte, error) {
	if off < 0 {
		return objstore.GetRangeInto(ctx, s.inner, key, off, buf) // refused there
	}
	return s.getRange(ctx, key, off, int64(len(buf)), buf)
}

// getRange is GetRange, or with into not nil (then off >= 0 and n =
// len(into)) GetRangeInto.
func (s *Store) getRange(ctx context.Context, key string, off, n int64, into []byte) ([]byte, error) {
	tenant, ok := s.tenantOf(key)
	if !ok {
		return s.innerRange(ctx, key, off, n, into)
	}
	if sl, ok := s.headers.get(key); ok {
		if sl == nil {
			b, err := s.innerRange(ctx, key, off, n, into)
			// Plaintext when cached: a read from the start shows if it
			// has been overwritten by an envelope since.
			if err != nil || (off != 0 && off > -int64(len(b))) || !isEnvelope(b) {
				return b, err
			}
		} else {
			b, err := s.readRange(ctx, tenant, key, sl, nil, off, n, into)
			if err == nil || !stale(err) {
				return b, err
			}
		}
		s.headers.remove(key)
	}
	return s.getRangeFresh(ctx, tenant, key, off, n, into)
}

// innerRange reads a range of the stored object as it is: into into when
// it is not nil.
func (s *Store) innerRange(ctx context.Context, key string, off, n int64, into []byte) ([]byte, error) {
	if into != nil {
		return objstore.GetRangeInto(ctx, s.inner, key, off, into)
	}
	return s.inner.GetRange(ctx, key, off, n)
}

// copyInto returns b, or its bytes copied into into when into is not nil
// (GetRangeInto answers in the buffer given, whatever the path).
func copyInto(into, b []byte) []byte {
	if into == nil {
		return b
	}
	return into[:copy(into, b)]
}

// stale reports whether err may come from a cached header that is out of
// date.
func stale(err error) bool {
	return errors.Is(err, ErrAuth) || errors.Is(err, ErrCorrupt) || errors.Is(err, objstore.ErrInvalidRange)
}

// getRangeFresh reads the object's header, caches it and reads the range.
func (s *Store) getRangeFresh(ctx context.Context, tenant uint64, key string, off, n int64, into []byte) ([]byte, error) {
	want := int64(probeLen)
	if off >= 0 && n >= 0 && off+n <= nearStart {
		// Whole chunks (of the default size) from the start.
		chunks := (off + n + DefaultChunkSize - 1) / DefaultChunkSize
		want += chunks * (DefaultChunkSize + tagLen)
	}
	b, err := s.inner.GetRange(ctx, key, 0, want)
	if err != nil {
		if errors.Is(err, objstore.ErrNotFound) {
			s.headers.remove(key)
		}
		return nil, err
	}
	if !isEnvelope(b) {
		s.headers.put(key, nil)
		whole := int64(len(b)) < want
		switch {
		case whole:
			start, end, err := objstore.ClipRange(key, int64(len(b)), off, n)
			if err != nil {
				return nil, err
			}
			return copyInto(into, b[start:end:end]), nil
		case off >= 0 && n >= 0 && off+n <= int64(len(b)):
			return copyInto(into, b[off:off+n:off+n]), nil
		}
		return s.innerRange(ctx, key, off, n, into)
	}
	h, need, err := decodeHeader(b)
	if err == nil && need > len(b) {
		if int64(len(b)) < want {
			err = fmt.Errorf("%w: the %d-byte object ends inside its %d-byte header", ErrCorrupt, len(b), need)
		} else if b, err = s.inner.GetRange(ctx, key, 0, int64(need)); err == nil {
			h, need, err = decodeHeader(b)
			if err == nil && need > len(b) {
				err = fmt.Errorf("%w: the object ends inside its %d-byte header", ErrCorrupt, need)
			}
		}
	}
	if err != nil {
		return nil, &KeyError{Op: "open", Tenant: tenant, HasTenant: true, Key: key, Err: err}
	}
	sl, err := s.sealerFor(ctx, tenant, key, h)
	if err != nil {
		return nil, err
	}
	s.headers.put(key, sl)
	return s.readRange(ctx, tenant, key, sl, b, off, n, into)
}

// readRange reads plaintext [off, off+n) (GetRange's semantics) of the
// object sl opens: from have, the object's first bytes, when they cover
// the chunks needed, else with one request. With into not nil the
// plaintext is decrypted into it, the ciphertext read into a recycled
// buffer.
func (s *Store) readRange(ctx context.Context, tenant uint64, key string, sl *sealer, have []byte, off, n int64, into []byte) ([]byte, error) {
	h := sl.h
	start, end, err := objstore.ClipRange(key, h.plainLen, off, n)
	if err != nil {
		return nil, err
	}
	if start == end {
		if have == nil { // the object may have gone since its header was cached
			if _, err := s.inner.GetRange(ctx, key, 0, 0); err != nil {
				return nil, err
			}
		}
		return copyInto(into, []byte{}), nil
	}
	first, last := start/h.chunkSize, (end-1)/h.chunkSize
	lo, hi := h.chunkOff(first), h.chunkOff(last)+h.chunkPlain(last)+tagLen
	var ct, scratch []byte
	switch {
	case hi <= int64(len(have)):
		ct = have[lo:hi]
	case into != nil:
		scratch = s.scratch.take(int(hi - lo))
		defer func() { s.scratch.put(scratch) }()
		ct, err = objstore.GetRangeInto(ctx, s.inner, key, lo, scratch)
	default:
		ct, err = s.inner.GetRange(ctx, key, lo, hi-lo)
	}
	if err != nil {
		return nil, err
	}
	keyErr := func(err error) error {
		return &KeyError{Op: "open", Tenant: tenant, HasTenant: true, Ref: h.ref, Key: key, Err: err}
	}
	if int64(len(ct)) != hi-lo {
		return nil, keyErr(fmt.Errorf("%w: chunks %d-%d have %d bytes, want %d (truncated)", ErrCorrupt, first, last, len(ct), hi-lo))
	}
	if into == nil {
		pt, err := sl.open(make([]byte, 0, (last-first)*h.chunkSize+h.chunkPlain(last)), ct, first)
		if err != nil {
			return nil, keyErr(err)
		}
		base := first * h.chunkSize
		return pt[start-base : end-base : end-base], nil
	}
	var part []byte
	if start > first*h.chunkSize || end < last*h.chunkSize+h.chunkPlain(last) {
		// The range starts or ends inside a chunk, which is opened aside.
		part = s.scratch.take(int(h.chunkSize))
	}
	pt, err := sl.openRange(into[:end-start], ct, first, start, part[:0])
	s.scratch.put(part)
	if err != nil {
		return nil, keyErr(err)
	}
	return pt, nil
}
