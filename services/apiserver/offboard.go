package apiserver

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// notServed refuses a pull of a deregistered tenant (docs/tenants.md,
// "Offboarding"): new pulls are refused and open ones end at their next
// round, with FAILED_PRECONDITION "tenant N is deregistered since T; its
// data is deleted after T2". The tenant's state comes from the tenant
// settings the service follows (quota.go's watcher).
func (s *Service) notServed(tenant uint64) error {
	if s.quota == nil || s.quota.tenants == nil {
		return nil
	}
	if e, ok := s.quota.tenants.Get(tenant); ok && !e.Active() {
		return status.Error(codes.FailedPrecondition, e.NotServed())
	}
	return nil
}
