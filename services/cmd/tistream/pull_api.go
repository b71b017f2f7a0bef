package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tistream/tistream/client"
	"github.com/tistream/tistream/libs/truth"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// apiPull is one pull from a running fleet's api-server.
type apiPull struct {
	addr          string
	creds         *clientCreds
	tenant        uint64
	table         int64
	db            string
	from          uint64
	untilResolved uint64        // stop once a resolved ts at or above this arrives (0 = never)
	timeout       time.Duration // stop after this long (0 = never)
	decode        bool          // write decoded rows (pull_decode.go) instead of TiDB's bytes
	dec           *decodeWriter
}

// pullEvents is a pull's response stream: each Recv returns the events of
// one response message, in order.
type pullEvents interface {
	Recv() ([]*apiv1.PullEvent, error)
}

type recvFunc func() ([]*apiv1.PullEvent, error)

func (f recvFunc) Recv() ([]*apiv1.PullEvent, error) { return f() }

func (p *apiPull) open(ctx context.Context, c apiv1.TiStreamServiceClient) (pullEvents, error) {
	switch {
	case p.table != 0:
		s, err := c.PullTable(ctx, &apiv1.PullTableRequest{TenantId: p.tenant, TableId: p.table, StartTs: p.from})
		if err != nil {
			return nil, err
		}
		return recvFunc(func() ([]*apiv1.PullEvent, error) { r, err := s.Recv(); return r.GetEvents(), err }), nil
	case p.db != "":
		s, err := c.PullDB(ctx, &apiv1.PullDBRequest{TenantId: p.tenant, Db: p.db, StartTs: p.from})
		if err != nil {
			return nil, err
		}
		return recvFunc(func() ([]*apiv1.PullEvent, error) { r, err := s.Recv(); return r.GetEvents(), err }), nil
	default:
		s, err := c.PullTenant(ctx, &apiv1.PullTenantRequest{TenantId: p.tenant, StartTs: p.from}, client.PullDecoding())
		if err != nil {
			return nil, err
		}
		return recvFunc(func() ([]*apiv1.PullEvent, error) { r, err := s.Recv(); return r.GetEvents(), err }), nil
	}
}

// pullStop is why a pull ended.
type pullStop int

const (
	stopUntilResolved pullStop = iota // the resolved ts reached --until-resolved
	stopTimeout                       // --timeout passed first
	stopInterrupted                   // cancelled (Ctrl-C, SIGTERM)
	stopEnded                         // the api-server ended the stream
	stopError                         // the stream or the output failed
)

// pullSummary is how far a pull got and why it stopped.
type pullSummary struct {
	rows, ddls int64
	resolved   uint64 // the last resolved ts received; 0 = none
	stop       pullStop
	err        error // stopError: what failed
}

// errPullTimeout is the cause of the context --timeout ends.
var errPullTimeout = errors.New("pull timeout")

// run writes the stream as JSON Lines as it arrives — every row, DDL and
// resolved event, flushed after each response message so a reader sees
// them at once — until --until-resolved, the timeout, ctx or an error ends
// it, and returns how far it got and why it stopped. Everything received
// before the stop is written.
func (p *apiPull) run(ctx context.Context, out io.Writer) *pullSummary {
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, p.timeout, errPullTimeout)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sum := &pullSummary{}
	conn, err := p.creds.dial(p.addr)
	if err != nil {
		sum.stop, sum.err = stopError, err
		return sum
	}
	defer conn.Close()
	events, err := p.open(ctx, apiv1.NewTiStreamServiceClient(conn))
	if err != nil {
		p.ended(ctx, sum, err)
		return sum
	}
	if p.decode {
		p.dec = newDecodeWriter(ctx, out, conn, p.tenant)
	}
	p.consume(ctx, events, truth.NewWriter(out), sum)
	return sum
}

// consume writes events as they arrive until a stop; sum says how far it
// got and why it stopped.
func (p *apiPull) consume(ctx context.Context, events pullEvents, w *truth.Writer, sum *pullSummary) {
	for {
		batch, err := events.Recv()
		// The events of a message come with err == nil only, but write
		// whatever arrived before looking at the error.
		done, werr := p.write(batch, w, sum)
		if werr == nil {
			werr = w.Flush()
		}
		if werr == nil && p.dec != nil {
			werr = p.dec.flush()
		}
		switch {
		case werr != nil:
			sum.stop, sum.err = stopError, werr
			return
		case done:
			sum.stop = stopUntilResolved
			return
		case err != nil:
			p.ended(ctx, sum, err)
			return
		}
	}
}

// write writes a message's events; done when one of them is a resolved ts
// at or past --until-resolved (the events after it are not written).
func (p *apiPull) write(batch []*apiv1.PullEvent, w *truth.Writer, sum *pullSummary) (done bool, err error) {
	if p.dec != nil {
		return p.dec.write(batch, p.untilResolved, sum)
	}
	for _, ev := range batch {
		switch x := ev.Event.(type) {
		case *apiv1.PullEvent_Row:
			r := x.Row
			op := truth.OpPut
			if r.Op == apiv1.Op_OP_DELETE {
				op = truth.OpDelete
			}
			if err := w.WriteRow(truth.Row{Tenant: p.tenant, TableID: r.TableId, CommitTs: r.CommitTs, StartTs: r.StartTs,
				Op: op, Key: r.Key, Value: r.Value, SchemaVersion: r.SchemaVersion}); err != nil {
				return false, err
			}
			sum.rows++
		case *apiv1.PullEvent_Ddl:
			d := x.Ddl
			if err := w.WriteDDL(truth.DDL{Tenant: p.tenant, CommitTs: d.CommitTs, DBID: d.DbId, TableID: d.TableId,
				Action: ddlAction(d.Kind), SchemaVersion: d.SchemaVersion, DBName: d.DbName, TableName: d.TableName,
				OldTableID: d.OldTableId, JobID: d.JobId, Query: d.Query}); err != nil {
				return false, err
			}
			sum.ddls++
		case *apiv1.PullEvent_Resolved:
			if err := w.WriteResolved(truth.Resolved{Ts: x.Resolved.Ts}); err != nil {
				return false, err
			}
			sum.resolved = x.Resolved.Ts
			if p.untilResolved != 0 && x.Resolved.Ts >= p.untilResolved {
				return true, nil
			}
		}
	}
	return false, nil
}

// ended classifies the error that ended the stream.
func (p *apiPull) ended(ctx context.Context, sum *pullSummary, err error) {
	if c := status.Code(err); (c == codes.DeadlineExceeded || c == codes.Canceled) && ctx.Err() == nil {
		// gRPC runs its own timer for the deadline, and may report it a
		// moment before the context does: wait for the context to tell
		// whose deadline or cancellation it was.
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	switch {
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), errPullTimeout):
		sum.stop = stopTimeout
	case ctx.Err() != nil || status.Code(err) == codes.Canceled:
		sum.stop = stopInterrupted
	case errors.Is(err, io.EOF):
		sum.stop = stopEnded
	default:
		sum.stop, sum.err = stopError, err
	}
}

// ddlAction is a DDL kind as a truth file's action: "create_table",
// "alter_table", "drop_table".
func ddlAction(k apiv1.DDL_Kind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "KIND_"))
}

// failed says whether the pull failed (exit status 1): an error, or the
// timeout passing before --until-resolved was reached (or, without
// --until-resolved, at all: the pull never completed). An interrupted pull
// and one the api-server ended succeed, as the rows written are complete
// up to the last resolved ts.
func (s *pullSummary) failed() bool { return s.stop == stopError || s.stop == stopTimeout }

// line is the summary printed on stderr when the pull ends: how many rows
// (and DDLs) were written, the last resolved ts, and why it stopped.
func (s *pullSummary) line(p *apiPull) string {
	got := fmt.Sprintf("%d rows", s.rows)
	if s.ddls > 0 {
		got += fmt.Sprintf(" and %d DDLs", s.ddls)
	}
	resolved := "no resolved ts received"
	if s.resolved != 0 {
		resolved = fmt.Sprintf("resolved through %d", s.resolved)
	}
	until := ""
	if p.untilResolved != 0 {
		until = fmt.Sprintf(" (--until-resolved %d not reached)", p.untilResolved)
	}
	switch s.stop {
	case stopUntilResolved:
		return fmt.Sprintf("tistream pull: done after %s; %s (--until-resolved %d reached)", got, resolved, p.untilResolved)
	case stopTimeout:
		return fmt.Sprintf("tistream pull: stopped by --timeout %s after %s; %s%s", p.timeout, got, resolved, until)
	case stopInterrupted:
		return fmt.Sprintf("tistream pull: interrupted after %s; %s%s", got, resolved, until)
	case stopEnded:
		return fmt.Sprintf("tistream pull: the api-server ended the stream after %s; %s%s", got, resolved, until)
	default:
		return fmt.Sprintf("tistream pull: %v; stopped after %s; %s%s", s.err, got, resolved, until)
	}
}
