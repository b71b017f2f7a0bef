package apiserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/tidbcodec"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// handler serves TiStreamService.
type handler struct {
	apiv1.UnimplementedTiStreamServiceServer
	s *Service
}

func (h *handler) PullTable(req *apiv1.PullTableRequest, stream grpc.ServerStreamingServer[apiv1.PullTableResponse]) error {
	sp := spec{kind: kindTable, tenant: req.TenantId, tableID: req.TableId, db: req.Db, table: req.Table, start: req.StartTs}
	switch {
	case req.TenantId == 0:
		return errNoTenant
	case req.TableId < 0:
		return status.Errorf(codes.InvalidArgument, "table_id %d is negative", req.TableId)
	case req.TableId == 0 && (req.Db == "" || req.Table == ""):
		return status.Error(codes.InvalidArgument, "give table_id, or both db and table")
	}
	return h.s.serve(stream.Context(), sp, func(m *response) (int, error) { return m.WireSize(), stream.SendMsg(m) })
}

func (h *handler) PullDB(req *apiv1.PullDBRequest, stream grpc.ServerStreamingServer[apiv1.PullDBResponse]) error {
	switch {
	case req.TenantId == 0:
		return errNoTenant
	case req.Db == "":
		return status.Error(codes.InvalidArgument, "db is required")
	}
	sp := spec{kind: kindDB, tenant: req.TenantId, db: req.Db, start: req.StartTs}
	return h.s.serve(stream.Context(), sp, func(m *response) (int, error) { return m.WireSize(), stream.SendMsg(m) })
}

func (h *handler) PullTenant(req *apiv1.PullTenantRequest, stream grpc.ServerStreamingServer[apiv1.PullTenantResponse]) error {
	if req.TenantId == 0 {
		return errNoTenant
	}
	sp := spec{kind: kindTenant, tenant: req.TenantId, start: req.StartTs}
	return h.s.serve(stream.Context(), sp, func(m *response) (int, error) { return m.WireSize(), stream.SendMsg(m) })
}

var errNoTenant = status.Error(codes.InvalidArgument, "tenant_id is required")

// serve runs one pull to its end and returns the status it ends with.
func (s *Service) serve(ctx context.Context, sp spec, send sendFunc) error {
	if err := s.notServed(sp.tenant); err != nil { // offboard.go
		return err
	}
	st, err := s.admit(sp.kind, sp.tenant, clientOf(ctx))
	if err != nil {
		return err
	}
	defer s.release(st)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.stopping, cancel)()
	log := s.log.With("kind", sp.kind, "tenant", sp.tenant, "start_ts", sp.start)
	p, err := s.open(ctx, sp, st, send)
	if err == nil {
		log.Info("pull opened", "from_ts", p.sent+1, "schema_ts", p.sch.known)
		err = p.run(ctx)
	}
	err = s.pullStatus(ctx, err)
	code := status.Code(err)
	s.m.pullsEnded.WithLabelValues(sp.kind, code.String()).Inc()
	switch code {
	case codes.Canceled, codes.Unavailable, codes.NotFound, codes.InvalidArgument, codes.OutOfRange:
		log.Debug("pull ended", "code", code.String(), "err", err)
	default:
		log.Warn("pull ended", "code", code.String(), "err", err)
	}
	return err
}

// open resolves the request and positions the pool reader at its start.
func (s *Service) open(ctx context.Context, sp spec, st *pullState, send sendFunc) (*pull, error) {
	start := sp.start
	if start == 0 {
		var err error
		if start, err = s.defaultStart(ctx, sp.tenant); err != nil {
			return nil, err
		}
	}
	base, floor, err := s.schemaBase(ctx, sp.tenant, start)
	if status.Code(err) == codes.OutOfRange {
		return nil, s.outOfRange(ctx, sp.tenant, start, tenantSpan, 0, err)
	}
	if err != nil {
		return nil, registryStatus(err, "tenant %d: schema at start ts %d", sp.tenant, start)
	}
	t, err := s.resolve(ctx, sp, start, base)
	if err != nil {
		return nil, err
	}
	puller, err := pool.NewPullerWith(ctx, s.store, sp.tenant, t.span.Start, t.span.End, t.filter, start,
		pool.ReadOptions{Cache: s.cache, MaxEntriesPerPoll: s.cfg.MaxEntriesPerPoll, MaxBytesPerPoll: s.cfg.MaxBytesPerPoll, Heads: s.heads, Releases: true})
	switch {
	case errors.Is(err, pool.ErrCompacted):
		return nil, s.outOfRange(ctx, sp.tenant, start, t.span, floor, err)
	case errors.Is(err, pool.ErrNoManifest):
		return nil, status.Errorf(codes.NotFound, "tenant %d has no data in the committed data pool", sp.tenant)
	case errors.Is(err, container.ErrCorrupt):
		// Opening reads data too (group publications): corrupt is corrupt.
		return nil, s.internalError(codes.DataLoss, "stored change data failed its integrity check", err)
	case err != nil:
		return nil, s.internalError(codes.Unavailable, fmt.Sprintf("tenant %d: the change data at ts %d could not be opened; %s", sp.tenant, start, resumeHint), err)
	}
	send = s.quota.throttle(ctx, sp.tenant, send)
	p := &pull{s: s, state: st, tenant: sp.tenant, puller: puller, sch: t.sch, sent: max(start, 1) - 1,
		out: &batcher{send: send, kind: sp.kind, m: s.m, tenant: sp.tenant, usage: s.usage, maxRows: s.cfg.MaxBatchRows, maxBytes: s.cfg.MaxBatchBytes}}
	p.log = s.log.With("kind", sp.kind, "tenant", sp.tenant)
	return p, nil
}

// outOfRange explains a start ts older than what the pool or the registry
// keeps, with the oldest start ts that works.
func (s *Service) outOfRange(ctx context.Context, tenant, start uint64, span tidbcodec.Span, floor uint64, cause error) error {
	oldest, perr := pool.OldestStart(ctx, s.store, tenant, span.Start, span.End)
	if floor == 0 {
		if p, err := s.latest(ctx, tenant); err == nil {
			floor = p.floor
		}
	}
	oldest = max(oldest, floor)
	if perr != nil || oldest <= start {
		return s.internalError(codes.OutOfRange, fmt.Sprintf("tenant %d: start ts %d is older than the retained data", tenant, start), errors.Join(cause, perr))
	}
	st := status.Newf(codes.OutOfRange, "tenant %d: start ts %d is older than the retained data; the oldest available start ts is %d", tenant, start, oldest)
	// Clients read the oldest start ts from the detail, not the text.
	if withDetail, err := st.WithDetails(&apiv1.StartTsOutOfRange{OldestStartTs: oldest}); err == nil {
		st = withDetail
	}
	return st.Err()
}
