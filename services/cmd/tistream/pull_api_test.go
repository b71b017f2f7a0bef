package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tistream/tistream/libs/svc/svctest"
	"github.com/tistream/tistream/libs/truth"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

// stuckAPI is an api-server whose PullTenant sends its messages and then
// either fails with end or, when end is nil, sends nothing more until the
// client goes away: a stream stuck at resolved 200.
type stuckAPI struct {
	apiv1.UnimplementedTiStreamServiceServer
	msgs [][]*apiv1.PullEvent
	end  error
}

func (s *stuckAPI) PullTenant(_ *apiv1.PullTenantRequest, stream grpc.ServerStreamingServer[apiv1.PullTenantResponse]) error {
	for _, m := range s.msgs {
		if err := stream.Send(&apiv1.PullTenantResponse{Events: m}); err != nil {
			return err
		}
	}
	if s.end != nil {
		return s.end
	}
	<-stream.Context().Done()
	return stream.Context().Err()
}

func rowEvent(handle byte, commitTs uint64) *apiv1.PullEvent {
	return &apiv1.PullEvent{Event: &apiv1.PullEvent_Row{Row: &apiv1.RowChange{TableId: 112, CommitTs: commitTs,
		StartTs: commitTs - 1, Op: apiv1.Op_OP_PUT, Key: []byte{'t', handle}, Value: []byte{handle}, SchemaVersion: 7}}}
}

func resolvedEvent(ts uint64) *apiv1.PullEvent {
	return &apiv1.PullEvent{Event: &apiv1.PullEvent_Resolved{Resolved: &apiv1.Resolved{Ts: ts}}}
}

// stuckMsgs: two rows and resolved 100, then a DDL, a row and resolved 200.
var stuckMsgs = [][]*apiv1.PullEvent{
	{rowEvent(1, 50), rowEvent(2, 60), resolvedEvent(100)},
	{{Event: &apiv1.PullEvent_Ddl{Ddl: &apiv1.DDL{CommitTs: 150, SchemaVersion: 8, Kind: apiv1.DDL_KIND_ALTER_TABLE,
		DbId: 2, TableId: 112, DbName: "db", TableName: "t"}}}, rowEvent(3, 160), resolvedEvent(200)},
}

func startStuckAPI(t *testing.T, end error) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	apiv1.RegisterTiStreamServiceServer(srv, &stuckAPI{msgs: stuckMsgs, end: end})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// pulledLines parses what pull wrote: rows, DDLs, resolved ts.
func pulledLines(t *testing.T, out []byte) (rows []uint64, ddls []truth.DDL, resolved []uint64) {
	t.Helper()
	r := truth.NewReader(bytes.NewReader(out), "stdout")
	for {
		l, err := r.Next()
		if errors.Is(err, io.EOF) {
			return rows, ddls, resolved
		}
		require.NoError(t, err)
		switch l.Kind {
		case truth.KindRow:
			require.Equal(t, uint64(1), l.Row.Tenant)
			rows = append(rows, l.Row.CommitTs)
		case truth.KindDDL:
			ddls = append(ddls, l.DDL)
		case truth.KindResolved:
			resolved = append(resolved, l.Resolved.Ts)
		}
	}
}

// A pull of a stuck stream that --timeout ends writes everything it
// received, says on stderr how far it got and why it stopped, and fails
// when --until-resolved was not reached.
func TestPullAPITimeoutKeepsWhatArrived(t *testing.T) {
	addr := startStuckAPI(t, nil)
	var stdout, stderr bytes.Buffer
	code := runPull(context.Background(), []string{"--api", addr, "--insecure", "--tenant", "1", "--until-resolved", "1000",
		"--timeout", "700ms"}, &stdout, &stderr)
	require.Equal(t, 1, code, stderr.String())
	rows, ddls, resolved := pulledLines(t, stdout.Bytes())
	require.Equal(t, []uint64{50, 60, 160}, rows)
	require.Equal(t, []truth.DDL{{Tenant: 1, CommitTs: 150, DBID: 2, TableID: 112, Action: "alter_table", SchemaVersion: 8,
		DBName: "db", TableName: "t"}}, ddls)
	require.Equal(t, []uint64{100, 200}, resolved)
	require.Equal(t, "tistream pull: stopped by --timeout 700ms after 3 rows and 1 DDLs; resolved through 200 "+
		"(--until-resolved 1000 not reached)\n", stderr.String())

	// Without --until-resolved the pull never completes: a timeout fails
	// it too, with the same output.
	stdout.Reset()
	stderr.Reset()
	code = runPull(context.Background(), []string{"--api", addr, "--insecure", "--tenant", "1", "--timeout", "300ms"}, &stdout, &stderr)
	require.Equal(t, 1, code, stderr.String())
	rows, _, resolved = pulledLines(t, stdout.Bytes())
	require.Equal(t, []uint64{50, 60, 160}, rows)
	require.Equal(t, []uint64{100, 200}, resolved)
	require.Equal(t, "tistream pull: stopped by --timeout 300ms after 3 rows and 1 DDLs; resolved through 200\n", stderr.String())
}

// Events reach stdout as they arrive, not when the pull ends; an
// interrupted pull succeeds (what it wrote is complete up to its last
// resolved ts).
func TestPullAPIWritesAsItReceives(t *testing.T) {
	addr := startStuckAPI(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout svctest.Buffer
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runPull(ctx, []string{"--api", addr, "--insecure", "--tenant", "1", "--timeout", "1m"}, &stdout, &stderr)
	}()
	require.Eventually(t, func() bool {
		return bytes.Contains(stdout.Bytes(), []byte(`{"type":"resolved","ts":200}`))
	}, 10*time.Second, 10*time.Millisecond, "the events received were not written while the pull was running")
	select {
	case code := <-done:
		t.Fatalf("the pull ended (%d) before it was interrupted: %s", code, stderr.String())
	default:
	}
	cancel()
	require.Equal(t, 0, <-done)
	rows, _, resolved := pulledLines(t, stdout.Bytes())
	require.Equal(t, []uint64{50, 60, 160}, rows)
	require.Equal(t, []uint64{100, 200}, resolved)
	require.Equal(t, "tistream pull: interrupted after 3 rows and 1 DDLs; resolved through 200\n", stderr.String())
}

// Reaching --until-resolved succeeds, as before, and says so.
func TestPullAPIUntilResolved(t *testing.T) {
	addr := startStuckAPI(t, nil)
	var stdout, stderr bytes.Buffer
	code := runPull(context.Background(), []string{"--api", addr, "--insecure", "--tenant", "1", "--until-resolved", "150",
		"--timeout", "1m"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	rows, _, resolved := pulledLines(t, stdout.Bytes())
	require.Equal(t, []uint64{50, 60, 160}, rows)
	require.Equal(t, []uint64{100, 200}, resolved)
	require.Equal(t, "tistream pull: done after 3 rows and 1 DDLs; resolved through 200 (--until-resolved 150 reached)\n", stderr.String())
}

// A stream that fails midway: what arrived is written, the error and how
// far it got are on stderr, the exit status is 1.
func TestPullAPIStreamError(t *testing.T) {
	addr := startStuckAPI(t, status.Error(codes.OutOfRange, "start ts 1 is older than the retained data"))
	var stdout, stderr bytes.Buffer
	code := runPull(context.Background(), []string{"--api", addr, "--insecure", "--tenant", "1", "--until-resolved", "1000"}, &stdout, &stderr)
	require.Equal(t, 1, code)
	rows, _, resolved := pulledLines(t, stdout.Bytes())
	require.Equal(t, []uint64{50, 60, 160}, rows)
	require.Equal(t, []uint64{100, 200}, resolved)
	line := stderr.String()
	require.Equal(t, 1, strings.Count(line, "\n"), line)
	require.Contains(t, line, "code = OutOfRange desc = start ts 1 is older than the retained data")
	require.Contains(t, line, "stopped after 3 rows and 1 DDLs; resolved through 200 (--until-resolved 1000 not reached)")
}
