package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/route"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// rowsOfStore routes a store's simulated files and counts their row events
// (what the ingest quota charges), in total and for the largest file.
func rowsOfStore(t *testing.T, v *env, storeID uint64) (total, largest uint64) {
	tb, err := route.NewTable([]route.Range{{ID: 1, End: splitKey}, {ID: 2, Start: splitKey}})
	require.NoError(t, err)
	rt := route.NewRouter(tb)
	for _, k := range storeFiles(t, v.src, storeID) {
		b, err := v.src.Get(context.Background(), k)
		require.NoError(t, err)
		batches, _, err := rt.Route(k, b)
		require.NoError(t, err)
		n := fileRows(batches)
		total += n
		largest = max(largest, n)
	}
	return total, largest
}

// TestIngestQuotaPacesTenant: the fleet-default ingest_rows_per_sec quota
// holds the tenant's two streams together to the rate (sampled all along:
// rows sent never exceed the quota's allowance plus one second of burst
// and one file per stream), the wait is counted, and lifting the quota in
// the tenant's etcd record applies without a restart. Every file still
// reaches its ranges exactly once, in order, with the right events.
func TestIngestQuotaPacesTenant(t *testing.T) {
	v := newEnv(t)
	exp := map[uint64]map[uint64]map[uint64]string{}
	last := map[uint64]uint64{}
	var total, largest uint64
	for store := uint64(1); store <= testStores; store++ {
		exp[store] = expectedBatches(t, v.src, store)
		seqs := seqsOf(t, v, store)
		last[store] = seqs[len(seqs)-1]
		n, l := rowsOfStore(t, v, store)
		total, largest = total+n, max(largest, l)
		v.feed(store, 1, last[store])
		v.assign(store, "d1", 1)
	}
	// Forty seconds' worth: the test passes only if lifting it applies.
	rate := max(total/40, 1)
	began := time.Now()
	_, reg := v.dispatcher("d1", func(c *Config) { c.TenantDefaults.Quotas.IngestRowsPerSec = rate })
	allowance := func(elapsed time.Duration) float64 {
		return float64(rate)*(elapsed.Seconds()+1) + float64(testStores*largest)
	}
	for time.Since(began) < 2*time.Second {
		sent := metric(t, reg, "tistream_dispatcher_rows_read_total", nil)
		elapsed := time.Since(began) // after the read: the allowance only grows
		require.LessOrEqual(t, sent, allowance(elapsed), "%.0f rows sent after %v at a quota of %d rows/s", sent, elapsed, rate)
		time.Sleep(20 * time.Millisecond)
	}
	eventually(t, func() bool {
		return metric(t, reg, "tistream_dispatcher_quota_wait_seconds_total", map[string]string{"tenant": "1"}) > 0
	},
		"the quota wait is counted")
	require.Less(t, v.checkpointSeq(1)+v.checkpointSeq(2), last[1]+last[2], "the streams finished at a quota of %d rows/s for %d rows", rate, total)

	v.put(etcdx.TenantKey(testTenant), &metav1.TenantInfo{ClusterId: testCluster, TenantId: testTenant, SettingsGeneration: 1,
		Settings: &metav1.TenantSettings{Quotas: &metav1.TenantQuotas{IngestRowsPerSec: proto.Uint64(0)}}})
	for store := uint64(1); store <= testStores; store++ {
		eventually(t, func() bool { return v.checkpointSeq(store) == last[store] }, "checkpoint of store %d reaches %d once the quota is lifted", store, last[store])
	}
	for i, f := range v.sorters {
		rangeID := uint64(i + 1)
		for store := uint64(1); store <= testStores; store++ {
			want := fedSeqs(exp[store], rangeID, 0, last[store])
			require.Equal(t, want, seqsOfBatches(accepted(f, rangeID, store)), "store %d range %d", store, rangeID)
		}
		checkContent(t, f, rangeID, exp)
	}
	require.Zero(t, metric(t, reg, "tistream_dispatcher_stream_restarts_total", nil))
	t.Logf("%d rows at %d rows/s, lifted after 2 s: done in %v", total, rate, time.Since(began))
}
