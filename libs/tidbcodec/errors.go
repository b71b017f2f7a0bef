package tidbcodec

import (
	"errors"
	"fmt"
)

// ErrMalformed is matched (errors.Is) by every *DecodeError.
var ErrMalformed = errors.New("malformed TiDB encoding")

// DecodeError reports input that is not a valid encoding. Offset is the byte
// offset, in the input handed to the exported decoder, where the problem was
// found; callers holding a larger buffer add their own base.
type DecodeError struct {
	What   string // what was being decoded: "record key", "row", ...
	Offset int
	Reason string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("tidbcodec: %s: at byte %d: %s", e.What, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrMalformed) true for every DecodeError.
func (e *DecodeError) Is(target error) bool { return target == ErrMalformed }

func malformed(what string, off int, format string, args ...any) *DecodeError {
	return &DecodeError{What: what, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// within re-homes an error from a nested decoder that started at byte base of
// the outer input, so the offset stays meaningful to the outer caller. part
// names the piece that failed ("table id", "field", ...).
func within(err error, what string, base int, part string) error {
	var de *DecodeError
	if errors.As(err, &de) {
		return &DecodeError{What: what, Offset: base + de.Offset, Reason: part + " (" + de.What + "): " + de.Reason}
	}
	return err
}
