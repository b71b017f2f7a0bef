package metaserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/tistream/tistream/libs/grpcx"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// api is MetaService. On the leader every method checks that it can serve
// (gate) and does the work in the Service methods, which return plain
// errors or ready-made statuses for bad requests, converted here at the
// boundary; a standby forwards it to the leader (proxy.go).
type api struct {
	metav1.UnimplementedMetaServiceServer
	s *Service
}

// gate returns the current term, or UNAVAILABLE naming the leader (with
// the redirect detail, grpcx.NotLeaderError).
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
	return s.notLeader(s.leaderAddr(ctx), "")
}

// notLeader is the error of a member that does not serve a call: UNAVAILABLE
// naming the leader at addr with the redirect detail (why, if not "",
// says why the call was not forwarded), or saying none is elected.
func (s *Service) notLeader(addr, why string) error {
	if addr != "" && addr != s.advertise {
		return grpcx.NotLeaderError(fmt.Sprintf("meta-server %s is not the leader; the leader is at %s%s", s.advertise, addr, why), addr)
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

// serve runs one call: a slot of --max-concurrent-calls, then on the
// leader the leader gate and the work, whose error is converted at the
// boundary; on a standby the call is forwarded to the leader (proxy.go)
// with fwd, the MetaServiceClient method of the same name.
func serve[Req, Resp any](ctx context.Context, s *Service, method string, req Req,
	fwd func(metav1.MetaServiceClient, context.Context, Req, ...grpc.CallOption) (Resp, error),
	work func(*term) (Resp, error)) (Resp, error) {
	var zero Resp
	release, err := s.admit(method)
	if err != nil {
		return zero, err
	}
	defer release()
	if s.leading() == nil {
		return forward(ctx, s, method, req, fwd)
	}
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
	return serve(ctx, a.s, "RegisterTenant", req, metav1.MetaServiceClient.RegisterTenant, func(t *term) (*metav1.RegisterTenantResponse, error) {
		return a.s.registerTenant(ctx, t, req)
	})
}

func (a *api) NotifyStoreFile(ctx context.Context, req *metav1.NotifyStoreFileRequest) (*metav1.NotifyStoreFileResponse, error) {
	return serve(ctx, a.s, "NotifyStoreFile", req, metav1.MetaServiceClient.NotifyStoreFile, func(*term) (*metav1.NotifyStoreFileResponse, error) {
		return &metav1.NotifyStoreFileResponse{}, a.s.notifyStoreFile(ctx, req)
	})
}

func (a *api) ListTenants(ctx context.Context, req *metav1.ListTenantsRequest) (*metav1.ListTenantsResponse, error) {
	return serve(ctx, a.s, "ListTenants", req, metav1.MetaServiceClient.ListTenants, func(*term) (*metav1.ListTenantsResponse, error) {
		return a.s.listTenants(ctx)
	})
}

func (a *api) GetUsage(ctx context.Context, req *metav1.GetUsageRequest) (*metav1.GetUsageResponse, error) {
	return serve(ctx, a.s, "GetUsage", req, metav1.MetaServiceClient.GetUsage, func(*term) (*metav1.GetUsageResponse, error) {
		return a.s.getUsage(ctx, req)
	})
}

func (a *api) ListTasks(ctx context.Context, req *metav1.ListTasksRequest) (*metav1.ListTasksResponse, error) {
	return serve(ctx, a.s, "ListTasks", req, metav1.MetaServiceClient.ListTasks, func(*term) (*metav1.ListTasksResponse, error) {
		return a.s.listTasks(ctx, req)
	})
}

func (a *api) SplitRange(ctx context.Context, req *metav1.SplitRangeRequest) (*metav1.SplitRangeResponse, error) {
	return serve(ctx, a.s, "SplitRange", req, metav1.MetaServiceClient.SplitRange, func(t *term) (*metav1.SplitRangeResponse, error) {
		return a.s.splitRange(ctx, t, req)
	})
}

func (a *api) DrainWorker(ctx context.Context, req *metav1.DrainWorkerRequest) (*metav1.DrainWorkerResponse, error) {
	return serve(ctx, a.s, "DrainWorker", req, metav1.MetaServiceClient.DrainWorker, func(t *term) (*metav1.DrainWorkerResponse, error) {
		return a.s.drainWorker(ctx, t, req)
	})
}

func (a *api) MergeRanges(ctx context.Context, req *metav1.MergeRangesRequest) (*metav1.MergeRangesResponse, error) {
	return serve(ctx, a.s, "MergeRanges", req, metav1.MetaServiceClient.MergeRanges, func(t *term) (*metav1.MergeRangesResponse, error) {
		return a.s.mergeRanges(ctx, t, req)
	})
}

func (a *api) UpdateTenant(ctx context.Context, req *metav1.UpdateTenantRequest) (*metav1.UpdateTenantResponse, error) {
	return serve(ctx, a.s, "UpdateTenant", req, metav1.MetaServiceClient.UpdateTenant, func(t *term) (*metav1.UpdateTenantResponse, error) {
		return a.s.updateTenant(ctx, t, req)
	})
}

func (a *api) DeregisterTenant(ctx context.Context, req *metav1.DeregisterTenantRequest) (*metav1.DeregisterTenantResponse, error) {
	return serve(ctx, a.s, "DeregisterTenant", req, metav1.MetaServiceClient.DeregisterTenant, func(t *term) (*metav1.DeregisterTenantResponse, error) {
		return a.s.deregisterTenant(ctx, t, req)
	})
}
