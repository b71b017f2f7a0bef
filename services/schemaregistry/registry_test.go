package schemaregistry

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/replay"
	"github.com/tistream/tistream/libs/svc/svctest"
	schemav1 "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const rpcTimeout = 10 * time.Second

func rpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	t.Cleanup(cancel)
	return ctx
}

func requireCode(t *testing.T, want codes.Code, err error, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	require.Equal(t, want, status.Code(err), append([]any{"error: %v", err}, msgAndArgs...)...)
}

// columns counts the columns of a TableInfo JSON.
func columns(t *testing.T, info []byte) int {
	var ti struct {
		Cols []json.RawMessage `json:"cols"`
	}
	require.NoError(t, json.Unmarshal(info, &ti))
	return len(ti.Cols)
}

// initialTables reads the tables of the schema snapshot from the registry
// and checks them against the simulator's configuration (cfg.Tables tables
// spread round-robin over cfg.DBs databases db1..dbN, 4 columns each).
func initialTables(t *testing.T, r *running, w *world, at uint64) map[int64]truthTable {
	ctx := rpcCtx(t)
	dbs, err := r.client.ListDBs(ctx, &schemav1.ListDBsRequest{TenantId: 1, Ts: at})
	require.NoError(t, err)
	require.Len(t, dbs.Dbs, w.simCfg.DBs)
	out := map[int64]truthTable{}
	for i, d := range dbs.Dbs {
		require.Equal(t, fmt.Sprintf("db%d", i+1), d.Name)
		resp, err := r.client.ListTables(ctx, &schemav1.ListTablesRequest{TenantId: 1, DbName: d.Name, Ts: at})
		require.NoError(t, err)
		for _, tb := range resp.Tables {
			require.Equal(t, fmt.Sprintf("sbtest%d", tb.Id), tb.Name)
			out[tb.Id] = truthTable{id: tb.Id, dbID: d.Id, name: tb.Name, columns: 4, versionTs: tb.VersionTs}
		}
	}
	require.Len(t, out, w.simCfg.Tables)
	return out
}

// checkAgainstTruth compares the registry's answers at ts with the truth:
// the databases, each database's tables with their column counts and
// version ts, and the schema version valid at ts.
func checkAgainstTruth(t *testing.T, r *running, w *world, initial map[int64]truthTable, ts uint64) {
	t.Helper()
	ctx := rpcCtx(t)
	want, version := truthAt(initial, w.ddls, ts)
	dbs, err := r.client.ListDBs(ctx, &schemav1.ListDBsRequest{TenantId: 1, Ts: ts})
	require.NoError(t, err)
	require.Len(t, dbs.Dbs, w.simCfg.DBs)
	require.NotNil(t, dbs.SchemaVersion, "ListDBs names the schema version")
	require.Equal(t, version, dbs.GetSchemaVersion(), "ListDBs at ts %d", ts)
	got := map[int64]truthTable{}
	for _, d := range dbs.Dbs {
		resp, err := r.client.ListTables(ctx, &schemav1.ListTablesRequest{TenantId: 1, DbName: d.Name, Ts: ts})
		require.NoError(t, err)
		for _, tb := range resp.Tables {
			require.Equal(t, version, tb.SchemaVersion, "ts %d table %d", ts, tb.Id)
			require.Equal(t, d.Name, tb.DbName)
			require.Empty(t, tb.PhysicalIds)
			got[tb.Id] = truthTable{id: tb.Id, dbID: tb.DbId, name: tb.Name, columns: columns(t, tb.InfoJson), versionTs: tb.VersionTs}
		}
		require.Equal(t, version, resp.GetSchemaVersion())
		// Without TableInfos: the same tables, each keyed by its own id
		// (the simulator partitions none); ids only: just their ids.
		slim, err := r.client.ListTables(ctx, &schemav1.ListTablesRequest{TenantId: 1, DbName: d.Name, Ts: ts, WithoutInfo: true})
		require.NoError(t, err)
		require.Len(t, slim.Tables, len(resp.Tables))
		var ids []int64
		for i, tb := range slim.Tables {
			require.Empty(t, tb.InfoJson)
			require.Empty(t, tb.PhysicalIds)
			require.Equal(t, resp.Tables[i].Id, tb.Id)
			require.Equal(t, resp.Tables[i].Name, tb.Name)
			ids = append(ids, tb.Id)
		}
		bare, err := r.client.ListTables(ctx, &schemav1.ListTablesRequest{TenantId: 1, DbName: d.Name, Ts: ts, IdsOnly: true})
		require.NoError(t, err)
		require.Empty(t, bare.Tables)
		require.Equal(t, ids, bare.TableIds)
		require.Equal(t, version, bare.GetSchemaVersion())
	}
	require.Equal(t, want, got, "tables at ts %d", ts)
	for id, tb := range want {
		resp, err := r.client.GetTableSchema(ctx, &schemav1.GetTableSchemaRequest{TenantId: 1, TableId: id, Ts: ts})
		require.NoError(t, err)
		require.Equal(t, tb.versionTs, resp.Table.VersionTs)
		require.Equal(t, tb.columns, columns(t, resp.Table.InfoJson))
		require.Equal(t, version, resp.Table.SchemaVersion)
	}
}

// sampleTs are the ts worth asking about: the snapshot, just before and at
// every DDL, and the end.
func sampleTs(w *world, from uint64) []uint64 {
	ts := []uint64{from, w.final}
	for _, d := range w.ddls {
		if d.CommitTs-1 >= from {
			ts = append(ts, d.CommitTs-1)
		}
		if d.CommitTs >= from {
			ts = append(ts, d.CommitTs)
		}
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// wantChanges is the truth's DDLs committed in (from, to] as schema changes.
func wantChanges(w *world, from, to uint64) []*schemav1.SchemaChange {
	kinds := map[string]schemav1.SchemaChange_Kind{
		"create_table": schemav1.SchemaChange_KIND_CREATE_TABLE,
		"add_column":   schemav1.SchemaChange_KIND_ALTER_TABLE,
		"drop_table":   schemav1.SchemaChange_KIND_DROP_TABLE,
	}
	var out []*schemav1.SchemaChange
	for _, d := range w.ddls {
		if d.CommitTs <= from || d.CommitTs > to {
			continue
		}
		kind, ok := kinds[d.Action]
		if !ok {
			kind = schemav1.SchemaChange_KIND_ALTER_TABLE
		}
		if d.Action == "truncate_table" {
			// The old table's drop (it sorts first: a smaller id), then
			// the new one's creation.
			out = append(out, &schemav1.SchemaChange{CommitTs: d.CommitTs, SchemaVersion: d.SchemaVersion,
				Kind: schemav1.SchemaChange_KIND_DROP_TABLE, DbId: d.DBID, TableId: d.OldTableID, TableName: d.TableName,
				Job: &schemav1.DDLJob{Id: d.JobID, Query: d.Query}})
			kind = schemav1.SchemaChange_KIND_CREATE_TABLE
		}
		c := &schemav1.SchemaChange{CommitTs: d.CommitTs, SchemaVersion: d.SchemaVersion, Kind: kind, DbId: d.DBID,
			TableId: d.TableID, TableName: d.TableName}
		if d.JobID != 0 {
			c.Job = &schemav1.DDLJob{Id: d.JobID, Query: d.Query}
		}
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b *schemav1.SchemaChange) int {
		if a.CommitTs != b.CommitTs {
			return cmp.Compare(a.CommitTs, b.CommitTs)
		}
		return cmp.Compare(a.TableId, b.TableId)
	})
	return out
}

// simplify keeps the fields wantChanges sets.
func simplify(cs []*schemav1.SchemaChange) []*schemav1.SchemaChange {
	out := make([]*schemav1.SchemaChange, len(cs))
	for i, c := range cs {
		out[i] = &schemav1.SchemaChange{CommitTs: c.CommitTs, SchemaVersion: c.SchemaVersion, Kind: c.Kind, DbId: c.DbId, TableId: c.TableId,
			TableName: c.TableName}
		if c.Job != nil {
			out[i].Job = &schemav1.DDLJob{Id: c.Job.Id, Query: c.Job.Query}
		}
	}
	return out
}

func changesEqual(t *testing.T, want, got []*schemav1.SchemaChange) {
	t.Helper()
	require.Equal(t, len(want), len(got))
	for i := range want {
		require.Equal(t, want[i].String(), got[i].String(), "change %d", i)
	}
}

// TestAnswersMatchTruth follows a replayed simulated tenant to its end and
// checks every answer at the snapshot, around every DDL and at the end
// against the simulator's truth, the change list (whole and paged), and
// the error codes.
func TestAnswersMatchTruth(t *testing.T) {
	w := sharedWorld(t)
	cli := svctest.Etcd(t)
	registerTenant(t, cli, w, 1)
	cfg := testConfig()
	cfg.MaxChanges = 7
	r := start(t, cfg, cli, w.pool, mustLocalFS(t))
	st := r.waitResolved(t, 1, w.final)
	require.Equal(t, "snapshot:", st.Source[:len("snapshot:")])
	require.Equal(t, w.snapTs, st.Floor)
	require.Greater(t, st.LastApplied, w.ddls[len(w.ddls)-1].CommitTs, "the last DDL's job comes after it")

	initial := initialTables(t, r, w, w.snapTs)
	for id, tb := range initial {
		require.Equal(t, w.snapTs, tb.versionTs, "initial table %d", id)
	}
	for _, ts := range sampleTs(w, w.snapTs) {
		checkAgainstTruth(t, r, w, initial, ts)
	}
	// ts 0 is the latest the registry has read.
	ctx := rpcCtx(t)
	latest, err := r.client.ListDBs(ctx, &schemav1.ListDBsRequest{TenantId: 1})
	require.NoError(t, err)
	require.Len(t, latest.Dbs, w.simCfg.DBs)

	// Every change, paged by MaxChanges: each answer ends at a whole
	// commit ts and says where to continue.
	var got []*schemav1.SchemaChange
	from := w.snapTs
	for i := 0; ; i++ {
		require.Less(t, i, 1000, "paging never ended")
		resp, err := r.client.GetSchemaChanges(ctx, &schemav1.GetSchemaChangesRequest{TenantId: 1, FromTs: from})
		require.NoError(t, err)
		require.Equal(t, w.snapTs, resp.FloorTs)
		require.LessOrEqual(t, len(resp.Changes), cfg.MaxChanges+1)
		for _, c := range resp.Changes {
			require.Greater(t, c.CommitTs, from)
			require.LessOrEqual(t, c.CommitTs, resp.ResolvedTs)
		}
		got = append(got, resp.Changes...)
		if resp.ResolvedTs == st.Resolved {
			break
		}
		require.Greater(t, resp.ResolvedTs, from)
		from = resp.ResolvedTs
	}
	changesEqual(t, wantChanges(w, w.snapTs, w.final), simplify(got))
	// A window in the middle.
	mid := w.ddls[len(w.ddls)/2].CommitTs
	resp, err := r.client.GetSchemaChanges(ctx, &schemav1.GetSchemaChangesRequest{TenantId: 1, FromTs: mid - 1, ToTs: mid})
	require.NoError(t, err)
	changesEqual(t, wantChanges(w, mid-1, mid), simplify(resp.Changes))
	require.Equal(t, st.Resolved, resp.ResolvedTs)
	// Create and alter changes carry the new TableInfo, drops none.
	for _, c := range got {
		if c.Kind == schemav1.SchemaChange_KIND_DROP_TABLE {
			require.Empty(t, c.InfoJson)
		} else {
			require.NotEmpty(t, c.InfoJson)
		}
	}

	// Errors.
	_, err = r.client.ListDBs(ctx, &schemav1.ListDBsRequest{TenantId: 1, Ts: st.Resolved + 1})
	requireCode(t, codes.FailedPrecondition, err, "beyond resolved")
	_, err = r.client.GetTableSchema(ctx, &schemav1.GetTableSchemaRequest{TenantId: 1, TableId: w.ddls[0].TableID, Ts: st.Resolved + 1})
	requireCode(t, codes.FailedPrecondition, err, "beyond resolved")
	_, err = r.client.ListTables(ctx, &schemav1.ListTablesRequest{TenantId: 1, DbName: "db1", Ts: w.snapTs - 1})
	requireCode(t, codes.OutOfRange, err, "below the floor")
	_, err = r.client.GetSchemaChanges(ctx, &schemav1.GetSchemaChangesRequest{TenantId: 1, FromTs: w.snapTs - 1})
	requireCode(t, codes.OutOfRange, err, "below the floor")
	_, err = r.client.ListDBs(ctx, &schemav1.ListDBsRequest{TenantId: 2})
	requireCode(t, codes.NotFound, err, "unknown tenant")
	_, err = r.client.ListDBs(ctx, &schemav1.ListDBsRequest{})
	requireCode(t, codes.InvalidArgument, err, "no tenant")
	_, err = r.client.GetTableSchema(ctx, &schemav1.GetTableSchemaRequest{TenantId: 1, TableId: 0})
	requireCode(t, codes.InvalidArgument, err, "no table")
	_, err = r.client.GetTableSchema(ctx, &schemav1.GetTableSchemaRequest{TenantId: 1, TableId: 1 << 40})
	requireCode(t, codes.NotFound, err, "unknown table")
	_, err = r.client.ListTables(ctx, &schemav1.ListTablesRequest{TenantId: 1})
	requireCode(t, codes.InvalidArgument, err, "no db")
	_, err = r.client.ListTables(ctx, &schemav1.ListTablesRequest{TenantId: 1, DbName: "nope"})
	requireCode(t, codes.NotFound, err, "unknown db")
	_, err = r.client.GetSchemaChanges(ctx, &schemav1.GetSchemaChangesRequest{TenantId: 1, FromTs: w.final, ToTs: w.snapTs})
	requireCode(t, codes.InvalidArgument, err, "to below from")
	// A dropped table is gone from its drop on, there before.
	for _, d := range w.ddls {
		if d.Action != "drop_table" {
			continue
		}
		_, err = r.client.GetTableSchema(ctx, &schemav1.GetTableSchemaRequest{TenantId: 1, TableId: d.TableID, Ts: d.CommitTs})
		requireCode(t, codes.NotFound, err, "dropped table %d", d.TableID)
		_, err = r.client.GetTableSchema(ctx, &schemav1.GetTableSchemaRequest{TenantId: 1, TableId: d.TableID, Ts: d.CommitTs - 1})
		require.NoError(t, err)
	}
}

func mustLocalFS(t *testing.T) objstore.Store {
	s, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	return s
}

// TestRetentionFloor keeps a 3 s window: the floor moves to the window's
// start, older ts are OUT_OF_RANGE, and answers from the floor on still
// match the truth (each table keeps the version valid at the floor).
func TestRetentionFloor(t *testing.T) {
	w := sharedWorld(t)
	cli := svctest.Etcd(t)
	registerTenant(t, cli, w, 1)
	cfg := testConfig()
	cfg.Retention = 3 * time.Second
	cfg.PersistInterval = 20 * time.Millisecond
	r := start(t, cfg, cli, w.pool, mustLocalFS(t))
	st := r.waitResolved(t, 1, w.final)
	floor := retentionFloor(st.Resolved, cfg.Retention)
	require.Greater(t, floor, w.snapTs)
	require.Less(t, floor, w.final)
	require.Eventually(t, func() bool {
		st, _ = r.svc.TenantStatus(1)
		return st.Floor == floor
	}, 10*time.Second, 5*time.Millisecond, "the floor never moved to %d", floor)
	require.Less(t, st.Changes, len(w.ddls), "retention dropped no change")

	full := start(t, testConfig(), cli, w.pool, mustLocalFS(t))
	full.waitResolved(t, 1, w.final)
	initial := initialTables(t, full, w, w.snapTs)
	for _, ts := range sampleTs(w, floor) {
		checkAgainstTruth(t, r, w, initial, ts)
	}
	ctx := rpcCtx(t)
	_, err := r.client.ListDBs(ctx, &schemav1.ListDBsRequest{TenantId: 1, Ts: floor - 1})
	requireCode(t, codes.OutOfRange, err)
	_, err = r.client.GetTableSchema(ctx, &schemav1.GetTableSchemaRequest{TenantId: 1, TableId: w.ddls[0].TableID, Ts: floor - 1})
	requireCode(t, codes.OutOfRange, err)
	_, err = r.client.GetSchemaChanges(ctx, &schemav1.GetSchemaChangesRequest{TenantId: 1, FromTs: floor - 1})
	requireCode(t, codes.OutOfRange, err)
	resp, err := r.client.GetSchemaChanges(ctx, &schemav1.GetSchemaChangesRequest{TenantId: 1, FromTs: floor})
	require.NoError(t, err)
	require.Equal(t, floor, resp.FloorTs)
	changesEqual(t, wantChanges(w, floor, w.final), simplify(resp.Changes))
}

// TestPersistRestartContinues follows a pool while the replay is still
// writing it, stops mid-way (persisting), lets the replay finish, and
// starts a new registry on the same store: it restores the persisted
// history without reading the schema snapshot, continues to the end and
// answers as the truth says.
func TestPersistRestartContinues(t *testing.T) {
	w := sharedWorld(t)
	cli := svctest.Etcd(t)
	registerTenant(t, cli, w, 1)
	pl := mustLocalFS(t)
	store := mustLocalFS(t)
	cfg := testConfig()
	cfg.PersistInterval = time.Hour // only Stop persists
	r1 := start(t, cfg, cli, pl, store)

	paused, release := make(chan struct{}), make(chan struct{})
	objs, err := objstore.ListAll(context.Background(), w.buffer, "", "")
	require.NoError(t, err)
	// The replay waits in its reads of the buffer's second half while the
	// registry reads what it has flushed so far, until it has applied a DDL.
	gate := &gatedStore{Store: w.buffer, after: int64(len(objs) / 2), hook: func() bool {
		for i := 0; i < 50; i++ {
			if st, ok := r1.svc.TenantStatus(1); ok && st.Loaded && st.LastApplied > w.snapTs {
				close(paused)
				<-release
				return true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false
	}}
	replayDone := make(chan error, 1)
	go func() {
		_, err := replay.Run(context.Background(), replay.Config{Buffer: gate, Pool: pl, Cluster: w.cluster,
			Ranges: 2, WorkDir: t.TempDir(), FlushEvery: 5})
		replayDone <- err
	}()
	select {
	case <-paused:
	case err := <-replayDone:
		t.Fatalf("the replay ended (err %v) before the registry applied a DDL", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the replay never paused")
	}
	require.NoError(t, r1.svc.Stop(rpcCtx(t)))
	st1, ok := r1.svc.TenantStatus(1)
	require.True(t, ok)
	require.Equal(t, layout.SchemaHistoryPrefix(1)+layout.Pad(st1.LastApplied), st1.PersistedKey)
	require.Less(t, st1.Resolved, w.final)
	close(release)
	select {
	case err := <-replayDone:
		require.NoError(t, err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the replay never finished")
	}
	require.Greater(t, w.ddls[len(w.ddls)-1].CommitTs, st1.Resolved, "no DDL after the pause")

	var snapReads atomic.Int64
	counted := &snapshotReads{Store: pl, onRead: func() { snapReads.Add(1) }}
	r2 := start(t, cfg, cli, counted, store)
	st2 := r2.waitResolved(t, 1, w.final)
	require.Equal(t, st1.PersistedKey, st2.Source)
	require.Equal(t, st1.LastApplied, st2.RestoredLastApplied)
	require.Greater(t, st2.LastApplied, w.ddls[len(w.ddls)-1].CommitTs)
	require.Zero(t, snapReads.Load(), "the restart read the schema snapshot")
	require.Equal(t, 1.0, r2.counter(t, "tistream_schema_registry_restores_total"))

	// Answers of the restored history match the truth over the whole run.
	initial := initialTables(t, r2, w, w.snapTs)
	for _, ts := range sampleTs(w, w.snapTs) {
		checkAgainstTruth(t, r2, w, initial, ts)
	}
	resp, err := r2.client.GetSchemaChanges(rpcCtx(t), &schemav1.GetSchemaChangesRequest{TenantId: 1, FromTs: w.snapTs})
	require.NoError(t, err)
	changesEqual(t, wantChanges(w, w.snapTs, w.final), simplify(resp.Changes))

	// Stop persists the newer history; a corrupt newest file falls back
	// to it.
	require.NoError(t, r2.svc.Stop(rpcCtx(t)))
	st2, _ = r2.svc.TenantStatus(1)
	require.NotEqual(t, st1.PersistedKey, st2.PersistedKey)
	corrupt := layout.SchemaHistoryPrefix(1) + layout.Pad(w.final+1)
	require.NoError(t, store.Put(context.Background(), corrupt, []byte("not a history")))
	r3 := start(t, cfg, cli, pl, store)
	st3 := r3.waitResolved(t, 1, w.final)
	require.Equal(t, st2.PersistedKey, st3.Source)
	require.Equal(t, 1.0, r3.counter(t, "tistream_schema_registry_restore_fallbacks_total"))
	checkAgainstTruth(t, r3, w, initial, w.final)
}

// TestTenantsFollowEtcd starts with no tenant, then registers and
// unregisters one as the meta-server would.
func TestTenantsFollowEtcd(t *testing.T) {
	w := sharedWorld(t)
	cli := svctest.Etcd(t)
	r := start(t, testConfig(), cli, w.pool, mustLocalFS(t))
	require.Empty(t, r.svc.Tenants())
	ctx := rpcCtx(t)
	_, err := r.client.ListDBs(ctx, &schemav1.ListDBsRequest{TenantId: 1})
	requireCode(t, codes.NotFound, err)

	registerTenant(t, cli, w, 1)
	r.waitResolved(t, 1, w.final)
	require.Equal(t, []uint64{1}, r.svc.Tenants())
	dbs, err := r.client.ListDBs(ctx, &schemav1.ListDBsRequest{TenantId: 1, Ts: w.final})
	require.NoError(t, err)
	require.Len(t, dbs.Dbs, w.simCfg.DBs)

	_, err = cli.Delete(ctx, etcdx.TenantKey(1))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := r.client.ListDBs(ctx, &schemav1.ListDBsRequest{TenantId: 1})
		return status.Code(err) == codes.NotFound
	}, 10*time.Second, 5*time.Millisecond)
	require.Empty(t, r.svc.Tenants())
}

// gatedStore calls hook before every Get after the first `after` ones,
// until hook returns true.
type gatedStore struct {
	objstore.Store
	after int64
	hook  func() bool
	gets  atomic.Int64
	done  atomic.Bool
}

func (g *gatedStore) Get(ctx context.Context, key string) ([]byte, error) {
	if g.gets.Add(1) > g.after && !g.done.Load() && g.hook() {
		g.done.Store(true)
	}
	return g.Store.Get(ctx, key)
}

// flakyStore fails the next `fail` reads of the pool's range logs and data.
type flakyStore struct {
	objstore.Store
	fail   atomic.Int64
	failed atomic.Int64
}

var errInjected = errors.New("injected read failure")

func (f *flakyStore) hit(key string) error {
	if strings.Contains(key, "/schema_snap/") {
		return nil
	}
	if f.fail.Add(-1) >= 0 {
		f.failed.Add(1)
		return errInjected
	}
	return nil
}

func (f *flakyStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := f.hit(key); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, key)
}

func (f *flakyStore) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := f.hit(key); err != nil {
		return nil, err
	}
	return f.Store.GetRange(ctx, key, off, n)
}

func (f *flakyStore) List(ctx context.Context, prefix, startAfter string, limit int) ([]objstore.ObjectInfo, bool, error) {
	if err := f.hit(prefix); err != nil {
		return nil, false, err
	}
	return f.Store.List(ctx, prefix, startAfter, limit)
}

// TestPollFailureResumes fails the pool's reads while a tenant is
// followed: the follower restarts, resuming the history it has instead of
// restoring an older one, and its answers still match the truth.
func TestPollFailureResumes(t *testing.T) {
	w := sharedWorld(t)
	cli := svctest.Etcd(t)
	registerTenant(t, cli, w, 1)
	flaky := &flakyStore{Store: w.pool}
	r := start(t, testConfig(), cli, flaky, mustLocalFS(t))
	before := r.waitResolved(t, 1, w.final)
	flaky.fail.Store(3)
	require.Eventually(t, func() bool { return r.counter(t, "tistream_schema_registry_follow_errors_total") >= 1 },
		10*time.Second, 5*time.Millisecond, "no poll failed")
	require.Eventually(t, func() bool { return flaky.fail.Load() < 0 }, 10*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // a few polls after the failures
	after := r.waitResolved(t, 1, w.final)
	require.Equal(t, before.Source, after.Source)
	require.Equal(t, 1.0, r.counter(t, "tistream_schema_registry_restores_total"), "the history was restored again")
	initial := initialTables(t, r, w, w.snapTs)
	checkAgainstTruth(t, r, w, initial, w.final)
	checkAgainstTruth(t, r, w, initial, w.ddls[len(w.ddls)/2].CommitTs)
}
