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
// JSON, or a key with an escape or a non-ASCII byte (encoding/json
// matches keys by Unicode case folding; leave those to it). Each value is
// checked as ValidJSON checks it on the way, so an object it walks is
// valid JSON (FuzzWalkObject holds it to encoding/json.Valid).
func WalkObject(b []byte, fn func(key, value []byte)) bool {
	v := validator{b: b}
	i := v.space(0)
	if i == len(b) || b[i] != '{' {
		return false
	}
	i = v.space(i + 1)
	if i < len(b) && b[i] == '}' {
		return v.space(i+1) == len(b)
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
		i = v.space(end + 1)
		if i == len(b) || b[i] != ':' {
			return false
		}
		i = v.space(i + 1)
		start := i
		if i = v.value(i, 1); i <= start { // a member of a top-level object
			return false
		}
		fn(key, b[start:i])
		i = v.space(i)
		if i == len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = v.space(i + 1)
		case '}':
			return v.space(i+1) == len(b)
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
// whose error names what is wrong. Either way raw is checked whole.
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
