package truth

import "bytes"

// The scanner checks one line against the JSON grammar and records where the
// values of the fields this package knows are, without copying or
// allocating: decoding happens later, only for the fields the line's type
// needs. Unknown fields are checked and skipped, so any valid JSON object is
// accepted and new optional fields never break a reader.

type fieldID uint8

const (
	fType fieldID = iota
	fTenant
	fTableID
	fCommitTs
	fStartTs
	fOp
	fKey
	fValue
	fSchemaVersion
	fTs
	fResolvedTs
	fDBID
	fAction
	fDB
	fTable
	fOldTableID
	fJobID
	fQuery
	fTableInfo
	nFields
)

var fieldNames = [nFields]string{
	"type", "tenant", "table_id", "commit_ts", "start_ts", "op", "key", "value",
	"schema_version", "ts", "resolved_ts", "db_id", "action",
	"db", "table", "old_table_id", "job_id", "query", "table_info",
}

func lookupField(name []byte) (fieldID, bool) {
	// A switch on string(name) compiles to comparisons without allocating.
	switch string(name) {
	case "type":
		return fType, true
	case "tenant":
		return fTenant, true
	case "table_id":
		return fTableID, true
	case "commit_ts":
		return fCommitTs, true
	case "start_ts":
		return fStartTs, true
	case "op":
		return fOp, true
	case "key":
		return fKey, true
	case "value":
		return fValue, true
	case "schema_version":
		return fSchemaVersion, true
	case "ts":
		return fTs, true
	case "resolved_ts":
		return fResolvedTs, true
	case "db_id":
		return fDBID, true
	case "action":
		return fAction, true
	case "db":
		return fDB, true
	case "table":
		return fTable, true
	case "old_table_id":
		return fOldTableID, true
	case "job_id":
		return fJobID, true
	case "query":
		return fQuery, true
	case "table_info":
		return fTableInfo, true
	}
	return 0, false
}

type valueKind uint8

const (
	vNone valueKind = iota // field absent
	vString
	vNumber
	vOther // true, false, null, object or array
)

// span locates one value in the line: for strings, the contents between the
// quotes.
type span struct {
	start, end int
	kind       valueKind
	escaped    bool // a string holding backslash escapes
}

// maxDepth bounds nesting in skipped values so a hostile line cannot make
// the reader recurse without limit.
const maxDepth = 64

type scanner struct {
	buf   []byte
	pos   int
	slots [nFields]span
	name  []byte // unescaped field name, reused
}

func (s *scanner) scanObject(line []byte) error {
	s.buf, s.pos, s.slots = line, 0, [nFields]span{}
	s.skipWS()
	if !s.consume('{') {
		return s.syntax("expected '{'")
	}
	s.skipWS()
	if !s.consume('}') {
		for {
			if err := s.member(); err != nil {
				return err
			}
			s.skipWS()
			if s.consume(',') {
				s.skipWS()
				continue
			}
			if s.consume('}') {
				break
			}
			return s.syntax("expected ',' or '}'")
		}
	}
	s.skipWS()
	if s.pos != len(s.buf) {
		return s.syntax("data after the object")
	}
	return nil
}

// member scans `"name": value` of the top-level object.
func (s *scanner) member() error {
	if s.peek() != '"' {
		return s.syntax("expected a field name")
	}
	ns, err := s.scanString()
	if err != nil {
		return err
	}
	name := s.buf[ns.start:ns.end]
	if ns.escaped {
		s.name = unescape(s.name[:0], name)
		name = s.name
	}
	id, known := lookupField(name)
	s.skipWS()
	if !s.consume(':') {
		return s.syntax("expected ':'")
	}
	s.skipWS()
	v, err := s.scanValue(0)
	if err != nil {
		return err
	}
	if known {
		if s.slots[id].kind != vNone {
			return badField(fieldNames[id], "duplicate field")
		}
		s.slots[id] = v
	}
	return nil
}

func (s *scanner) scanValue(depth int) (span, error) {
	switch c := s.peek(); {
	case c == '"':
		return s.scanString()
	case c == '-' || (c >= '0' && c <= '9'):
		return s.scanNumber()
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return span{}, s.syntax("nested too deeply")
		}
		start := s.pos
		var err error
		if c == '{' {
			err = s.skipObject(depth + 1)
		} else {
			err = s.skipArray(depth + 1)
		}
		return span{start: start, end: s.pos, kind: vOther}, err
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(s.buf)-s.pos >= len(lit) && string(s.buf[s.pos:s.pos+len(lit)]) == lit {
				start := s.pos
				s.pos += len(lit)
				return span{start: start, end: s.pos, kind: vOther}, nil
			}
		}
		return span{}, s.syntax("expected a value")
	}
}

func (s *scanner) skipObject(depth int) error {
	s.pos++ // '{'
	s.skipWS()
	if s.consume('}') {
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.syntax("expected a field name")
		}
		if _, err := s.scanString(); err != nil {
			return err
		}
		s.skipWS()
		if !s.consume(':') {
			return s.syntax("expected ':'")
		}
		s.skipWS()
		if _, err := s.scanValue(depth); err != nil {
			return err
		}
		s.skipWS()
		if s.consume('}') {
			return nil
		}
		if !s.consume(',') {
			return s.syntax("expected ',' or '}'")
		}
		s.skipWS()
	}
}

func (s *scanner) skipArray(depth int) error {
	s.pos++ // '['
	s.skipWS()
	if s.consume(']') {
		return nil
	}
	for {
		if _, err := s.scanValue(depth); err != nil {
			return err
		}
		s.skipWS()
		if s.consume(']') {
			return nil
		}
		if !s.consume(',') {
			return s.syntax("expected ',' or ']'")
		}
		s.skipWS()
	}
}

// scanString scans a string starting at the opening quote and checks its
// escapes, so unescape can trust them. Raw control characters, which strict
// JSON forbids, are let through: a line cannot hold a newline anyway, the
// hex fields reject them, and finding the closing quote with IndexByte
// instead of a byte loop makes the reader several times faster.
func (s *scanner) scanString() (span, error) {
	s.pos++ // opening quote
	v := span{start: s.pos, kind: vString}
	// Field names and ops are short: a plain loop beats IndexByte's call
	// overhead for them, and hands long strings (hex) to IndexByte.
	for i := s.pos; i < len(s.buf) && i < s.pos+16; i++ {
		if c := s.buf[i]; c == '"' {
			v.end = i
			s.pos = i + 1
			return v, nil
		} else if c == '\\' {
			break
		}
	}
	for {
		q := bytes.IndexByte(s.buf[s.pos:], '"')
		if q < 0 {
			s.pos = len(s.buf)
			return v, s.syntax("unterminated string")
		}
		bs := bytes.IndexByte(s.buf[s.pos:s.pos+q], '\\')
		if bs < 0 {
			v.end = s.pos + q
			s.pos += q + 1
			return v, nil
		}
		v.escaped = true
		s.pos += bs
		if err := s.escape(); err != nil {
			return v, err
		}
	}
}

// escape checks and skips the escape sequence at s.pos.
func (s *scanner) escape() error {
	if s.pos+1 >= len(s.buf) {
		return s.syntax("unterminated string")
	}
	switch s.buf[s.pos+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.pos += 2
	case 'u':
		if s.pos+6 > len(s.buf) || !isHex4(s.buf[s.pos+2:s.pos+6]) {
			return s.syntax(`bad \u escape`)
		}
		s.pos += 6
	default:
		return s.syntax("bad escape")
	}
	return nil
}

// scanNumber checks the JSON number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) scanNumber() (span, error) {
	v := span{start: s.pos, kind: vNumber}
	s.consume('-')
	switch {
	case s.consume('0'):
	case s.digits() == 0:
		return v, s.syntax("bad number")
	}
	if s.consume('.') && s.digits() == 0 {
		return v, s.syntax("bad number")
	}
	if s.consume('e') || s.consume('E') {
		if !s.consume('+') {
			s.consume('-')
		}
		if s.digits() == 0 {
			return v, s.syntax("bad number")
		}
	}
	v.end = s.pos
	return v, nil
}

func (s *scanner) digits() int {
	start := s.pos
	for s.pos < len(s.buf) && s.buf[s.pos] >= '0' && s.buf[s.pos] <= '9' {
		s.pos++
	}
	return s.pos - start
}

func (s *scanner) skipWS() {
	for s.pos < len(s.buf) {
		switch s.buf[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.pos < len(s.buf) {
		return s.buf[s.pos]
	}
	return 0
}

func (s *scanner) consume(c byte) bool {
	if s.pos < len(s.buf) && s.buf[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

func (s *scanner) syntax(msg string) error {
	return badLine("bad JSON at column %d: %s", s.pos+1, msg)
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if hexVal[c] < 0 {
			return false
		}
	}
	return true
}
