package mysqlsink

import (
	"context"
	"encoding/json"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/client"
	tc "github.com/tistream/tistream/libs/tidbcodec"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// upstream is a scripted tenant: its tables at the start, then events in
// commit order (rows, DDLs, resolved ts), served by a fake api-server.
type upstream struct {
	t       testing.TB
	start   uint64
	initial map[string][]*tc.TableInfo // db -> tables at start-1
	events  []*apiv1.PullEvent
	ts      uint64
	version int64
	infos   map[int64]*tc.TableInfo // current definitions
	dbOf    map[int64]string
}

func newUpstream(t testing.TB) *upstream {
	// TSO-like timestamps, 1 ms of physical time apart, so syncpoint
	// intervals mean something.
	return &upstream{t: t, start: 1000 << 18, ts: 1000 << 18, version: 10, initial: map[string][]*tc.TableInfo{},
		infos: map[int64]*tc.TableInfo{}, dbOf: map[int64]string{}}
}

// table adds a table to the start's schema.
func (u *upstream) table(db string, info *tc.TableInfo) {
	u.initial[db] = append(u.initial[db], info)
	u.infos[info.ID], u.dbOf[info.ID] = info, db
}

func (u *upstream) next() uint64 { u.ts += 1 << 18; return u.ts }

// put writes a row of table id with the given column values at a new ts.
func (u *upstream) put(id, handle int64, vals map[string]tc.Value) {
	info := u.infos[id]
	var cols []tc.ColumnValue
	for _, c := range info.Columns {
		if v, ok := vals[c.Name.O]; ok {
			cols = append(cols, tc.ColumnValue{ID: c.ID, Value: v})
		}
	}
	b, err := tc.EncodeRow(nil, cols)
	require.NoError(u.t, err)
	ts := u.next()
	u.events = append(u.events, &apiv1.PullEvent{Event: &apiv1.PullEvent_Row{Row: &apiv1.RowChange{TableId: id, CommitTs: ts,
		StartTs: ts - 1, Op: apiv1.Op_OP_PUT, Key: tc.EncodeRecordKey(id, handle), Value: b, SchemaVersion: u.version}}})
}

func (u *upstream) del(id, handle int64) {
	ts := u.next()
	u.events = append(u.events, &apiv1.PullEvent{Event: &apiv1.PullEvent_Row{Row: &apiv1.RowChange{TableId: id, CommitTs: ts,
		StartTs: ts - 1, Op: apiv1.Op_OP_DELETE, Key: tc.EncodeRecordKey(id, handle), SchemaVersion: u.version}}})
}

// ddl commits a DDL event; info (nil for drops) becomes the table's.
func (u *upstream) ddl(d *apiv1.DDL, info *tc.TableInfo) {
	u.version++
	d.CommitTs, d.SchemaVersion = u.next(), u.version
	if info != nil {
		b, err := json.Marshal(info)
		require.NoError(u.t, err)
		d.TableInfoJson = b
		u.infos[info.ID], u.dbOf[info.ID] = info, d.DbName
	}
	u.events = append(u.events, &apiv1.PullEvent{Event: &apiv1.PullEvent_Ddl{Ddl: d}})
}

func (u *upstream) resolved() {
	u.events = append(u.events, &apiv1.PullEvent{Event: &apiv1.PullEvent_Resolved{Resolved: &apiv1.Resolved{Ts: u.next()}}})
}

func eventTs(pe *apiv1.PullEvent) uint64 {
	ev, _ := client.EventOf(pe)
	return ev.Ts()
}

// fakeAPI serves an upstream: the pull from any start ts, and listings of
// the start's schema (at or after start-1; earlier is OUT_OF_RANGE).
type fakeAPI struct {
	apiv1.UnimplementedTiStreamServiceServer
	u     *upstream
	mu    sync.Mutex
	pulls []uint64
}

func (f *fakeAPI) PullTenant(req *apiv1.PullTenantRequest, st grpc.ServerStreamingServer[apiv1.PullTenantResponse]) error {
	f.mu.Lock()
	f.pulls = append(f.pulls, req.StartTs)
	f.mu.Unlock()
	for _, ev := range f.u.events {
		if eventTs(ev) < max(req.StartTs, f.u.start) {
			continue
		}
		if err := st.Send(&apiv1.PullTenantResponse{Events: []*apiv1.PullEvent{ev}}); err != nil {
			return err
		}
	}
	<-st.Context().Done()
	return st.Context().Err()
}

func (f *fakeAPI) ListDBs(_ context.Context, req *apiv1.ListDBsRequest) (*apiv1.ListDBsResponse, error) {
	if req.Ts+1 < f.u.start {
		return nil, status.Error(codes.OutOfRange, "below the floor")
	}
	var names []string
	for db := range f.u.initial {
		names = append(names, db)
	}
	sort.Strings(names)
	resp := &apiv1.ListDBsResponse{}
	for i, n := range names {
		resp.Dbs = append(resp.Dbs, &apiv1.Database{Id: int64(i + 1), Name: n})
	}
	return resp, nil
}

func (f *fakeAPI) ListTables(_ context.Context, req *apiv1.ListTablesRequest) (*apiv1.ListTablesResponse, error) {
	if req.Ts+1 < f.u.start {
		return nil, status.Error(codes.OutOfRange, "below the floor")
	}
	resp := &apiv1.ListTablesResponse{}
	for db, infos := range f.u.initial {
		if !strings.EqualFold(db, req.Db) {
			continue
		}
		for _, info := range infos {
			b, err := json.Marshal(info)
			if err != nil {
				return nil, err
			}
			resp.Tables = append(resp.Tables, &apiv1.Table{Id: info.ID, Name: info.Name.O, TableInfoJson: b, SchemaVersion: 10})
		}
	}
	return resp, nil
}

// serveFake starts a fake api-server for u and returns its address.
func serveFake(t testing.TB, u *upstream) (string, *fakeAPI) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeAPI{u: u}
	srv := grpc.NewServer()
	apiv1.RegisterTiStreamServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), f
}
