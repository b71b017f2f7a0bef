package tidbcodec

// ValidJSON reports whether b is one JSON value, as encoding/json.Valid
// does — the same grammar, strings checked for control characters and
// escapes but not for UTF-8, at most maxJSONDepth nested arrays and objects —
// at about three times its speed: a schema snapshot's TableInfos are
// checked whole when it is decoded, and at 1,000,000 tables that check was
// a third of a replay's setup. FuzzValidJSON holds it to encoding/json.
func ValidJSON(b []byte) bool {
	v := validator{b: b}
	i := v.value(v.space(0), 0)
	return i >= 0 && v.space(i) == len(b)
}

// maxJSONDepth is encoding/json's bound on nesting.
const maxJSONDepth = 10000

type validator struct{ b []byte }

// jsonSpace marks JSON's white space; jsonPlain the bytes a string holds
// as they are (not a quote, a backslash or a control character).
var jsonSpace, jsonPlain = func() (s, p [256]bool) {
	for _, c := range " \t\n\r" {
		s[c] = true
	}
	for c := 0x20; c < 256; c++ {
		p[c] = c != '"' && c != '\\'
	}
	return
}()

func (v *validator) space(i int) int {
	for i < len(v.b) && jsonSpace[v.b[i]] {
		i++
	}
	return i
}

// value checks the value at i (white space skipped) and returns the index
// after it, or -1.
func (v *validator) value(i, depth int) int {
	b := v.b
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		return v.str(i + 1)
	case c == '{':
		return v.object(i+1, depth+1)
	case c == '[':
		return v.array(i+1, depth+1)
	case c == '-' || c >= '0' && c <= '9':
		return v.number(i)
	case c == 't':
		return v.literal(i, "true")
	case c == 'f':
		return v.literal(i, "false")
	case c == 'n':
		return v.literal(i, "null")
	}
	return -1
}

func (v *validator) literal(i int, word string) int {
	if len(v.b)-i < len(word) || string(v.b[i:i+len(word)]) != word {
		return -1
	}
	return i + len(word)
}

// str checks a string whose contents start at i.
func (v *validator) str(i int) int {
	b := v.b
	for {
		for i < len(b) && jsonPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return -1
				}
				i += 6
			default:
				return -1
			}
		default: // a control character
			return -1
		}
	}
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func (v *validator) number(i int) int {
	b := v.b
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

// object checks an object whose members start at i.
func (v *validator) object(i, depth int) int {
	if depth > maxJSONDepth {
		return -1
	}
	b := v.b
	i = v.space(i)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for done := false; ; {
		if i >= len(b) || b[i] != '"' {
			return -1
		}
		if i = v.str(i + 1); i < 0 {
			return -1
		}
		if i = v.space(i); i >= len(b) || b[i] != ':' {
			return -1
		}
		if i = v.value(v.space(i+1), depth); i < 0 {
			return -1
		}
		if i, done = v.next(i, '}'); done {
			return i
		}
	}
}

// array checks an array whose elements start at i.
func (v *validator) array(i, depth int) int {
	if depth > maxJSONDepth {
		return -1
	}
	i = v.space(i)
	if i < len(v.b) && v.b[i] == ']' {
		return i + 1
	}
	for done := false; ; {
		if i = v.value(i, depth); i < 0 {
			return -1
		}
		if i, done = v.next(i, ']'); done {
			return i
		}
	}
}

// next reads what follows a member or an element at i: a comma (another
// follows at the index returned) or end (done, the index after it); -1
// and done for anything else.
func (v *validator) next(i int, end byte) (int, bool) {
	i = v.space(i)
	switch {
	case i >= len(v.b):
		return -1, true
	case v.b[i] == ',':
		return v.space(i + 1), false
	case v.b[i] == end:
		return i + 1, true
	}
	return -1, true
}
