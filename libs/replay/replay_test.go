package replay_test

import (
	"context"
	"fmt"
	"slices"
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

// history is a busy simulated cluster: region churn, every commit protocol,
// rollbacks, a large and long-running transactions, and DDL.
func history(seed uint64) sim.Config {
	cfg := sim.DefaultConfig()
	cfg.Seed = seed
	cfg.Duration = 10 * time.Second
	cfg.RowsPerSec = 2000
	cfg.Tenants = 2
	cfg.Stores = 4
	cfg.SplitEvery = 150 * time.Millisecond
	cfg.MergeEvery = 250 * time.Millisecond
	cfg.TransferEvery = 100 * time.Millisecond
	cfg.DDLEvery = time.Second
	cfg.LargeTxnEvery = 5 * time.Second
	cfg.LargeTxnRows = 20_000
	cfg.LongTxnEvery = 2 * time.Second
	cfg.LongTxnHold = 3 * time.Second
	return cfg
}

// pullJSONL pulls req from the pool to the end and renders it as the JSON
// Lines verify reads.
func pullJSONL(t *testing.T, store objstore.Store, req pull.Request) []byte {
	_, b := pulltest.Pull(t, store, req)
	return b
}

var check = pulltest.Check

// TestReplayPullVerify is the property test of the ordering core: for random
// histories, any arrival order across stores, any number of ranges, and
// stale snapshot restores of random ranges mid-way, sim → replay → pull →
// verify passes for the tenant, one table and one database. The chaos
// histories add what an independent upstream found the core wrong on
// (issue 15): store crashes with partial, full and cascaded takeovers and
// takeovers of lost ENDs (read in random store order, so takeover ENDs come
// before the crashed store's START or its remaining files), restarted
// stores, lock refreshes, pipelined DML generations across leaders, and
// rolled-back merges.
func TestReplayPullVerify(t *testing.T) {
	cases := []struct {
		seed    uint64
		ranges  int
		random  bool
		restore float64
		chaos   bool
	}{
		{1, 1, false, 0, false},
		{2, 3, true, 0, false},
		{3, 2, true, 0.05, false},
		{4, 4, true, 0.15, false},
		{5, 3, true, 0.1, true},
		{6, 1, true, 0.05, true},
		{7, 4, true, 0.15, true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("seed%d-ranges%d-random%v-restore%v-chaos%v", tc.seed, tc.ranges, tc.random, tc.restore, tc.chaos), func(t *testing.T) {
			cfg := history(tc.seed)
			if tc.chaos {
				cfg.EnableChaos()
			}
			buffer, truthFile, st := simtest.Run(t, cfg)
			require.Greater(t, st.Splits+st.Merges+st.Transfers, int64(50))
			if tc.chaos {
				require.Positive(t, st.Crashes, "stores crashed")
				require.Positive(t, st.Heartbeats, "lock refreshes")
				require.Positive(t, st.PipelinedTxns, "pipelined transactions")
			}
			poolStore := objstore.NewMemory()
			sum, err := replay.Run(context.Background(), replay.Config{
				Buffer: buffer, Pool: poolStore, Cluster: cfg.ClusterID, Ranges: tc.ranges, WorkDir: t.TempDir(),
				Random: tc.random, Seed: tc.seed, RestoreChance: tc.restore,
			})
			require.NoError(t, err)
			if tc.restore > 0 {
				require.Greater(t, sum.Restores, int64(0))
			}
			for tenant := uint64(1); tenant <= uint64(cfg.Tenants); tenant++ {
				require.Equal(t, st.FinalResolvedTs, sum.Watermarks[tenant], "tenant %d reaches the final watermark", tenant)
				ten := tenant
				check(t, truthFile, pullJSONL(t, poolStore, pull.Request{Tenant: tenant}), verify.Options{Tenant: &ten})
			}
			one := uint64(1)
			check(t, truthFile, pullJSONL(t, poolStore, pull.Request{Tenant: 1, Table: 104}), verify.Options{Tenant: &one, Tables: []int64{104}})
			mid := st.FinalResolvedTs - 4<<18*1000 // four seconds before the end
			if table, ok := liveTable(t, poolStore, mid); ok {
				check(t, truthFile, pullJSONL(t, poolStore, pull.Request{Tenant: 1, Table: table, From: mid}),
					verify.Options{Tenant: &one, Tables: []int64{table}, From: mid})
			}
		})
	}
}

// liveTable picks a table of tenant 1 that exists at ts (DDL may have
// dropped any given id by then): the first one above the first two.
func liveTable(t *testing.T, store objstore.Store, ts uint64) (int64, bool) {
	h, err := pull.LoadSchema(context.Background(), store, 1)
	require.NoError(t, err)
	var ids []int64
	for _, db := range h.DBs(ts) {
		for _, tb := range h.Tables(db.Info.ID, ts) {
			ids = append(ids, tb.Info.ID)
		}
	}
	slices.Sort(ids)
	if len(ids) < 3 {
		return 0, false
	}
	return ids[2], true
}

// TestSixtySecondHistory is the acceptance run: a 60 s history at
// 5,000 rows/s with splits, merges and leader transfers, replayed in a random
// store order over three ranges with stale-snapshot restores, pulled whole,
// by table and by database, and verified against the truth.
func TestSixtySecondHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("the 60 s history takes about 20 s")
	}
	cfg := sim.DefaultConfig()
	cfg.Duration = 60 * time.Second
	cfg.LargeTxnEvery = 30 * time.Second
	cfg.LargeTxnRows = 100_000
	buffer, truthFile, st := simtest.Run(t, cfg)
	require.Greater(t, st.RowsCommitted, int64(250_000))
	require.Greater(t, st.LargeTxns, int64(0))
	poolStore := objstore.NewMemory()
	sum, err := replay.Run(context.Background(), replay.Config{Buffer: buffer, Pool: poolStore, Cluster: cfg.ClusterID,
		Ranges: 3, WorkDir: t.TempDir(), Random: true, Seed: 60, RestoreChance: 0.02})
	require.NoError(t, err)
	require.Greater(t, sum.Restores, int64(0))
	one := uint64(1)
	check(t, truthFile, pullJSONL(t, poolStore, pull.Request{Tenant: 1}), verify.Options{Tenant: &one})

	// The database's tables over the whole history, created ones included.
	h, err := pull.LoadSchema(context.Background(), poolStore, 1)
	require.NoError(t, err)
	db, ok := h.DBByName("db2", h.Floor())
	require.True(t, ok)
	tables := h.TableIDsSince(db.Info.ID, 0)
	require.NotEmpty(t, tables)
	check(t, truthFile, pullJSONL(t, poolStore, pull.Request{Tenant: 1, DB: "db2"}), verify.Options{Tenant: &one, Tables: tables})
}
