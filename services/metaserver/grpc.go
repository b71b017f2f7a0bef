package metaserver

import (
	"context"
	"errors"

	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// api is MetaService. Every method first checks that this server leads
// (gate); the work is in the Service methods, which return plain errors or
// ready-made statuses for bad requests, converted here at the boundary.
type api struct {
	metav1.UnimplementedMetaServiceServer
	s *Service
}

// gate returns the current term, or UNAVAILABLE naming the leader.
func (s *Service) gate(ctx context.Context) (*term, error) {
	t := s.leading()
	if t == nil {
		return nil, s.notLeaderStatus(ctx)
	}
	if !s.state.ready() {
		return nil, status.Error(codes.Unavailable, "the meta-server leader is still loading its state from etcd; retry shortly")
	}
	return t, nil
}

func (s *Service) notLeaderStatus(ctx context.Context) error {
	if addr := s.leaderAddr(ctx); addr != "" && addr != s.advertise {
		return status.Errorf(codes.Unavailable, "meta-server %s is not the leader; the leader is at %s", s.advertise, addr)
	}
	return status.Errorf(codes.Unavailable, "meta-server %s is not the leader and no leader is elected yet; retry shortly", s.advertise)
}

// toStatus converts an error at the gRPC boundary.
func (s *Service) toStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, errNotLeader):
		return s.notLeaderStatus(ctx)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// serve runs one call: a slot of --max-concurrent-calls, the leader gate,
// then the work, whose error is converted at the boundary.
func serve[Resp any](ctx context.Context, s *Service, method string, work func(*term) (Resp, error)) (Resp, error) {
	var zero Resp
	release, err := s.admit(method)
	if err != nil {
		return zero, err
	}
	defer release()
	t, err := s.gate(ctx)
	if err != nil {
		return zero, err
	}
	resp, err := work(t)
	if err != nil {
		return zero, s.toStatus(ctx, err)
	}
	return resp, nil
}

func (a *api) RegisterTenant(ctx context.Context, req *metav1.RegisterTenantRequest) (*metav1.RegisterTenantResponse, error) {
	return serve(ctx, a.s, "RegisterTenant", func(t *term) (*metav1.RegisterTenantResponse, error) {
		return a.s.registerTenant(ctx, t, req)
	})
}

func (a *api) NotifyStoreFile(ctx context.Context, req *metav1.NotifyStoreFileRequest) (*metav1.NotifyStoreFileResponse, error) {
	return serve(ctx, a.s, "NotifyStoreFile", func(*term) (*metav1.NotifyStoreFileResponse, error) {
		return &metav1.NotifyStoreFileResponse{}, a.s.notifyStoreFile(ctx, req)
	})
}

func (a *api) ListTenants(ctx context.Context, _ *metav1.ListTenantsRequest) (*metav1.ListTenantsResponse, error) {
	return serve(ctx, a.s, "ListTenants", func(*term) (*metav1.ListTenantsResponse, error) {
		return a.s.listTenants(ctx)
	})
}

func (a *api) ListTasks(ctx context.Context, req *metav1.ListTasksRequest) (*metav1.ListTasksResponse, error) {
	return serve(ctx, a.s, "ListTasks", func(*term) (*metav1.ListTasksResponse, error) {
		return a.s.listTasks(ctx, req)
	})
}

func (a *api) SplitRange(ctx context.Context, req *metav1.SplitRangeRequest) (*metav1.SplitRangeResponse, error) {
	return serve(ctx, a.s, "SplitRange", func(t *term) (*metav1.SplitRangeResponse, error) {
		return a.s.splitRange(ctx, t, req)
	})
}

func (a *api) MergeRanges(ctx context.Context, req *metav1.MergeRangesRequest) (*metav1.MergeRangesResponse, error) {
	return serve(ctx, a.s, "MergeRanges", func(t *term) (*metav1.MergeRangesResponse, error) {
		return a.s.mergeRanges(ctx, t, req)
	})
}
