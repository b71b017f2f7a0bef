package pull_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pull"
	"github.com/tistream/tistream/libs/pull/pulltest"
	"github.com/tistream/tistream/libs/replay"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/sim/simtest"
	"github.com/tistream/tistream/libs/verify"
)

var (
	pullAll = pulltest.Pull
	check   = pulltest.Check
)

// TestManyTablesPartialSchema pulls a tenant of 20,000 tables whose DDL
// (creates, alters, truncates, renames across databases, drops) comes
// several times a second, by tenant, by each database and by table, and
// checks each against the simulator's truth. A pull keeps only the part of
// the schema it needs (the snapshot's databases, the pulled table, or the
// database's table ids plus the tables changes touch: schema.go); the
// database pulls are also compared row for row with the rows of the
// tenant pull whose table is in the database at its commit_ts according to
// the whole schema history, what a pull decided before.
func TestManyTablesPartialSchema(t *testing.T) {
	if testing.Short() {
		t.Skip("a 6 s history of 20,000 tables")
	}
	cfg := sim.DefaultConfig()
	cfg.Seed = 11
	cfg.Tables = 20_000
	cfg.DBs = 3
	cfg.Regions = 64
	cfg.Duration = 6 * time.Second
	cfg.RowsPerSec = 3000
	cfg.DDLEvery = 100 * time.Millisecond
	buffer, truthFile, st := simtest.Run(t, cfg)
	require.Greater(t, st.DDLs, int64(20))
	store := objstore.NewMemory()
	_, err := replay.Run(context.Background(), replay.Config{Buffer: buffer, Pool: store, Cluster: cfg.ClusterID,
		Ranges: 3, WorkDir: t.TempDir()})
	require.NoError(t, err)

	one := uint64(1)
	tenantRows, tenantJSON := pullAll(t, store, pull.Request{Tenant: 1})
	check(t, truthFile, tenantJSON, verify.Options{Tenant: &one})

	full, err := pull.LoadSchema(context.Background(), store, 1)
	require.NoError(t, err)
	byTable := map[int64]int{}
	for _, r := range tenantRows {
		byTable[r.TableID]++
	}
	for _, db := range full.DBs(full.Floor()) {
		rows, got := pullAll(t, store, pull.Request{Tenant: 1, DB: db.Info.Name.O})
		var want []pull.Row
		for _, r := range tenantRows {
			if tb, ok := full.Table(r.TableID, r.CommitTs); ok && tb.DBID == db.Info.ID {
				want = append(want, r)
			}
		}
		require.NotEmpty(t, want, "database %s has rows", db.Info.Name.O)
		require.Equal(t, want, rows, "database %s: the rows the whole history puts in it", db.Info.Name.O)
		check(t, truthFile, got, verify.Options{Tenant: &one, Tables: full.TableIDsSince(db.Info.ID, 0)})
	}
	// The busiest tables that exist at the start.
	n := 0
	for id, c := range byTable {
		if _, ok := full.Table(id, full.Floor()); !ok || c < 3 || n == 5 {
			continue
		}
		n++
		rows, got := pullAll(t, store, pull.Request{Tenant: 1, Table: id})
		require.Len(t, rows, c, "table %d", id)
		check(t, truthFile, got, verify.Options{Tenant: &one, Tables: []int64{id}})
	}
	require.Positive(t, n)
}
