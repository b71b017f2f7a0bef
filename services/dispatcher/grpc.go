package dispatcher

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	dispatcherv1 "github.com/tistream/tistream/proto/gen/go/tistream/dispatcher/v1"
)

// grpcService serves DispatcherService.
type grpcService struct {
	dispatcherv1.UnimplementedDispatcherServiceServer
	s *Service
}

// Notify records the file named (its seq and max_ts: the stream GETs it by
// its key instead of listing its seq, notices.go) and wakes the stream of
// (tenant, store) so it reads it now instead of at its next poll. NOT_FOUND
// when the stream does not run here (the caller's view of the assignment is
// stale; notifications are best effort, the owner polls anyway).
func (g *grpcService) Notify(_ context.Context, req *dispatcherv1.NotifyRequest) (*dispatcherv1.NotifyResponse, error) {
	if req.TenantId == 0 || req.StoreId == 0 {
		return nil, status.Error(codes.InvalidArgument, "tenant_id and store_id are required")
	}
	st := g.s.lookup(req.TenantId, req.StoreId)
	if st == nil {
		return nil, status.Errorf(codes.NotFound, "stream of tenant %d store %d does not run on dispatcher %s", req.TenantId, req.StoreId, g.s.cfg.ID)
	}
	st.notify(req.Seq, req.MaxTs, true)
	return &dispatcherv1.NotifyResponse{}, nil
}
