package usage

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
)

// TestArchiveQueryPrune: two incarnations of one id archived at different
// times answer together (summed where they share an hour), an incomplete
// archive is not read, and pruning deletes only the expired incarnation.
func TestArchiveQueryPrune(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMemory()
	hour0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	served := func(at time.Time, rows int) {
		m := NewMeter(prometheus.NewRegistry(), MeterOptions{Now: func() time.Time { return at }})
		m.Served(5, rows, rows)
		require.NoError(t, NewFlusher(m, s, at.String(), nil).Flush(ctx)) // an incarnation per flush
	}
	served(hour0, 3)
	served(hour0.Add(time.Hour), 4)
	_, err := FinalRollup(ctx, s, 5, 0, hour0.Add(time.Hour+time.Minute))
	require.NoError(t, err)
	dereg1 := hour0.Add(time.Hour + 30*time.Minute).UnixMilli()
	n, err := Archive(ctx, s, 5, dereg1)
	require.NoError(t, err)
	require.Equal(t, 2, n, "every hour, the current one included")
	n, err = Archive(ctx, s, 5, dereg1)
	require.NoError(t, err, "archiving again is a no-op")
	require.Equal(t, 2, n)
	// The folder is deleted; a second incarnation registers in the same hour.
	objs, err := objstore.ListAll(ctx, s, layout.UsagePrefix(5), "")
	require.NoError(t, err)
	for _, o := range objs {
		require.NoError(t, s.Delete(ctx, o.Key))
	}
	reg2 := dereg1 + 1000
	served(time.UnixMilli(dereg1-500), 100) // the old incarnation's late flush: before reg2
	served(time.UnixMilli(reg2+1000), 6)
	resp, err := QuerySince(ctx, s, 5, reg2, 0, 0, nil, hour0.Add(2*time.Hour))
	require.NoError(t, err)
	require.Equal(t, uint64(6), resp.Total.ServedRows, "the late record of the old incarnation is not counted")
	_, err = FinalRollup(ctx, s, 5, reg2, hour0.Add(3*time.Hour))
	require.NoError(t, err)
	dereg2 := hour0.Add(3 * time.Hour).UnixMilli()
	// An archive cut short (no marker) is not read.
	require.NoError(t, s.PutIfAbsent(ctx, layout.UsageArchiveHourlyKey(5, dereg2, hour0.UnixMilli()), []byte("partial")))
	resp, found, err := QueryArchive(ctx, s, 5, 0, 0)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, uint64(7), resp.Total.ServedRows)
	_, err = Archive(ctx, s, 5, dereg2)
	require.NoError(t, err)
	resp, _, err = QueryArchive(ctx, s, 5, 0, 0)
	require.Error(t, err, "a damaged archived record is an error, not a panic or a silent zero")
	require.NoError(t, s.Delete(ctx, layout.UsageArchiveHourlyKey(5, dereg2, hour0.UnixMilli())))
	resp, _, err = QueryArchive(ctx, s, 5, 0, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(13), resp.Total.ServedRows)
	require.Len(t, resp.Hours, 2)
	require.Equal(t, uint64(4+6), resp.Hours[1].Counts.ServedRows, "the shared hour is the sum of both incarnations")
	resp, _, err = QueryArchive(ctx, s, 5, hour0.Add(time.Hour).UnixMilli(), 0)
	require.NoError(t, err)
	require.Equal(t, uint64(10), resp.Total.ServedRows)
	_, found, err = QueryArchive(ctx, s, 6, 0, 0)
	require.NoError(t, err)
	require.False(t, found)

	// Prune: the first incarnation is past a retention the second is not.
	now := time.UnixMilli(dereg2).Add(10 * 24 * time.Hour)
	deleted, err := PruneArchive(ctx, s, now, 10*24*time.Hour+time.Hour)
	require.NoError(t, err)
	require.Equal(t, 3, deleted, "two hours and the marker")
	resp, _, err = QueryArchive(ctx, s, 5, 0, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(6), resp.Total.ServedRows)
	deleted, err = PruneArchive(ctx, s, now, 0)
	require.NoError(t, err)
	require.Zero(t, deleted, "retention 0 keeps forever")
}

func TestParseUsageArchiveKey(t *testing.T) {
	k := layout.UsageArchiveHourlyKey(7, 1234, 3600000)
	tenant, d, err := layout.ParseUsageArchiveKey(k)
	require.NoError(t, err)
	require.Equal(t, uint64(7), tenant)
	require.Equal(t, int64(1234), d)
	for _, bad := range []string{"x", layout.UsageArchiveRoot + "tenant-0/" + layout.Pad(1) + "/done",
		layout.UsageArchiveRoot + "tenant-a/", layout.UsageArchiveRoot + "tenant-7/12/done"} {
		_, _, err := layout.ParseUsageArchiveKey(bad)
		require.Error(t, err, bad)
	}
	p, _, has := layout.Classify(k)
	require.Equal(t, layout.PurposePoolOther, p)
	require.False(t, has, "the archive names no tenant to metering")
}
