package truth

import (
	"errors"
	"fmt"
)

// ErrMalformed is matched (errors.Is) by every *LineError.
var ErrMalformed = errors.New("malformed line")

// LineError reports a line that cannot be decoded. It prints as
// `name:line: bad "field": reason` (or `name:line: missing "field"`, or
// `name:line: reason` for whole-line problems) so a user can open the file at
// the right place.
type LineError struct {
	Name  string // the input, e.g. "truth.jsonl"
	Line  int64  // 1-based
	Field string // the JSON field at fault, "" for whole-line problems
	Msg   string // what is wrong, including the field name
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.Name, e.Line, e.Msg) }

// Is makes errors.Is(err, ErrMalformed) true for every LineError.
func (e *LineError) Is(target error) bool { return target == ErrMalformed }

// fieldError is a decoding problem found before the line number is attached.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return e.msg }

func badField(field, format string, args ...any) error {
	return &fieldError{field: field, msg: fmt.Sprintf("bad %q: ", field) + fmt.Sprintf(format, args...)}
}

func missingField(field string) error {
	return &fieldError{field: field, msg: fmt.Sprintf("missing %q", field)}
}

func badLine(format string, args ...any) error {
	return &fieldError{msg: fmt.Sprintf(format, args...)}
}
