package apiserver

import (
	"context"
	"fmt"
	"github.com/tistream/tistream/libs/etcdx"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/replay"
	"github.com/tistream/tistream/libs/verify"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	schemav1 "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
	"github.com/tistream/tistream/services/schemaregistry"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// pullTimeout bounds every pull of a test.
const pullTimeout = 60 * time.Second

func pullCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), pullTimeout)
	t.Cleanup(cancel)
	return ctx
}

// dbID finds a database's id through the API.
func dbID(t *testing.T, s *server, tenant uint64, db string) int64 {
	dbs, err := s.client.ListDBs(pullCtx(t), &apiv1.ListDBsRequest{TenantId: tenant})
	require.NoError(t, err)
	for _, d := range dbs.Dbs {
		if d.Name == db {
			return d.Id
		}
	}
	t.Fatalf("no database %s", db)
	return 0
}

// TestPullTenantMatchesTruth pulls both tenants whole (start_ts 0 = the
// tenant's registration) over gRPC and verifies rows, schema versions and
// resolved events against the truth, and the DDL events against the
// truth's DDLs.
func TestPullTenantMatchesTruth(t *testing.T) {
	f := history(t)
	e := startRegistry(t, f, f.pool)
	s := startServer(t, f.pool, e.schema, func(c *Config) { c.MaxBatchRows = 100 })
	for tenant := uint64(1); tenant <= uint64(f.cfg.Tenants); tenant++ {
		recv, err := s.open(pullCtx(t), req{kind: kindTenant, tenant: tenant})
		require.NoError(t, err)
		p := collect(t, recv, tenant, f.final)
		require.LessOrEqual(t, p.maxRows, 100)
		check(t, f, p, verify.Options{Tenant: &tenant, From: f.snapTs[tenant]})
		checkDDLs(t, f.ddlsOf(tenant, 0, nil), p.ddls)
	}
}

// TestPullTableAndDB pulls one table (by id and by names) and one
// database from the middle of the history and verifies them against the
// truth, DDL events included (tables created in the database later too).
func TestPullTableAndDB(t *testing.T) {
	f := history(t)
	e := startRegistry(t, f, f.pool)
	s := startServer(t, f.pool, e.schema)
	from := f.mid()
	one := uint64(1)

	id := tableWithDDL(t, f, from)
	recv, err := s.open(pullCtx(t), req{kind: kindTable, tenant: 1, tableID: id, start: from})
	require.NoError(t, err)
	byID := collect(t, recv, 1, f.final)
	check(t, f, byID, verify.Options{Tenant: &one, Tables: []int64{id}, From: from})
	checkDDLs(t, tableDDLs(f, 1, from, id), byID.ddls)
	require.NotEmpty(t, byID.ddls)

	// The same table by names.
	var db string
	for i := 1; i <= f.cfg.DBs && db == ""; i++ {
		name := fmt.Sprintf("db%d", i)
		if slices.Contains(tablesAt(t, s, f, 1, name, from), id) {
			db = name
		}
	}
	require.NotEmpty(t, db)
	listed, err := s.client.ListTables(pullCtx(t), &apiv1.ListTablesRequest{TenantId: 1, Db: db, Ts: from})
	require.NoError(t, err)
	var name string
	for _, tb := range listed.Tables {
		if tb.Id == id {
			name = tb.Name
		}
	}
	recv, err = s.open(pullCtx(t), req{kind: kindTable, tenant: 1, db: db, table: name, start: from})
	require.NoError(t, err)
	byName := collect(t, recv, 1, f.final)
	require.Equal(t, byID.jsonl.String(), byName.jsonl.String())

	// The database: its tables at the start and those that come into it
	// later; rows checked for those that stay in it throughout.
	tables := tablesAt(t, s, f, 1, "db2", from)
	listed, err = s.client.ListTables(pullCtx(t), &apiv1.ListTablesRequest{TenantId: 1, Db: "db2", Ts: from})
	require.NoError(t, err)
	var ids []int64
	for _, tb := range listed.Tables {
		ids = append(ids, tb.Id)
		require.NotEmpty(t, tb.TableInfoJson)
	}
	require.Equal(t, tables, ids, "ListTables at the start ts")
	ddls, steady := dbPullExpect(t, s, f, 1, "db2", from)
	recv, err = s.open(pullCtx(t), req{kind: kindDB, tenant: 1, db: "db2", start: from})
	require.NoError(t, err)
	p := collect(t, recv, 1, f.final)
	check(t, f, p, verify.Options{Tenant: &one, Tables: steady, From: from})
	checkDDLs(t, ddls, p.ddls)
}

// TestPullFollowsNewData opens a pull while the pool is still being
// written (the replay paused half-way), then lets the replay finish: the
// pull follows the new data to the end and matches the truth. The registry
// polls slower than the api-server, so rows regularly wait for it.
func TestPullFollowsNewData(t *testing.T) {
	t.Run("polls", func(t *testing.T) { testPullFollowsNewData(t, false) })
	t.Run("notices", func(t *testing.T) { testPullFollowsNewData(t, true) })
}

// testPullFollowsNewData with notices: the api-server and the registry poll
// only every hour, so the pull reaches the end only because a publication
// notice (as a sorter puts it after publishing) wakes both.
func testPullFollowsNewData(t *testing.T, notices bool) {
	f := history(t)
	pl, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	var s *server
	var e *env
	if notices {
		e = startRegistry(t, f, pl, func(c *schemaregistry.Config) { c.PollInterval, c.FallbackPollInterval = time.Hour, time.Hour })
		s = startServerEtcd(t, pl, e.schema, e.cli, func(c *Config) { c.PollInterval, c.FallbackPollInterval = time.Hour, time.Hour })
	} else {
		e = startRegistry(t, f, pl, func(c *schemaregistry.Config) { c.PollInterval = 150 * time.Millisecond })
		s = startServer(t, pl, e.schema)
	}

	const tenant = 1
	objs, err := objstore.ListAll(context.Background(), f.buffer, layout.TenantBufferPrefix(f.cfg.ClusterID, tenant), "")
	require.NoError(t, err)
	paused, release := make(chan struct{}), make(chan struct{})
	gate := &gatedStore{Store: f.buffer, after: int64(len(objs) / 2), hook: func() {
		close(paused)
		<-release
	}}
	replayDone := make(chan error, 1)
	go func() {
		_, err := replay.Run(context.Background(), replay.Config{Buffer: gate, Pool: pl, Cluster: f.cfg.ClusterID,
			Tenants: []uint64{tenant}, Ranges: replayRanges, WorkDir: t.TempDir(), FlushEvery: 5})
		replayDone <- err
	}()
	t.Cleanup(func() {
		if !gate.released.Swap(true) {
			close(release)
		}
	})
	select {
	case <-paused:
	case err := <-replayDone:
		t.Fatalf("the replay ended (err %v) before pausing", err)
	case <-time.After(pullTimeout):
		t.Fatal("the replay never paused")
	}
	// What a sorter does after each publication (the replay does not).
	notice := func() {
		if notices {
			_, err := e.cli.Put(context.Background(), etcdx.PublishedKey(tenant, "sorter-x"), "g/1")
			require.NoError(t, err)
		}
	}
	notice()

	recv, err := s.open(pullCtx(t), req{kind: kindTenant, tenant: tenant, start: f.snapTs[tenant]})
	require.NoError(t, err)
	p := &pulled{}
	for i := 0; p.lastResolved <= f.snapTs[tenant]; i++ {
		require.Less(t, i, 100000)
		events, err := recv()
		require.NoError(t, err)
		p.add(t, tenant, events)
	}
	require.Less(t, p.lastResolved, f.final, "the pool was complete before the pull opened")
	gate.released.Store(true)
	close(release)
	if notices {
		require.NoError(t, <-replayDone)
		replayDone <- nil
		notice()
	}
	for p.lastResolved < f.final {
		events, err := recv()
		require.NoError(t, err)
		p.add(t, tenant, events)
	}
	require.NoError(t, p.w.Flush())
	require.NoError(t, <-replayDone)
	one := uint64(tenant)
	check(t, f, p, verify.Options{Tenant: &one, From: f.snapTs[tenant]})
	checkDDLs(t, f.ddlsOf(tenant, 0, nil), p.ddls)
}

// gatedStore calls hook once, in the Get after the first `after` ones.
type gatedStore struct {
	objstore.Store
	after    int64
	hook     func()
	gets     atomic.Int64
	released atomic.Bool
}

func (g *gatedStore) Get(ctx context.Context, key string) ([]byte, error) {
	if g.gets.Add(1) == g.after+1 {
		g.hook()
	}
	return g.Store.Get(ctx, key)
}

// TestSharedCache runs two pulls of one table at once: the second reads
// what the first loaded from the shared cache.
func TestSharedCache(t *testing.T) {
	f := history(t)
	e := startRegistry(t, f, f.pool)
	s := startServer(t, f.pool, e.schema)
	id := tableWithDDL(t, f, f.mid())
	one := uint64(1)
	results := make(chan *pulled, 2)
	for range 2 {
		recv, err := s.open(pullCtx(t), req{kind: kindTable, tenant: 1, tableID: id, start: f.mid()})
		require.NoError(t, err)
		go func() {
			p := &pulled{}
			defer func() { results <- p }()
			for p.lastResolved < f.final {
				events, err := recv()
				if err != nil {
					return
				}
				p.add(t, 1, events)
			}
			_ = p.w.Flush()
		}()
	}
	a, b := <-results, <-results
	require.Equal(t, f.final, a.lastResolved)
	require.Equal(t, f.final, b.lastResolved)
	require.Equal(t, a.jsonl.String(), b.jsonl.String())
	check(t, f, a, verify.Options{Tenant: &one, Tables: []int64{id}, From: f.mid()})
	require.Greater(t, s.counter(t, "tistream_apiserver_cache_hits_total"), 0.0)
}

// recvErr opens a pull and returns the status it ends with.
func recvErr(t *testing.T, s *server, r req) error {
	t.Helper()
	recv, err := s.open(pullCtx(t), r)
	if err != nil {
		return err
	}
	for i := 0; i < 1000; i++ {
		if _, err := recv(); err != nil {
			return err
		}
	}
	t.Fatalf("pull %+v did not fail", r)
	return nil
}

// TestErrors checks the status codes of bad requests, unknown names and
// start ts older than the retained data.
func TestErrors(t *testing.T) {
	f := history(t)
	e := startRegistry(t, f, f.pool)
	s := startServer(t, f.pool, e.schema)
	e.waitRegistry(t, f, f.final)
	snap := f.snapTs[1]
	cases := []struct {
		name string
		r    req
		code codes.Code
	}{
		{"no tenant", req{kind: kindTenant}, codes.InvalidArgument},
		{"table: no tenant", req{kind: kindTable, tableID: 200}, codes.InvalidArgument},
		{"table: negative id", req{kind: kindTable, tenant: 1, tableID: -1}, codes.InvalidArgument},
		{"table: no names", req{kind: kindTable, tenant: 1, db: "db1"}, codes.InvalidArgument},
		{"db: no db", req{kind: kindDB, tenant: 1}, codes.InvalidArgument},
		{"unknown tenant", req{kind: kindTenant, tenant: 99}, codes.NotFound},
		{"unknown tenant, table", req{kind: kindTable, tenant: 99, tableID: 5, start: snap}, codes.NotFound},
		{"unknown table id", req{kind: kindTable, tenant: 1, tableID: 1 << 40, start: snap}, codes.NotFound},
		{"unknown table name", req{kind: kindTable, tenant: 1, db: "db1", table: "nope", start: snap}, codes.NotFound},
		{"unknown table db", req{kind: kindTable, tenant: 1, db: "nope", table: "sbtest1", start: snap}, codes.NotFound},
		{"unknown db", req{kind: kindDB, tenant: 1, db: "nope", start: snap}, codes.NotFound},
		{"tenant before registration", req{kind: kindTenant, tenant: 1, start: snap - 1}, codes.OutOfRange},
		{"db before registration", req{kind: kindDB, tenant: 1, db: "db1", start: snap - 1}, codes.OutOfRange},
	}
	for _, c := range cases {
		err := recvErr(t, s, c.r)
		require.Equal(t, c.code, status.Code(err), "%s: %v", c.name, err)
	}
	// A table id that names another table.
	first, err := s.client.ListTables(pullCtx(t), &apiv1.ListTablesRequest{TenantId: 1, Db: "db1", Ts: snap})
	require.NoError(t, err)
	require.NotEmpty(t, first.Tables)
	err = recvErr(t, s, req{kind: kindTable, tenant: 1, tableID: first.Tables[0].Id, db: "db1", table: "other", start: snap})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)

	ctx := pullCtx(t)
	_, err = s.client.ListDBs(ctx, &apiv1.ListDBsRequest{})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	_, err = s.client.ListDBs(ctx, &apiv1.ListDBsRequest{TenantId: 99})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	_, err = s.client.ListDBs(ctx, &apiv1.ListDBsRequest{TenantId: 1, Ts: snap - 1})
	require.Equal(t, codes.OutOfRange, status.Code(err), "%v", err)
	_, err = s.client.ListTables(ctx, &apiv1.ListTablesRequest{TenantId: 1})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	_, err = s.client.ListTables(ctx, &apiv1.ListTablesRequest{TenantId: 1, Db: "nope"})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
}

// TestListDBsAndTables checks the listings at several ts against the
// truth, and ts 0 as the latest.
func TestListDBsAndTables(t *testing.T) {
	f := history(t)
	e := startRegistry(t, f, f.pool)
	s := startServer(t, f.pool, e.schema)
	e.waitRegistry(t, f, f.final)
	ctx := pullCtx(t)
	for tenant := uint64(1); tenant <= uint64(f.cfg.Tenants); tenant++ {
		dbs, err := s.client.ListDBs(ctx, &apiv1.ListDBsRequest{TenantId: tenant})
		require.NoError(t, err)
		var names []string
		for _, d := range dbs.Dbs {
			names = append(names, d.Name)
		}
		var want []string
		for i := 1; i <= f.cfg.DBs; i++ {
			want = append(want, fmt.Sprintf("db%d", i))
		}
		require.Equal(t, want, names)
		for _, ts := range []uint64{f.snapTs[tenant], f.mid(), f.final, 0} {
			for _, db := range want {
				resp, err := s.client.ListTables(ctx, &apiv1.ListTablesRequest{TenantId: tenant, Db: db, Ts: ts})
				require.NoError(t, err)
				var ids []int64
				for _, tb := range resp.Tables {
					ids = append(ids, tb.Id)
				}
				at := ts
				if at == 0 {
					at = f.final
				}
				require.Equal(t, tablesAt(t, s, f, tenant, db, at), ids, "tenant %d %s at %d", tenant, db, ts)
			}
		}
	}
}

// TestPullWaitsForRegistry serves complete data with a registry that has
// only read half of the history (it follows a pool whose replay is paused
// half-way): the pull sends no row and no resolved ts beyond what the
// registry has read. The registry then stops and a new one starts on its
// address (restoring what the first persisted), the replay finishes, and
// the pull resumes by itself to the end and matches the truth.
func TestPullWaitsForRegistry(t *testing.T) {
	f := history(t)
	const tenant = 1
	regPool, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	e := startRegistry(t, f, regPool)
	objs, err := objstore.ListAll(context.Background(), f.buffer, layout.TenantBufferPrefix(f.cfg.ClusterID, tenant), "")
	require.NoError(t, err)
	paused, release := make(chan struct{}), make(chan struct{})
	gate := &gatedStore{Store: f.buffer, after: int64(len(objs) / 2), hook: func() {
		close(paused)
		<-release
	}}
	replayDone := make(chan error, 1)
	go func() {
		_, err := replay.Run(context.Background(), replay.Config{Buffer: gate, Pool: regPool, Cluster: f.cfg.ClusterID,
			Tenants: []uint64{tenant}, Ranges: replayRanges, WorkDir: t.TempDir(), FlushEvery: 5})
		replayDone <- err
	}()
	t.Cleanup(func() {
		if !gate.released.Swap(true) {
			close(release)
		}
	})
	select {
	case <-paused:
	case err := <-replayDone:
		t.Fatalf("the replay ended (err %v) before pausing", err)
	case <-time.After(pullTimeout):
		t.Fatal("the replay never paused")
	}
	// Where the registry stops while the replay waits.
	var regAt uint64
	eventually(t, "the registry to read what the paused replay wrote", func() bool {
		st, ok := e.registry.TenantStatus(tenant)
		if !ok || !st.Loaded || st.Resolved <= f.snapTs[tenant] {
			return false
		}
		time.Sleep(200 * time.Millisecond)
		again, _ := e.registry.TenantStatus(tenant)
		// Changes are served up to where they are complete, jobs
		// included: at or below the registry's resolved ts.
		resp, err := e.schema.GetSchemaChanges(pullCtx(t), &schemav1.GetSchemaChangesRequest{TenantId: tenant,
			FromTs: f.snapTs[tenant], ToTs: f.snapTs[tenant]})
		require.NoError(t, err)
		regAt = resp.ResolvedTs
		return again.Resolved == st.Resolved
	})
	require.Less(t, regAt, f.final)

	s := startServer(t, f.pool, e.schema)
	recv, err := s.open(pullCtx(t), req{kind: kindTenant, tenant: tenant})
	require.NoError(t, err)
	p := &pulled{}
	var resolved, lastRow atomic.Uint64
	done := make(chan error, 1)
	go func() {
		for p.lastResolved < f.final {
			events, err := recv()
			if err != nil {
				done <- err
				return
			}
			p.add(t, tenant, events)
			resolved.Store(p.lastResolved)
			lastRow.Store(p.lastRow)
		}
		done <- p.w.Flush()
	}()
	eventually(t, "the pull to reach the registry's position", func() bool { return resolved.Load() == regAt })
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, regAt, resolved.Load(), "resolved passed the registry")
	require.LessOrEqual(t, lastRow.Load(), regAt, "a row passed the registry")

	// A registry restart while the pull waits.
	e.stopRegistry(t)
	e.restartRegistry(t)
	st, ok := e.registry.TenantStatus(tenant)
	require.True(t, ok)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, regAt, resolved.Load())
	gate.released.Store(true)
	close(release)
	require.NoError(t, <-replayDone)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(pullTimeout):
		t.Fatal("the pull never reached the end after the registry caught up")
	}
	st, _ = e.registry.TenantStatus(tenant)
	require.NotContains(t, st.Source, "snapshot:", "the new registry rebuilt from the snapshot instead of restoring")
	one := uint64(tenant)
	check(t, f, p, verify.Options{Tenant: &one, From: f.snapTs[tenant]})
	checkDDLs(t, f.ddlsOf(tenant, 0, nil), p.ddls)
}

// TestMaxPullsAndStop refuses a pull beyond MaxPulls with
// RESOURCE_EXHAUSTED, and Stop ends the open pull with UNAVAILABLE.
func TestMaxPullsAndStop(t *testing.T) {
	f := history(t)
	e := startRegistry(t, f, f.pool)
	s := startServer(t, f.pool, e.schema, func(c *Config) { c.MaxPulls = 1 })
	recv, err := s.open(pullCtx(t), req{kind: kindTenant, tenant: 1})
	require.NoError(t, err)
	_, err = recv() // admitted and streaming
	require.NoError(t, err)
	err = recvErr(t, s, req{kind: kindTenant, tenant: 2})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)

	// The client keeps reading, as a live one does.
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := recv(); err != nil {
				ended <- err
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	require.NoError(t, s.svc.Stop(ctx))
	require.Less(t, time.Since(began), 5*time.Second, "Stop waited for its deadline")
	select {
	case err = <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the pull did not end")
	}
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
}

// TestStartBelowRegistryFloor: with a 2 s schema retention, a start ts the
// pool still holds but the registry has dropped is OUT_OF_RANGE, naming the
// registry's floor as the oldest start ts; starting there works.
func TestStartBelowRegistryFloor(t *testing.T) {
	f := history(t)
	e := startRegistry(t, f, f.pool, func(c *schemaregistry.Config) {
		c.Retention = 2 * time.Second
		c.PersistInterval = 20 * time.Millisecond
	})
	e.waitRegistry(t, f, f.final)
	var floor uint64
	eventually(t, "the registry's floor to move", func() bool {
		st, _ := e.registry.TenantStatus(1)
		floor = st.Floor
		return floor > f.snapTs[1]
	})
	s := startServer(t, f.pool, e.schema)
	err := recvErr(t, s, req{kind: kindTenant, tenant: 1, start: f.snapTs[1] + 1})
	require.Equal(t, codes.OutOfRange, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), fmt.Sprint(floor))
	err = recvErr(t, s, req{kind: kindTenant, tenant: 1})
	require.Equal(t, codes.OutOfRange, status.Code(err), "start 0 is the registration, below the floor: %v", err)

	recv, err := s.open(pullCtx(t), req{kind: kindTenant, tenant: 1, start: floor})
	require.NoError(t, err)
	p := collect(t, recv, 1, f.final)
	one := uint64(1)
	check(t, f, p, verify.Options{Tenant: &one, From: floor})
	checkDDLs(t, f.ddlsOf(1, floor+1, nil), p.ddls)
}
