package container

import (
	"errors"
	"fmt"
)

// ErrCorrupt is matched (errors.Is) by every *CorruptError.
var ErrCorrupt = errors.New("corrupt file")

// CorruptError reports a file that cannot be decoded: truncated, corrupted,
// of the wrong kind or version, or failing a checksum. Offset is the byte
// offset in the object where the problem was found.
type CorruptError struct {
	Object string
	Offset int64
	Reason string
	Err    error // underlying cause, if any
}

func (e *CorruptError) Error() string {
	msg := fmt.Sprintf("%s: corrupt at offset %d: %s", e.Object, e.Offset, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrCorrupt) true for every CorruptError.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func (e *CorruptError) Unwrap() error { return e.Err }

func corrupt(object string, off int64, err error, format string, args ...any) *CorruptError {
	return &CorruptError{Object: object, Offset: off, Reason: fmt.Sprintf(format, args...), Err: err}
}
