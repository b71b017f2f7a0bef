package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors a retry cannot fix. Test with errors.Is; the wrapped error is the
// server's status, with its message.
var (
	// ErrNotFound: the tenant, database or table does not exist at the
	// start ts (or the tenant has no data yet).
	ErrNotFound = errors.New("tistream: not found")
	// ErrUnauthenticated: the server refused the client's credentials.
	ErrUnauthenticated = errors.New("tistream: unauthenticated")
	// ErrInvalidArgument: the request is wrong (a missing tenant, ...).
	ErrInvalidArgument = errors.New("tistream: invalid argument")
	// ErrDataLoss: the server found a corrupt object in its pool.
	ErrDataLoss = errors.New("tistream: data loss")
	// ErrGaveUp: the stream could not be reopened within the retry limit;
	// the last failure is wrapped too.
	ErrGaveUp = errors.New("tistream: gave up reconnecting")
)

// OutOfRangeError: the start ts (or a resume point) is older than what the
// server retains. Oldest is the oldest start ts it can serve (0 when it did
// not say); pull again from there, accepting the gap.
type OutOfRangeError struct {
	Start  uint64
	Oldest uint64
	Err    error // the server's status
}

func (e *OutOfRangeError) Error() string {
	if e.Oldest == 0 {
		return fmt.Sprintf("tistream: start ts %d is out of range: %v", e.Start, e.Err)
	}
	return fmt.Sprintf("tistream: start ts %d is out of range; the oldest start ts is %d: %v", e.Start, e.Oldest, e.Err)
}

func (e *OutOfRangeError) Unwrap() error { return e.Err }

type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.kind.Error() + ": " + e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// classify turns a stream's error into a typed error, or reports that a
// reconnect may fix it. ctx is the pull's: a cancellation of it is not
// retried.
func classify(ctx context.Context, err error, start uint64) (final error, retry bool) {
	if ctx.Err() != nil {
		return ctx.Err(), false
	}
	if errors.Is(err, io.EOF) {
		return err, true // the server never ends a pull with OK: reconnect
	}
	st, ok := status.FromError(err)
	if !ok {
		return err, true
	}
	switch st.Code() {
	case codes.NotFound:
		return &kindError{ErrNotFound, err}, false
	case codes.Unauthenticated, codes.PermissionDenied:
		return &kindError{ErrUnauthenticated, err}, false
	case codes.InvalidArgument, codes.Unimplemented:
		return &kindError{ErrInvalidArgument, err}, false
	case codes.DataLoss:
		return &kindError{ErrDataLoss, err}, false
	case codes.OutOfRange:
		e := &OutOfRangeError{Start: start, Err: err}
		for _, d := range st.Details() {
			if o, ok := d.(*apiv1.StartTsOutOfRange); ok {
				e.Oldest = o.OldestStartTs
			}
		}
		return e, false
	case codes.Canceled:
		return err, true // the server's side went away (a proxy, a restart)
	}
	// UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED,
	// INTERNAL, UNKNOWN, FAILED_PRECONDITION: another try may work.
	return err, true
}
