package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tistream/tistream/libs/grpcx"
	"github.com/tistream/tistream/libs/truth"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// apiPull is one pull from a running fleet's api-server.
type apiPull struct {
	addr          string
	tenant        uint64
	table         int64
	db            string
	from          uint64
	untilResolved uint64        // stop once a resolved ts at or above this arrives (0 = never)
	timeout       time.Duration // stop after this long (0 = never)
}

type pullEvents interface {
	Recv() (*apiv1.PullEvent, error)
}

// eventStream adapts the three Pull RPCs' response streams to one shape.
type eventStream struct {
	recv  func() ([]*apiv1.PullEvent, error)
	batch []*apiv1.PullEvent
}

func (e *eventStream) Recv() (*apiv1.PullEvent, error) {
	for len(e.batch) == 0 {
		b, err := e.recv()
		if err != nil {
			return nil, err
		}
		e.batch = b
	}
	ev := e.batch[0]
	e.batch = e.batch[1:]
	return ev, nil
}

func (p *apiPull) open(ctx context.Context, c apiv1.TiStreamServiceClient) (pullEvents, error) {
	switch {
	case p.table != 0:
		s, err := c.PullTable(ctx, &apiv1.PullTableRequest{TenantId: p.tenant, TableId: p.table, StartTs: p.from})
		if err != nil {
			return nil, err
		}
		return &eventStream{recv: func() ([]*apiv1.PullEvent, error) { r, err := s.Recv(); return r.GetEvents(), err }}, nil
	case p.db != "":
		s, err := c.PullDB(ctx, &apiv1.PullDBRequest{TenantId: p.tenant, Db: p.db, StartTs: p.from})
		if err != nil {
			return nil, err
		}
		return &eventStream{recv: func() ([]*apiv1.PullEvent, error) { r, err := s.Recv(); return r.GetEvents(), err }}, nil
	default:
		s, err := c.PullTenant(ctx, &apiv1.PullTenantRequest{TenantId: p.tenant, StartTs: p.from})
		if err != nil {
			return nil, err
		}
		return &eventStream{recv: func() ([]*apiv1.PullEvent, error) { r, err := s.Recv(); return r.GetEvents(), err }}, nil
	}
}

// run writes the stream as JSON Lines until the stop condition, the
// timeout or ctx.
func (p *apiPull) run(ctx context.Context, w *truth.Writer) error {
	conn, err := grpcx.Dial(p.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := p.open(ctx, apiv1.NewTiStreamServiceClient(conn))
	if err != nil {
		return err
	}
	for {
		ev, err := events.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled || ctx.Err() != nil {
				if p.timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
					return fmt.Errorf("no resolved ts >= %d within %s", p.untilResolved, p.timeout)
				}
				return nil
			}
			return err
		}
		switch x := ev.Event.(type) {
		case *apiv1.PullEvent_Row:
			r := x.Row
			op := truth.OpPut
			if r.Op == apiv1.Op_OP_DELETE {
				op = truth.OpDelete
			}
			if err := w.WriteRow(truth.Row{Tenant: p.tenant, TableID: r.TableId, CommitTs: r.CommitTs, StartTs: r.StartTs,
				Op: op, Key: r.Key, Value: r.Value, SchemaVersion: r.SchemaVersion}); err != nil {
				return err
			}
		case *apiv1.PullEvent_Resolved:
			if err := w.WriteResolved(truth.Resolved{Ts: x.Resolved.Ts}); err != nil {
				return err
			}
			if p.untilResolved != 0 && x.Resolved.Ts >= p.untilResolved {
				return w.Flush()
			}
		}
	}
}
