package apiserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"

	"github.com/tistream/tistream/libs/auth"
	"google.golang.org/grpc/peer"

	"github.com/tistream/tistream/libs/crypt"
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
		return s.internalError(codes.DataLoss, "stored change data failed its integrity check", err)
	case errors.Is(err, pool.ErrCompacted):
		return s.internalError(codes.OutOfRange, "the data at the requested ts was removed by retention; pull from a later ts", err)
	case errors.Is(err, pool.ErrNoManifest):
		return s.internalError(codes.NotFound, "the tenant has no data", err)
	}
	return s.internalError(codes.Unavailable, "the change data could not be read; "+resumeHint, err)
}

// clientOf names the caller for the per-client bound: its authenticated
// identity, else its address.
func clientOf(ctx context.Context) string {
	if id, ok := auth.FromContext(ctx); ok {
		return string(id.Role) + "/" + id.Name
	}
	if p, ok := peer.FromContext(ctx); ok {
		host, _, err := net.SplitHostPort(p.Addr.String())
		if err == nil {
			return "addr/" + host
		}
		return "addr/" + p.Addr.String()
	}
	return "unknown"
}

// internalError is what a client learns of a failure inside the server: a
// code, what failed in its terms and an incident id; the detail (object
// keys, buckets, layout) goes to the server log under that id only.
func (s *Service) internalError(code codes.Code, what string, err error) error {
	if st, ok := crypt.Status(err); ok { // the tenant's key is disabled or revoked
		code, what = st.Code(), st.Message()
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	s.log.Warn("pull failed", "incident", id, "code", code.String(), "what", what, "err", err)
	return status.Errorf(code, "%s (incident %s in the api-server's log)", what, id)
}
