package tidbcodec

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// WalkObject hands fn each top-level key of the JSON object b with the
// bytes of its value (strings with their quotes, objects and arrays whole,
// scalars as written), in order, without decoding the values: reading a
// few members of a large object (a TableInfo's id and name) this way costs
// a pass over its bytes, not a decode. It reports false — fn may have been
// called for some keys — when b is not an object it can walk: malformed
// structure, or a key with an escape or a non-ASCII byte (encoding/json
// matches keys by Unicode case folding; leave those to it). It does not
// check the contents of scalars or of nested values: a caller that uses a
// value parses it, and one that needs b valid checks it (json.Valid).
func WalkObject(b []byte, fn func(key, value []byte)) bool {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i == len(b) || b[i] != '"' {
			return false
		}
		end := i + 1
		for end < len(b) && b[end] != '"' && b[end] != '\\' && b[end] >= 0x20 && b[end] < 0x80 {
			end++
		}
		if end == len(b) || b[end] != '"' {
			return false
		}
		key := b[i+1 : end]
		i = skipSpace(b, end+1)
		if i == len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		start := i
		if i = skipValue(b, i); i <= start {
			return false
		}
		fn(key, b[start:i])
		i = skipSpace(b, i)
		if i == len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// KeyIs reports whether an ASCII key (as WalkObject gives it) matches name
// as encoding/json matches a field's name: ignoring ASCII case.
func KeyIs(key []byte, name string) bool { return bytes.EqualFold(key, []byte(name)) }

// JSONInt parses a JSON number value that is a plain integer (no
// fraction, exponent or leading zero; not "-0") into an int64; ok is false
// for anything else, which a caller leaves to encoding/json.
func JSONInt(v []byte) (int64, bool) {
	if len(v) == 0 || v[0] == '+' || (v[0] == '0' && len(v) > 1) || (v[0] == '-' && (len(v) == 1 || v[1] == '0')) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// TableInfoID reads the id of a TableInfo (TiDB's JSON) without decoding
// the rest of it: a walk of the object's top-level keys, where a decode of a
// snapshot's TableInfos would cost most of reading the snapshot (they are
// most of its bytes). What the walk does not take (an escaped key, an id
// that is not a plain integer, a malformed object) goes to encoding/json,
// whose error names what is wrong. The walk does not check the rest of the
// JSON: raw must already be known valid where that matters (a snapshot's
// objects are checked when it is decoded, schemasnap.Decode).
func TableInfoID(raw []byte) (int64, error) {
	if id, ok := topLevelID(raw); ok {
		return id, nil
	}
	var ti struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(raw, &ti); err != nil {
		return 0, err
	}
	return ti.ID, nil
}

// topLevelID returns the value of the last top-level "id" key of a JSON
// object (as encoding/json would: the last of duplicates wins), 0 if there
// is none; ok is false when b is not an object it can walk.
func topLevelID(b []byte) (id int64, ok bool) {
	good := true
	ok = WalkObject(b, func(key, v []byte) {
		if !KeyIs(key, "id") {
			return
		}
		n, isInt := JSONInt(v)
		if !isInt {
			good = false
			return
		}
		id = n
	})
	if !ok || !good {
		return 0, false
	}
	return id, true
}

// stringEnd returns the index after the closing quote of the JSON string
// whose contents start at i, or -1: a quote ends it unless an odd number
// of backslashes precedes it.
func stringEnd(b []byte, i int) int {
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		q := i + j
		n := 0
		for k := q - 1; k >= i && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		i = q + 1
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index after the JSON value at i (strings, nested
// objects and arrays by their brackets, scalars up to a delimiter), or -1.
func skipValue(b []byte, i int) int {
	if i == len(b) {
		return -1
	}
	depth := 0
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			if i = stringEnd(b, i+1); i < 0 {
				return -1
			}
		case c == '{' || c == '[':
			depth++
			i++
		case c == '}' || c == ']':
			if depth == 0 {
				return i
			}
			depth--
			i++
		case c == ',' && depth == 0:
			return i
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if depth == 0 {
				return i
			}
			i++
		default:
			i++
		}
		if depth == 0 && i > 0 && (b[i-1] == '"' || b[i-1] == '}' || b[i-1] == ']') {
			return i
		}
	}
	if depth != 0 {
		return -1
	}
	return i
}
