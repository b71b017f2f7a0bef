package crypt

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Envelope format version 1 (docs/formats/encryption.md). All integers are
// little-endian, as in the container format.
const (
	// Magic starts every encrypted object; no container magic equals it.
	Magic = "TSEN"
	// FormatVersion is the envelope format this package writes and reads.
	FormatVersion = 1
	// DefaultChunkSize is the plaintext bytes per AES-GCM chunk.
	DefaultChunkSize = 16 << 10

	fixedHeaderLen = 4 + 1 + 1 + 2 + 4 + 8 + saltLen + 2 + 2
	saltLen        = 16
	tagLen         = 16
	minChunkSize   = 16
	maxChunkSize   = 16 << 20
	maxRefLen      = 1024
	maxWrappedLen  = 4096
	maxPlainLen    = 1 << 56 // keeps every offset computation far from overflow
	// MaxHeaderLen bounds the header: a reader never needs more bytes than
	// this to learn where the chunks are.
	MaxHeaderLen = fixedHeaderLen + maxRefLen + maxWrappedLen
)

// header is an envelope header: everything before the first chunk.
type header struct {
	chunkSize int64
	plainLen  int64
	salt      [saltLen]byte
	ref       string // the KEK reference that wrapped the data key
	wrapped   []byte // the data key, wrapped
	raw       []byte // the encoded header, bound into every chunk
}

// encode sets and returns h.raw.
func (h *header) encode() []byte {
	n := fixedHeaderLen + len(h.ref) + len(h.wrapped)
	b := make([]byte, 0, n)
	b = append(b, Magic...)
	b = append(b, FormatVersion, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(n))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.chunkSize))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.plainLen))
	b = append(b, h.salt[:]...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.ref)))
	b = append(b, h.ref...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.wrapped)))
	b = append(b, h.wrapped...)
	h.raw = b
	return b
}

// isEnvelope reports whether b starts like an envelope.
func isEnvelope(b []byte) bool { return len(b) >= len(Magic) && string(b[:len(Magic)]) == Magic }

// decodeHeader parses the header at the start of b. If b is too short to
// hold it, it returns need > len(b): how many bytes to read (at most
// MaxHeaderLen) and no error. Malformed headers match ErrCorrupt.
func decodeHeader(b []byte) (h *header, need int, err error) {
	if len(b) < 8 {
		return nil, fixedHeaderLen, nil
	}
	if !isEnvelope(b) {
		return nil, 0, fmt.Errorf("%w: magic %q, want %q", ErrCorrupt, b[:4], Magic)
	}
	if b[4] != FormatVersion || b[5] != 0 {
		return nil, 0, fmt.Errorf("%w: format version %d flags %d, want version %d flags 0", ErrCorrupt, b[4], b[5], FormatVersion)
	}
	n := int(binary.LittleEndian.Uint16(b[6:]))
	if n < fixedHeaderLen || n > MaxHeaderLen {
		return nil, 0, fmt.Errorf("%w: header length %d is outside [%d, %d]", ErrCorrupt, n, fixedHeaderLen, MaxHeaderLen)
	}
	if len(b) < n {
		return nil, n, nil
	}
	b = b[:n]
	h = &header{raw: b}
	p := 8
	h.chunkSize = int64(binary.LittleEndian.Uint32(b[p:]))
	p += 4
	plain := binary.LittleEndian.Uint64(b[p:])
	p += 8
	p += copy(h.salt[:], b[p:p+saltLen])
	if h.chunkSize < minChunkSize || h.chunkSize > maxChunkSize {
		return nil, 0, fmt.Errorf("%w: chunk size %d is outside [%d, %d]", ErrCorrupt, h.chunkSize, minChunkSize, maxChunkSize)
	}
	if plain > maxPlainLen {
		return nil, 0, fmt.Errorf("%w: plaintext length %d is above %d", ErrCorrupt, plain, uint64(maxPlainLen))
	}
	h.plainLen = int64(plain)
	ref, p, err := lenPrefixed(b, p, maxRefLen, "key reference")
	if err != nil {
		return nil, 0, err
	}
	if len(ref) == 0 || !utf8.Valid(ref) {
		return nil, 0, fmt.Errorf("%w: key reference is empty or not UTF-8", ErrCorrupt)
	}
	h.ref = string(ref)
	wrapped, p, err := lenPrefixed(b, p, maxWrappedLen, "wrapped key")
	if err != nil {
		return nil, 0, err
	}
	if len(wrapped) == 0 {
		return nil, 0, fmt.Errorf("%w: empty wrapped key", ErrCorrupt)
	}
	h.wrapped = wrapped
	if p != n {
		return nil, 0, fmt.Errorf("%w: header length %d but its fields end at %d", ErrCorrupt, n, p)
	}
	return h, n, nil
}

// lenPrefixed reads a u16-length-prefixed field at b[p:].
func lenPrefixed(b []byte, p, limit int, what string) ([]byte, int, error) {
	if len(b)-p < 2 {
		return nil, 0, fmt.Errorf("%w: header ends before the %s length", ErrCorrupt, what)
	}
	l := int(binary.LittleEndian.Uint16(b[p:]))
	p += 2
	if l > limit || len(b)-p < l {
		return nil, 0, fmt.Errorf("%w: %s of %d bytes (limit %d, %d left in the header)", ErrCorrupt, what, l, limit, len(b)-p)
	}
	return b[p : p+l], p + l, nil
}

// chunks is the number of chunks: at least one, so an empty object still
// carries a tag that authenticates its header.
func (h *header) chunks() int64 { return max(1, (h.plainLen+h.chunkSize-1)/h.chunkSize) }

// chunkOff is where chunk i starts in the object.
func (h *header) chunkOff(i int64) int64 { return int64(len(h.raw)) + i*(h.chunkSize+tagLen) }

// chunkPlain is the plaintext length of chunk i.
func (h *header) chunkPlain(i int64) int64 { return min(h.chunkSize, h.plainLen-i*h.chunkSize) }

// objectLen is the length of the whole encrypted object.
func (h *header) objectLen() int64 { return int64(len(h.raw)) + h.plainLen + h.chunks()*tagLen }

// objectKeyInfo is HKDF's info for per-object keys.
const objectKeyInfo = "tistream envelope v1 object key"

// sealer seals and opens the chunks of one object.
type sealer struct {
	h    *header
	aead cipher.AEAD
	ad   [sha256.Size]byte // digest of the object key and the header
}

// newSealer derives the object's key from the data key and the header's
// salt, and binds the object key and the header into every chunk.
func newSealer(dek []byte, h *header, objKey string) (*sealer, error) {
	k, err := hkdf.Key(sha256.New, dek, h.salt[:], objectKeyInfo, DataKeyLen)
	if err != nil {
		return nil, err
	}
	aead, err := gcmOf(k)
	if err != nil {
		return nil, err
	}
	s := &sealer{h: h, aead: aead}
	d := sha256.New()
	d.Write([]byte("tistream envelope v1\x00"))
	d.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(objKey))))
	d.Write([]byte(objKey))
	d.Write(h.raw)
	d.Sum(s.ad[:0])
	return s, nil
}

// nonceAndAD returns chunk i's nonce and additional data: the index is in
// both, the last-chunk flag in the additional data.
func (s *sealer) nonceAndAD(i int64) (nonce [12]byte, ad [sha256.Size + 9]byte) {
	binary.LittleEndian.PutUint64(nonce[4:], uint64(i))
	copy(ad[:], s.ad[:])
	binary.LittleEndian.PutUint64(ad[sha256.Size:], uint64(i))
	if i == s.h.chunks()-1 {
		ad[sha256.Size+8] = 1
	}
	return nonce, ad
}

// seal appends the header and every chunk of the plaintext, the
// concatenation of parts (h.plainLen bytes), to dst. A chunk within one
// part is sealed from there; one that spans parts is gathered where its
// ciphertext goes and sealed in place, so the parts are never joined.
func (s *sealer) seal(dst []byte, parts [][]byte) []byte {
	dst = append(dst, s.h.raw...)
	var cur []byte // what is left of the part being read
	next := func() {
		for len(cur) == 0 && len(parts) > 0 {
			cur, parts = parts[0], parts[1:]
		}
	}
	for i := range s.h.chunks() {
		n := int(s.h.chunkPlain(i))
		nonce, ad := s.nonceAndAD(i)
		if next(); len(cur) >= n {
			dst = s.aead.Seal(dst, nonce[:], cur[:n], ad[:])
			cur = cur[n:]
			continue
		}
		start := len(dst)
		for have := 0; have < n; have = len(dst) - start {
			next()
			k := min(len(cur), n-have)
			dst = append(dst, cur[:k]...)
			cur = cur[k:]
		}
		dst = s.aead.Seal(dst[:start], nonce[:], dst[start:], ad[:])
	}
	return dst
}

// open appends to dst the plaintext of the chunks first, first+1, ... that
// ct holds back to back, which must be whole chunks.
func (s *sealer) open(dst, ct []byte, first int64) ([]byte, error) {
	for i := first; len(ct) > 0; i++ {
		n, err := s.chunkLen(ct, i)
		if err != nil {
			return nil, err
		}
		if dst, err = s.openChunk(dst, ct[:n], i); err != nil {
			return nil, err
		}
		ct = ct[n:]
	}
	return dst, nil
}

// openRange decrypts into dst the plaintext from offset start of the
// object (len(dst) bytes) out of ct, the whole chunks first, first+1, ...
// covering it back to back. A chunk wholly inside the range is decrypted
// where its plaintext goes; the range's first and last chunk, when only
// partly inside, through part (appended to: room for a chunk saves an
// allocation).
func (s *sealer) openRange(dst, ct []byte, first, start int64, part []byte) ([]byte, error) {
	end := start + int64(len(dst))
	for i := first; len(ct) > 0; i++ {
		n, err := s.chunkLen(ct, i)
		if err != nil {
			return nil, err
		}
		lo := i * s.h.chunkSize // the chunk's plaintext: [lo, hi)
		hi := lo + n - tagLen
		if lo >= end || hi <= start {
			return nil, fmt.Errorf("%w: chunk %d is outside the range read", ErrCorrupt, i)
		}
		if lo >= start && hi <= end {
			if _, err := s.openChunk(dst[lo-start:lo-start], ct[:n], i); err != nil {
				return nil, err
			}
		} else {
			if part, err = s.openChunk(part[:0], ct[:n], i); err != nil {
				return nil, err
			}
			from, to := max(start, lo), min(end, hi)
			copy(dst[from-start:to-start], part[from-lo:to-lo])
		}
		ct = ct[n:]
	}
	return dst, nil
}

// chunkLen is the length of chunk i's ciphertext, which ct must hold.
func (s *sealer) chunkLen(ct []byte, i int64) (int64, error) {
	if i >= s.h.chunks() {
		return 0, fmt.Errorf("%w: %d bytes after the last chunk", ErrCorrupt, len(ct))
	}
	n := s.h.chunkPlain(i) + tagLen
	if int64(len(ct)) < n {
		return 0, fmt.Errorf("%w: chunk %d has %d bytes, want %d (truncated)", ErrCorrupt, i, len(ct), n)
	}
	return n, nil
}

// openChunk appends chunk i's plaintext, opened from its ciphertext ct, to
// dst.
func (s *sealer) openChunk(dst, ct []byte, i int64) ([]byte, error) {
	nonce, ad := s.nonceAndAD(i)
	out, err := s.aead.Open(dst, nonce[:], ct, ad[:])
	if err != nil {
		return nil, fmt.Errorf("%w: chunk %d", ErrAuth, i)
	}
	return out, nil
}
