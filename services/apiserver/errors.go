package apiserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/pool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errStopping ends pulls when the service stops.
var errStopping = errors.New("api-server is stopping")

const resumeHint = "reconnect and resume from the last resolved ts + 1"

// registryStatus turns a failed registry call into the status the client
// gets: the registry's own code where it means the same to the client.
func registryStatus(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if errors.Is(err, errStartWait) {
		return status.Errorf(codes.Unavailable, "%s: %v; retry later", what, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errStopping) {
		return err
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.NotFound, codes.OutOfRange, codes.InvalidArgument, codes.Canceled:
		return status.Errorf(st.Code(), "%s: %s", what, st.Message())
	}
	return status.Errorf(codes.Unavailable, "%s: schema registry: %s", what, st.Message())
}

// pullStatus is the status a pull ends with.
func (s *Service) pullStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if s.stopping.Err() != nil {
		return status.Errorf(codes.Unavailable, "%v: %s", errStopping, resumeHint)
	}
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, container.ErrCorrupt):
		return status.Errorf(codes.DataLoss, "%v", err)
	case errors.Is(err, pool.ErrCompacted):
		return status.Errorf(codes.OutOfRange, "%v", err)
	case errors.Is(err, pool.ErrNoManifest):
		return status.Errorf(codes.NotFound, "%v", err)
	}
	return status.Errorf(codes.Unavailable, "%v: %s", err, resumeHint)
}
