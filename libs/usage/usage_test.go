package usage

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// clock is a settable test clock.
type clock struct{ t atomic.Pointer[time.Time] }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)  { c.t.Store(&t) }
func (c *clock) now() time.Time   { return *c.t.Load() }
func (c *clock) add(d time.Duration) {
	c.set(c.now().Add(d))
}

// stores runs a test against the in-memory store and the local disk one.
func stores(t *testing.T, f func(t *testing.T, s objstore.Store)) {
	t.Run("memory", func(t *testing.T) { f(t, objstore.NewMemory()) })
	t.Run("localfs", func(t *testing.T) {
		s, err := objstore.NewLocalFS(t.TempDir())
		require.NoError(t, err)
		f(t, s)
	})
}

// flaky fails chosen requests: a put that lands but reports an error (the
// reply was lost), or a delete that fails.
type flaky struct {
	objstore.Store
	lostPutReplies atomic.Int32 // the next n puts land and then fail
	failPuts       atomic.Int32 // the next n puts fail without landing
	failDeletes    atomic.Int32
}

var errInjected = errors.New("injected failure")

func (f *flaky) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if f.failPuts.Add(-1) >= 0 {
		return errInjected
	}
	err := f.Store.PutIfAbsent(ctx, key, data)
	if err == nil && f.lostPutReplies.Add(-1) >= 0 {
		return errInjected
	}
	return err
}

func (f *flaky) Delete(ctx context.Context, key string) error {
	if f.failDeletes.Add(-1) >= 0 {
		return errInjected
	}
	return f.Store.Delete(ctx, key)
}

var hour0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func TestLabelGuardBoundsTenants(t *testing.T) {
	g := NewLabelGuard(2)
	require.Equal(t, "1", g.LabelOf(1))
	require.Equal(t, "2", g.LabelOf(2))
	require.Equal(t, OtherTenant, g.LabelOf(3))
	require.Equal(t, "1", g.LabelOf(1), "an admitted tenant keeps its label")
	require.Equal(t, "", g.Label(""), "no tenant stays no tenant")
	require.Equal(t, "9", NewLabelGuard(-1).Label("9"))
}

func TestMeterCountsPerTenantAndHour(t *testing.T) {
	c := newClock(hour0.Add(59 * time.Minute))
	reg := prometheus.NewRegistry()
	m := NewMeter(reg, MeterOptions{Now: c.now, MaxTenantLabels: 1})
	m.Request(string(layout.PurposePoolData), "7", "put_if_absent")
	m.Request(string(layout.PurposePoolData), "7", "get_range")
	m.Request(string(layout.PurposeStoreFile), "8", "list")
	m.Request(string(layout.PurposeStoreFile), "8", "delete")
	m.Request(string(layout.PurposePoolUsage), "7", "put_if_absent") // the records' own: not the tenant's
	m.Request(string(layout.PurposeOther), "", "get")                // no tenant
	m.Served(7, 10, 1000)
	done := m.PullStarted(7)
	c.add(2 * time.Minute) // the pull spans the hour boundary
	done()
	done() // idempotent

	got := m.take()
	h0, h1 := hour0.UnixMilli(), hour0.Add(time.Hour).UnixMilli()
	require.True(t, proto.Equal(&metav1.UsageCounts{PutRequests: 1, GetRequests: 1, ServedRows: 10, ServedBytes: 1000, PullMillis: 60_000}, got[slot{7, h0}]), "%v", got[slot{7, h0}])
	require.True(t, proto.Equal(&metav1.UsageCounts{PullMillis: 60_000}, got[slot{7, h1}]), "%v", got[slot{7, h1}])
	require.True(t, proto.Equal(&metav1.UsageCounts{ListRequests: 1, DeleteRequests: 1}, got[slot{8, h0}]))
	require.Len(t, got, 3)
	require.Empty(t, m.take(), "take empties the meter")

	// The guard: tenant 8 came second with a bound of 1.
	require.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("7", RequestPut)))
	require.Equal(t, 2.0, testutil.ToFloat64(m.requests.WithLabelValues(OtherTenant, RequestList))+testutil.ToFloat64(m.requests.WithLabelValues(OtherTenant, RequestDelete)))
	require.Equal(t, 120.0, testutil.ToFloat64(m.pullSeconds.WithLabelValues("7")))

	var nilMeter *Meter // a service without metering
	nilMeter.Served(1, 1, 1)
	nilMeter.Request("pool_data", "1", "get")
	nilMeter.PullStarted(1)()
}

// An open pull's time is accrued at every flush, to the hour it passes in.
func TestOpenPullAccruesAtEveryTake(t *testing.T) {
	c := newClock(hour0)
	m := NewMeter(prometheus.NewRegistry(), MeterOptions{Now: c.now})
	done := m.PullStarted(3)
	var total uint64
	for range 5 {
		c.add(30 * time.Minute)
		for k, v := range m.take() {
			require.Equal(t, uint64(3), k.tenant)
			total += v.PullMillis
		}
	}
	done()
	for _, v := range m.take() {
		total += v.PullMillis
	}
	require.Equal(t, uint64(150*60_000), total)
}

// A flush whose reply is lost is retried under the same key: the record
// lands once; a flush that fails outright keeps its counts for the next.
func TestFlushRetriesExactlyOnce(t *testing.T) {
	stores(t, func(t *testing.T, base objstore.Store) {
		ctx := context.Background()
		c := newClock(hour0.Add(time.Minute))
		s := &flaky{Store: base}
		m := NewMeter(prometheus.NewRegistry(), MeterOptions{Now: c.now})
		f := NewFlusher(m, s, "api-server/a:1", nil)

		m.Served(5, 3, 300)
		s.lostPutReplies.Store(1)
		require.ErrorIs(t, f.Flush(ctx), errInjected)
		m.Served(5, 4, 400) // counted meanwhile: the next record
		s.failPuts.Store(1)
		require.ErrorIs(t, f.Flush(ctx), errInjected)
		require.NoError(t, f.Flush(ctx))
		require.NoError(t, f.Flush(ctx)) // nothing new: nothing written

		recs, keys, bad, err := readAll(ctx, base, layout.UsagePrefix(5), nil)
		require.NoError(t, err)
		require.Empty(t, bad)
		require.Len(t, recs, 2, "%v", keys)
		require.Contains(t, keys[0], "/api-server_a_1/", "the instance is a safe key segment")
		sum := &metav1.UsageCounts{}
		for _, r := range recs {
			AddCounts(sum, r.Counts)
		}
		require.Equal(t, uint64(7), sum.ServedRows)
		require.Equal(t, uint64(700), sum.ServedBytes)
	})
}

// rawRec and sample build records for the rollup tests.
func rawRec(tenant uint64, hour time.Time, instance string, seq uint64, c *metav1.UsageCounts) (string, *metav1.UsageRecord) {
	h := Hour(hour)
	return layout.UsageRawKey(tenant, h, instance, seq), &metav1.UsageRecord{Kind: metav1.UsageRecordKind_USAGE_RECORD_KIND_RAW,
		TenantId: tenant, HourUnixMs: h, Instance: instance, Seq: seq, Counts: c}
}

// history writes three hours of records for tenant 1 and returns what each
// hour must add up to, computed here independently of Fold.
func history(ctx context.Context, t *testing.T, s objstore.Store) map[int64]*metav1.UsageCounts {
	want := map[int64]*metav1.UsageCounts{}
	cum := Totals{}
	for i := range 3 {
		h := hour0.Add(time.Duration(i) * time.Hour)
		w := &metav1.UsageCounts{StoredBytes: map[string]uint64{}}
		for j := range 4 {
			n := uint64(10*i + j + 1)
			key, r := rawRec(1, h, fmt.Sprintf("p%d", j%2), uint64(10*i+j), &metav1.UsageCounts{
				PutRequests: n, GetRequests: 2 * n, ListRequests: 1, DeleteRequests: n % 2, ServedRows: 100 * n, ServedBytes: 1000 * n, PullMillis: 5 * n})
			require.NoError(t, putOnce(ctx, s, key, r))
			w.PutRequests += n
			w.GetRequests += 2 * n
			w.ListRequests++
			w.DeleteRequests += n % 2
			w.ServedRows += 100 * n
			w.ServedBytes += 1000 * n
			w.PullMillis += 5 * n
		}
		for k := range 3 {
			cum.Rows += uint64(7 * (i + 1))
			cum.Bytes += uint64(700 * (i + 1))
			w.IngestedRows += uint64(7 * (i + 1))
			w.IngestedBytes += uint64(700 * (i + 1))
			pool := uint64(1000*i + 100*k)
			require.NoError(t, WriteSample(ctx, s, 1, h.Add(time.Duration(10+k)*time.Minute), map[string]uint64{"pool": pool, "buffer": 50}, cum))
			w.StoredBytes["pool"] = max(w.StoredBytes["pool"], pool)
			w.StoredBytes["buffer"] = 50
		}
		want[h.UnixMilli()] = w
	}
	return want
}

func requireHours(t *testing.T, want map[int64]*metav1.UsageCounts, resp *metav1.GetUsageResponse, final bool) {
	t.Helper()
	require.Len(t, resp.Hours, len(want))
	total := &metav1.UsageCounts{}
	for _, h := range resp.Hours {
		require.True(t, proto.Equal(want[h.HourUnixMs], h.Counts), "hour %d: want %v, got %v", h.HourUnixMs, want[h.HourUnixMs], h.Counts)
		require.Equal(t, final, h.Final)
		AddCounts(total, want[h.HourUnixMs])
	}
	require.True(t, proto.Equal(total, resp.Total), "total: want %v, got %v", total, resp.Total)
}

// The rollup folds each closed hour once; a rollup that stops midway (a
// leader killed) and runs again, as often as it likes, ends with the same
// records; queries before and after agree.
func TestRollupCrashMidwayRunsTwiceSameTotals(t *testing.T) {
	stores(t, func(t *testing.T, base objstore.Store) {
		ctx := context.Background()
		s := &flaky{Store: base}
		want := history(ctx, t, s)
		end := hour0.Add(3 * time.Hour).UnixMilli()
		before, err := Query(ctx, s, 1, hour0.UnixMilli(), end, nil, hour0.Add(5*time.Hour))
		require.NoError(t, err)
		requireHours(t, want, before, false)

		// Hour 2 ended 30 minutes ago: within a 40-minute grace it waits.
		now := hour0.Add(3*time.Hour + 30*time.Minute)
		s.failDeletes.Store(1) // the first rollup dies after writing hour 0's record
		_, err = Rollup(ctx, s, 1, now, 40*time.Minute)
		require.ErrorIs(t, err, errInjected)
		mid, err := Query(ctx, s, 1, hour0.UnixMilli(), end, nil, now)
		require.NoError(t, err)
		require.True(t, mid.Hours[0].Final)
		require.True(t, proto.Equal(before.Total, mid.Total), "mid-rollup: %v != %v", mid.Total, before.Total)

		for range 2 {
			done, err := Rollup(ctx, s, 1, now, 40*time.Minute)
			require.NoError(t, err)
			require.LessOrEqual(t, len(done), 2)
		}
		_, err = Rollup(ctx, s, 1, hour0.Add(5*time.Hour), 40*time.Minute)
		require.NoError(t, err)
		after, err := Query(ctx, s, 1, hour0.UnixMilli(), end, nil, hour0.Add(5*time.Hour))
		require.NoError(t, err)
		requireHours(t, want, after, true)

		objs, err := objstore.ListAll(ctx, base, layout.UsagePrefix(1), "")
		require.NoError(t, err)
		require.Len(t, objs, 3, "only the three rollups remain: %v", objs)
	})
}

// The open hour counts the live ingest totals, from where the last rollup
// ended; a query of one hour answers that hour only.
func TestQueryLiveTotalsAndWindow(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMemory()
	want := history(ctx, t, s)
	_, err := Rollup(ctx, s, 1, hour0.Add(4*time.Hour), 10*time.Minute)
	require.NoError(t, err)
	ended := Totals{}
	for _, w := range want {
		ended.Rows += w.IngestedRows
		ended.Bytes += w.IngestedBytes
	}
	now := hour0.Add(4*time.Hour + 5*time.Minute)
	live := Totals{ended.Rows + 11, ended.Bytes + 1100}
	resp, err := Query(ctx, s, 1, hour0.Add(4*time.Hour).UnixMilli(), 0, &live, now)
	require.NoError(t, err)
	require.Len(t, resp.Hours, 1)
	require.False(t, resp.Hours[0].Final)
	require.Equal(t, uint64(11), resp.Hours[0].Counts.IngestedRows)
	require.Equal(t, uint64(1100), resp.Hours[0].Counts.IngestedBytes)

	one, err := Query(ctx, s, 1, hour0.Add(time.Hour).UnixMilli(), hour0.Add(time.Hour+time.Minute).UnixMilli(), &live, now)
	require.NoError(t, err)
	requireHours(t, map[int64]*metav1.UsageCounts{hour0.Add(time.Hour).UnixMilli(): want[hour0.Add(time.Hour).UnixMilli()]}, one, true)

	_, err = Query(ctx, s, 1, 10, 5, nil, now)
	require.Error(t, err)
}

func TestDecodeRefusesBadRecords(t *testing.T) {
	good := Encode(&metav1.UsageRecord{Kind: metav1.UsageRecordKind_USAGE_RECORD_KIND_RAW, HourUnixMs: hour0.UnixMilli()})
	_, err := Decode("k", good)
	require.NoError(t, err)
	for name, b := range map[string][]byte{
		"garbage":     {0xff, 0xff, 0xff},
		"no version":  mustMarshal(&metav1.UsageRecord{Kind: metav1.UsageRecordKind_USAGE_RECORD_KIND_RAW}),
		"new version": mustMarshal(&metav1.UsageRecord{FormatVersion: FormatVersion + 1, Kind: metav1.UsageRecordKind_USAGE_RECORD_KIND_RAW}),
		"no kind":     mustMarshal(&metav1.UsageRecord{FormatVersion: FormatVersion}),
		"odd hour":    mustMarshal(&metav1.UsageRecord{FormatVersion: FormatVersion, Kind: metav1.UsageRecordKind_USAGE_RECORD_KIND_RAW, HourUnixMs: 5}),
	} {
		_, err := Decode("k", b)
		require.ErrorIs(t, err, ErrBadRecord, name)
	}
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// A damaged object is skipped, not fatal, and never panics the reader.
func FuzzDecode(f *testing.F) {
	f.Add(Encode(&metav1.UsageRecord{Kind: metav1.UsageRecordKind_USAGE_RECORD_KIND_SAMPLE, HourUnixMs: hour0.UnixMilli(),
		Counts: &metav1.UsageCounts{StoredBytes: map[string]uint64{"pool": 1}}}))
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode("k", b)
		if err == nil {
			require.NotNil(t, r.Counts)
			require.Zero(t, r.HourUnixMs%HourMs)
		}
	})
}
