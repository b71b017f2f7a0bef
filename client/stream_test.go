package client

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/tidbcodec"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// script is a fake api-server: a fixed tenant history (rows, DDLs and
// resolved events in commit order) served from any start ts, in messages
// of a few events, with the stream broken after a given number of events
// (a different number on each connection).
type script struct {
	apiv1.UnimplementedTiStreamServiceServer
	events []*apiv1.PullEvent
	mu     sync.Mutex
	breaks []int    // events sent before breaking, per connection; then serve to the end
	starts []uint64 // start ts of each connection
	final  error    // when set, every connection after the breaks fails with it
}

func (s *script) PullTenant(req *apiv1.PullTenantRequest, st grpc.ServerStreamingServer[apiv1.PullTenantResponse]) error {
	s.mu.Lock()
	conn := len(s.starts)
	s.starts = append(s.starts, req.StartTs)
	limit := -1
	if conn < len(s.breaks) {
		limit = s.breaks[conn]
	} else if s.final != nil {
		s.mu.Unlock()
		return s.final
	}
	s.mu.Unlock()
	var batch []*apiv1.PullEvent
	sent := 0
	for _, ev := range s.events {
		if ts := eventTs(ev); ts < req.StartTs {
			continue
		}
		if sent == limit {
			break
		}
		batch = append(batch, ev)
		sent++
		if len(batch) == 3 {
			if err := st.Send(&apiv1.PullTenantResponse{Events: batch}); err != nil {
				return err
			}
			batch = nil
		}
	}
	if len(batch) > 0 {
		if err := st.Send(&apiv1.PullTenantResponse{Events: batch}); err != nil {
			return err
		}
	}
	if limit >= 0 {
		return status.Error(codes.Unavailable, "api-server is stopping")
	}
	<-st.Context().Done()
	return st.Context().Err()
}

func eventTs(pe *apiv1.PullEvent) uint64 {
	ev, _ := EventOf(pe)
	return ev.Ts()
}

// history: transactions of 1-4 rows at ts 10, 20, ..., a DDL now and then,
// a resolved ts after every other transaction.
func history(n int) []*apiv1.PullEvent {
	var out []*apiv1.PullEvent
	for i := 1; i <= n; i++ {
		ts := uint64(i * 10)
		if i%7 == 0 {
			out = append(out, &apiv1.PullEvent{Event: &apiv1.PullEvent_Ddl{Ddl: &apiv1.DDL{CommitTs: ts, TableId: 100,
				Kind: apiv1.DDL_KIND_ADD_COLUMN, SchemaVersion: int64(i)}}})
		}
		for k := 0; k < 1+i%4; k++ {
			out = append(out, &apiv1.PullEvent{Event: &apiv1.PullEvent_Row{Row: &apiv1.RowChange{TableId: 100, CommitTs: ts,
				StartTs: ts - 1, Op: apiv1.Op_OP_PUT, Key: tidbcodec.EncodeRecordKey(100, int64(i*10+k))}}})
		}
		if i%2 == 0 {
			out = append(out, &apiv1.PullEvent{Event: &apiv1.PullEvent_Resolved{Resolved: &apiv1.Resolved{Ts: ts}}})
		}
	}
	return out
}

func serve(t *testing.T, s *script) *Client {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	apiv1.RegisterTiStreamServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	var slept []time.Duration
	c, err := Dial(lis.Addr().String(), Options{MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
		Sleep:  func(ctx context.Context, d time.Duration) error { slept = append(slept, d); return nil }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func key(ev Event) string {
	switch ev.Kind {
	case EventRow:
		return fmt.Sprintf("row %d %x", ev.Row.CommitTs, ev.Row.Key)
	case EventDDL:
		return fmt.Sprintf("ddl %d", ev.DDL.CommitTs)
	}
	return fmt.Sprintf("resolved %d", ev.Resolved)
}

// TestResumeDeliversEachEventOnce breaks the stream at many points (in the
// middle of a transaction, right after a DDL, before any resolved ts) and
// checks that the consumer gets exactly the history, in order, and that
// each reconnect resumed after the last resolved ts delivered.
func TestResumeDeliversEachEventOnce(t *testing.T) {
	events := history(40)
	var want []string
	for _, ev := range events {
		e, _ := (&Stream{seen: map[string]struct{}{}}).accept(ev)
		want = append(want, key(e))
	}
	for _, breaks := range [][]int{{}, {1}, {2, 2, 2}, {5, 0, 7, 3}, {11, 13, 17, 19, 23}, {len(events) - 1}} {
		t.Run(fmt.Sprint(breaks), func(t *testing.T) {
			s := &script{events: events, breaks: breaks}
			c := serve(t, s)
			st, err := c.Pull(context.Background(), Tenant(1), 0)
			require.NoError(t, err)
			var got []string
			var resolvedSeen []uint64
			for len(got) < len(want) {
				ev, err := st.Next()
				require.NoError(t, err)
				got = append(got, key(ev))
				if ev.Kind == EventResolved {
					resolvedSeen = append(resolvedSeen, ev.Resolved)
				}
			}
			require.Equal(t, want, got)
			require.Equal(t, len(breaks), st.Reconnects())
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, start := range s.starts[1:] {
				require.True(t, start == 0 || start-1 == resolvedAt(resolvedSeen, start-1), "resumed at %d, not after a resolved ts delivered", start)
			}
		})
	}
}

func resolvedAt(rs []uint64, ts uint64) uint64 {
	for _, r := range rs {
		if r == ts {
			return r
		}
	}
	return 0
}

// TestFinalErrors: errors a retry cannot fix end the stream typed, and a
// server that stays down exhausts the retry limit.
func TestFinalErrors(t *testing.T) {
	outOfRange, err := status.New(codes.OutOfRange, "start ts 5 is older than the retained data").
		WithDetails(&apiv1.StartTsOutOfRange{OldestStartTs: 77})
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		final error
		check func(t *testing.T, err error)
	}{
		"not found": {status.Error(codes.NotFound, "no table"), func(t *testing.T, err error) { require.ErrorIs(t, err, ErrNotFound) }},
		"unauthenticated": {status.Error(codes.Unauthenticated, "who are you"), func(t *testing.T, err error) {
			require.ErrorIs(t, err, ErrUnauthenticated)
		}},
		"out of range": {outOfRange.Err(), func(t *testing.T, err error) {
			var oe *OutOfRangeError
			require.ErrorAs(t, err, &oe)
			require.Equal(t, uint64(77), oe.Oldest)
			require.Equal(t, uint64(5), oe.Start)
		}},
		"down": {status.Error(codes.Unavailable, "connection refused"), func(t *testing.T, err error) {
			require.ErrorIs(t, err, ErrGaveUp)
		}},
	} {
		t.Run(name, func(t *testing.T) {
			c := serve(t, &script{final: tc.final})
			c.opts.RetryLimit = 3
			st, err := c.Pull(context.Background(), Tenant(1), 5)
			require.NoError(t, err)
			_, err = st.Next()
			tc.check(t, err)
			_, again := st.Next()
			require.Equal(t, err, again, "the error sticks")
		})
	}
	_, err = (&Client{}).Pull(context.Background(), Target{}, 0)
	require.ErrorIs(t, err, ErrInvalidArgument)
}

func TestBackoffIsCappedAndJittered(t *testing.T) {
	c := New(nil, Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 80 * time.Millisecond})
	s := &Stream{c: c}
	for f := 1; f <= 40; f++ {
		s.failures = f
		d := s.backoff()
		ceil := min(10*time.Millisecond<<min(f-1, 30), 80*time.Millisecond)
		require.GreaterOrEqual(t, d, ceil/2, "failure %d", f)
		require.LessOrEqual(t, d, ceil, "failure %d", f)
	}
}
