package sorter

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/pool"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

func TestPublishedBefore(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	cutoff, ok := publishedBefore(now, time.Hour)
	require.True(t, ok)
	require.Equal(t, time.UnixMilli(1_700_000_000_000-3_600_000), cutoff)
	_, ok = publishedBefore(now, 0)
	require.False(t, ok, "0 keeps forever")
}

// startRetainingSorter starts a sorter with the given retention, compacting
// every interval.
func (e *testEnv) startRetainingSorter(id string, reg *prometheus.Registry, retention, interval time.Duration) *Service {
	e.t.Helper()
	cfg := testConfig(e.t, id)
	cfg.Retention, cfg.RetentionInterval = retention, interval
	s, err := New(cfg, Deps{Log: e.log, Registry: reg, Etcd: e.cli, Pool: e.pool})
	require.NoError(e.t, err)
	require.NoError(e.t, s.Start(context.Background()))
	e.t.Cleanup(func() { stopSorter(e.t, s) })
	return s
}

// readFrom reads a range from ts from to its head: rows and watermark.
func (e *testEnv) readFrom(tenant, id, from uint64) ([]string, uint64, error) {
	ctx := context.Background()
	r, err := pool.OpenRangeReader(ctx, e.pool, tenant, id, from)
	if err != nil {
		return nil, 0, err
	}
	var out []string
	for {
		c, ok, err := r.Next(ctx)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return out, r.Watermark(), nil
		}
		for _, row := range c.Rows {
			out = append(out, string(row.Value))
		}
	}
}

func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	var sum float64
	series(t, reg, name, nil, func(m *dto.Metric) { sum += m.GetCounter().GetValue() })
	return sum
}

// histogramCount is the observations of a histogram's series whose label
// has the value.
func histogramCount(t *testing.T, reg *prometheus.Registry, name, label, value string) uint64 {
	t.Helper()
	var n uint64
	series(t, reg, name, map[string]string{label: value}, func(m *dto.Metric) { n += m.GetHistogram().GetSampleCount() })
	return n
}

// groupOf returns the group that publishes a range (its log head's) and
// that group's floor and head.
func (e *testEnv) groupOf(tenant, id uint64) (group string, floor, head uint64) {
	e.t.Helper()
	ctx := context.Background()
	h, _, err := pool.FindHead(ctx, e.pool, tenant, id)
	require.NoError(e.t, err)
	require.NotEmpty(e.t, h.Group, "range %d is not published in a group", id)
	floor, err = pool.GroupFloor(ctx, e.pool, tenant, h.Group)
	require.NoError(e.t, err)
	head, err = pool.GroupHead(ctx, e.pool, tenant, h.Group)
	require.NoError(e.t, err)
	return h.Group, floor, head
}

// With a retention shorter than the time since the range published, the
// owner deletes all but the newest publication of its group; the range
// keeps publishing, readers from after the head read on, older ones get
// ErrCompacted, and a new owner restores the compacted range.
func TestRetentionCompactsHeldRanges(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	a := e.startRetainingSorter("a", reg, time.Millisecond, 20*time.Millisecond)
	b := e.startSorter("b")
	e.putTask(tenant, 1, "a", 1)
	waitTaken(t, a, tenant, 1, 1)

	fa := openFeeder(t, a.GRPCAddr())
	fa.send(tenant, 1, 1, 1, 1, file1()...)
	fa.send(tenant, 1, 2, 1, 1, file2()...)
	fa.waitDurable(tenant, 1, 1, 2)
	fa.send(tenant, 1, 3, 1, 1, committed(4, "v4", 131, 135), resolvedAt(140))
	fa.waitDurable(tenant, 1, 1, 3)
	ctx := context.Background()
	var head uint64
	require.Eventually(t, func() bool {
		wm, err := pool.PublishedWatermark(ctx, e.pool, tenant, 1)
		require.NoError(t, err)
		head = wm
		_, floor, last := e.groupOf(tenant, 1)
		return head >= 140 && floor == last
	}, waitFor, pollEvery, "the group was not compacted down to its newest publication")
	_, _, err := e.readFrom(tenant, 1, 0)
	require.ErrorIs(t, err, pool.ErrCompacted)
	_, _, err = e.readFrom(tenant, 1, 130)
	require.ErrorIs(t, err, pool.ErrCompacted)
	rows, _, err := e.readFrom(tenant, 1, 131)
	require.NoError(t, err)
	require.Equal(t, []string{"v4"}, rows, "the newest publication's rows stay")
	require.Positive(t, counterSum(t, reg, "tistream_sorter_retention_deleted_objects_total"))
	require.Positive(t, counterSum(t, reg, "tistream_sorter_retention_deleted_bytes_total"))
	require.Positive(t, counterSum(t, reg, "tistream_sorter_retention_compactions_total"))
	require.Positive(t, counterSum(t, reg, "tistream_sorter_publications_total"))
	require.Positive(t, counterSum(t, reg, "tistream_sorter_publication_bytes_total"))
	// Every round that published is timed, each of its steps once (a round
	// still running may have timed its first steps only).
	require.Eventually(t, func() bool {
		stage := histogramCount(t, reg, "tistream_sorter_publish_round_seconds", "step", "stage")
		put := histogramCount(t, reg, "tistream_sorter_publish_round_seconds", "step", "put")
		commit := histogramCount(t, reg, "tistream_sorter_publish_round_seconds", "step", "commit")
		return stage == put && put == commit && float64(put) >= counterSum(t, reg, "tistream_sorter_publications_total")
	}, waitFor, pollEvery, "every round that published has its three steps timed")

	// The range keeps working: a reader from after the head gets what is
	// published next.
	fa.send(tenant, 1, 4, 1, 1, committed(5, "v5", 141, 145), resolvedAt(150))
	require.Eventually(t, func() bool {
		rows, wm, err := e.readFrom(tenant, 1, head+1)
		require.NoError(t, err)
		return wm >= 150 && len(rows) == 1 && rows[0] == "v5"
	}, waitFor, pollEvery)

	// And moves: the new owner restores it from the snapshot.
	fa.waitDurable(tenant, 1, 1, 4)
	e.putTask(tenant, 1, "b", 2)
	waitTaken(t, b, tenant, 1, 2)
	fb := openFeeder(t, b.GRPCAddr())
	fb.send(tenant, 1, 5, 1, 2, []*sorterv1.Event{committed(6, "v6", 151, 155), resolvedAt(160)}...)
	require.Eventually(t, func() bool {
		rows, wm, err := e.readFrom(tenant, 1, 151)
		require.NoError(t, err)
		return wm >= 160 && len(rows) == 1 && rows[0] == "v6"
	}, waitFor, pollEvery)
}

func TestRetentionConfig(t *testing.T) {
	cfg := DefaultConfig()
	require.Equal(t, 24*time.Hour, cfg.Retention)
	require.Equal(t, time.Minute, cfg.RetentionInterval)
	fs := flag.NewFlagSet("sorter", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"--retention-interval=5s"}))
	require.Equal(t, 5*time.Second, cfg.RetentionInterval)
	require.Nil(t, fs.Lookup("retention"), "retention is the fleet's --tenant-default-retention")
	cfg.Retention, cfg.RetentionInterval = -time.Second, 0
	err := cfg.Validate()
	require.ErrorContains(t, err, "--tenant-default-retention must not be negative")
	require.ErrorContains(t, err, "--retention-interval")
}

// Retention counts from when the sorter published the rows, not from their
// commit ts: a range whose rows' TSOs are more than a year old (here: tiny,
// 1970) but were published just now keeps every one of them under a 24 h
// retention. Before, the cutoff was now - 24 h as a TSO and the owner
// deleted everything but the head of the log as soon as it was published.
// Once 24 h have passed since, the rows expire as any others do.
func TestRetentionCountsFromPublication(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	a := e.startRetainingSorter("a", reg, 24*time.Hour, time.Hour) // rounds run by hand below
	e.putTask(tenant, 1, "a", 1)
	waitTaken(t, a, tenant, 1, 1)
	fa := openFeeder(t, a.GRPCAddr())
	fa.send(tenant, 1, 1, 1, 1, file1()...)
	fa.waitDurable(tenant, 1, 1, 1)
	fa.send(tenant, 1, 2, 1, 1, file2()...)
	fa.waitDurable(tenant, 1, 1, 2)
	fa.send(tenant, 1, 3, 1, 1, committed(4, "v4", 131, 135), resolvedAt(140))
	fa.waitDurable(tenant, 1, 1, 3)
	ctx := context.Background()
	require.Eventually(t, func() bool {
		wm, err := pool.PublishedWatermark(ctx, e.pool, tenant, 1)
		require.NoError(t, err)
		return wm >= 140
	}, waitFor, pollEvery)
	all, _, err := e.readFrom(tenant, 1, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"v1", "v2", "v3", "", "v4"}, all)
	_, floor, last := e.groupOf(tenant, 1)
	require.Zero(t, floor)
	require.Greater(t, last, uint64(2), "several publications to expire")

	m := newRetentionMetrics(prometheus.NewRegistry())
	a.compactHeld(ctx, m, time.Now())
	_, floor, _ = e.groupOf(tenant, 1)
	require.Zero(t, floor, "nothing was published 24 h ago")
	got, _, err := e.readFrom(tenant, 1, 0)
	require.NoError(t, err)
	require.Equal(t, all, got)

	// A day later.
	a.compactHeld(ctx, m, time.Now().Add(25*time.Hour))
	_, floor, last = e.groupOf(tenant, 1)
	require.Equal(t, last, floor, "all but the newest publication expired")
	_, _, err = e.readFrom(tenant, 1, 0)
	require.ErrorIs(t, err, pool.ErrCompacted)
}
