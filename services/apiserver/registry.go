package apiserver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	schemav1 "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// position is how far the registry had read a tenant when last asked.
type position struct{ floor, resolved uint64 }

// positions remembers the registry's position per tenant, learned from every
// GetSchemaChanges answer, as a good first guess of a ts it answers for.
type positions struct {
	mu sync.Mutex
	m  map[uint64]position
}

func (p *positions) get(tenant uint64) (position, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[tenant]
	return v, ok
}

func (p *positions) set(tenant uint64, v position) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[tenant] = v
}

// changes calls GetSchemaChanges(from, to] with the call timeout.
func (s *Service) changes(ctx context.Context, tenant, from, to uint64) (*schemav1.GetSchemaChangesResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RegistryTimeout)
	defer cancel()
	resp, err := s.schema.GetSchemaChanges(ctx, &schemav1.GetSchemaChangesRequest{TenantId: tenant, FromTs: from, ToTs: to})
	s.m.registryCalls.WithLabelValues("GetSchemaChanges", status.Code(err).String()).Inc()
	if err != nil {
		return nil, err
	}
	s.pos.set(tenant, position{floor: resp.FloorTs, resolved: resp.ResolvedTs})
	return resp, nil
}

// call runs one registry call with the call timeout, counting it.
func call[T any](ctx context.Context, s *Service, method string, fn func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RegistryTimeout)
	defer cancel()
	v, err := fn(ctx)
	s.m.registryCalls.WithLabelValues(method, status.Code(err).String()).Inc()
	return v, err
}

// retryable tells whether a registry error may clear by itself: it is down
// or slow, or it has not read that far yet.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.FailedPrecondition:
		return true
	}
	return false
}

// errStartWait means the registry did not reach the ts a pull or a listing
// needs within StartWait.
var errStartWait = errors.New("the schema registry has not read that far yet")

// retry runs fn until it succeeds, fails for good, or StartWait passes;
// retryable failures back off from the poll interval up to a second.
func retry[T any](ctx context.Context, s *Service, fn func(context.Context) (T, error)) (T, error) {
	deadline := s.now().Add(s.cfg.StartWait)
	backoff := s.cfg.PollInterval
	for {
		v, err := fn(ctx)
		if err == nil || !retryable(err) {
			return v, err
		}
		if s.now().Add(backoff).After(deadline) {
			return v, fmt.Errorf("%w: %v", errStartWait, err)
		}
		if err := s.sleep(ctx, backoff); err != nil {
			return v, err
		}
		backoff = min(2*backoff, time.Second)
	}
}

// sleep waits d, or until ctx ends or the service stops.
func (s *Service) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopping.Done():
		return errStopping
	}
}

// schemaBase waits until the registry has read the tenant up to start and
// returns the ts the pull's schema follows from: start-1, so that schema
// changes committed at start are events of the pull, or start itself when
// start is the registry's floor (changes at the floor are part of it).
func (s *Service) schemaBase(ctx context.Context, tenant, start uint64) (base uint64, floor uint64, err error) {
	from := start
	if start > 0 {
		from = start - 1
	}
	_, err = retry(ctx, s, func(ctx context.Context) (struct{}, error) {
		resp, err := s.changes(ctx, tenant, from, from)
		if status.Code(err) == codes.OutOfRange && from < start {
			from = start
			resp, err = s.changes(ctx, tenant, from, from)
		}
		if err != nil {
			return struct{}{}, err
		}
		floor = resp.FloorTs
		if resp.ResolvedTs < start {
			return struct{}{}, status.Errorf(codes.FailedPrecondition, "registry resolved ts %d is below start ts %d", resp.ResolvedTs, start)
		}
		return struct{}{}, nil
	})
	return from, floor, err
}

// latest finds a ts the registry answers for and returns how far it has read
// the tenant: it asks at the last position seen, at 0, at the pool's first
// schema snapshot, and then searches between that and now (the registry's
// floor has moved past everything the api-server knows).
func (s *Service) latest(ctx context.Context, tenant uint64) (position, error) {
	probe := func(ts uint64) (position, codes.Code, error) {
		resp, err := s.changes(ctx, tenant, ts, ts)
		if err != nil {
			return position{}, status.Code(err), err
		}
		return position{floor: resp.FloorTs, resolved: resp.ResolvedTs}, codes.OK, nil
	}
	var tries []uint64
	if p, ok := s.pos.get(tenant); ok {
		tries = append(tries, p.resolved)
	}
	tries = append(tries, 0)
	if snap, ok, err := s.firstSnapshotTs(ctx, tenant); err == nil && ok {
		tries = append(tries, snap)
	}
	lo, hi := uint64(0), tsOf(s.now().Add(time.Hour))
	for _, ts := range tries {
		p, code, err := probe(ts)
		switch code {
		case codes.OK:
			return p, nil
		case codes.OutOfRange:
			lo = max(lo, ts)
		case codes.FailedPrecondition:
			hi = min(hi, ts)
		default:
			return position{}, err
		}
	}
	for i := 0; i < 64 && lo+1 < hi; i++ {
		mid := lo + (hi-lo)/2
		p, code, err := probe(mid)
		switch code {
		case codes.OK:
			return p, nil
		case codes.OutOfRange:
			lo = mid
		case codes.FailedPrecondition:
			hi = mid
		default:
			return position{}, err
		}
	}
	return position{}, status.Errorf(codes.Unavailable, "the schema registry answers for no ts of tenant %d", tenant)
}
