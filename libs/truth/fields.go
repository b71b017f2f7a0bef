package truth

import (
	"math"
	"unicode/utf16"
	"unicode/utf8"
)

// Decoders for the values the scanner located. Each returns a *fieldError
// naming the field, so the Reader can report `bad "commit_ts": ...`.

// hexVal maps a byte to its hex digit value, or -1.
var hexVal = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = int8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = int8(c - 'a' + 10)
		t[c-'a'+'A'] = int8(c - 'a' + 10)
	}
	return t
}()

// uintField decodes an unsigned integer exactly: timestamps exceed 2^53, so
// a float64 round trip would silently change them.
func (s *scanner) uintField(id fieldID) (uint64, error) {
	v := s.slots[id]
	name := fieldNames[id]
	switch v.kind {
	case vNone:
		return 0, missingField(name)
	case vNumber:
	default:
		return 0, badField(name, "not a number")
	}
	raw := s.buf[v.start:v.end]
	if raw[0] == '-' {
		return 0, badField(name, "negative number %s", raw)
	}
	var n uint64
	for i, c := range raw {
		if c < '0' || c > '9' {
			return 0, badField(name, "not an integer: %s", raw)
		}
		d := uint64(c - '0')
		// Up to 19 digits cannot overflow; only then pay for the check.
		if i >= 19 && n > (math.MaxUint64-d)/10 {
			return 0, badField(name, "out of range: %s", raw)
		}
		n = n*10 + d
	}
	return n, nil
}

// intField decodes a table id or schema version: int64 in the model, but
// TiDB never assigns negative ones, so a negative value is a writer bug.
func (s *scanner) intField(id fieldID) (int64, error) {
	n, err := s.uintField(id)
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt64 {
		return 0, badField(fieldNames[id], "out of range: %d", n)
	}
	return int64(n), nil
}

// stringField returns the unescaped contents of a string field; the result
// aliases the line or scratch and is valid until the next line.
func (s *scanner) stringField(id fieldID, scratch *[]byte) ([]byte, error) {
	v := s.slots[id]
	switch v.kind {
	case vNone:
		return nil, missingField(fieldNames[id])
	case vString:
	default:
		return nil, badField(fieldNames[id], "not a string")
	}
	raw := s.buf[v.start:v.end]
	if !v.escaped {
		return raw, nil
	}
	*scratch = unescape((*scratch)[:0], raw)
	return *scratch, nil
}

// hexField decodes a hex string field into dst[:0].
func (s *scanner) hexField(id fieldID, dst []byte, scratch *[]byte) ([]byte, error) {
	src, err := s.stringField(id, scratch)
	if err != nil {
		return dst, err
	}
	if len(src)%2 != 0 {
		return dst, badField(fieldNames[id], "odd length hex (%d digits)", len(src))
	}
	dst = dst[:0]
	for i := 0; i < len(src); i += 2 {
		hi, lo := hexVal[src[i]], hexVal[src[i+1]]
		if hi < 0 || lo < 0 {
			at := i
			if hi >= 0 {
				at++
			}
			return dst, badField(fieldNames[id], "invalid hex character %q at offset %d", src[at], at)
		}
		dst = append(dst, byte(hi)<<4|byte(lo))
	}
	return dst, nil
}

// unescape appends the decoded form of a JSON string body whose escapes
// scanString has already checked.
func unescape(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c != '\\' || i+1 >= len(src) {
			dst = append(dst, c)
			continue
		}
		i++
		switch src[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, n := decodeU(src[i-1:])
			dst = utf8.AppendRune(dst, r)
			i += n - 2
		default: // '"', '\\', '/'
			dst = append(dst, src[i])
		}
	}
	return dst
}

// decodeU decodes a \uXXXX escape (and a following low surrogate, if it
// pairs) at the start of src, returning the rune and the bytes used.
func decodeU(src []byte) (rune, int) {
	r1, ok := hex4(src)
	if !ok {
		return utf8.RuneError, len(src)
	}
	if utf16.IsSurrogate(r1) {
		if r2, ok := hex4(src[6:]); ok {
			if r := utf16.DecodeRune(r1, r2); r != utf8.RuneError {
				return r, 12
			}
		}
		return utf8.RuneError, 6
	}
	return r1, 6
}

// hex4 reads `\uXXXX` at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[2:6] {
		v := hexVal[c]
		if v < 0 {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}
