package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 30, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     now,
		"now":                  now,
		"-2h":                  now.Add(-2 * time.Hour),
		"-1h30m":               now.Add(-90 * time.Minute),
		"+15m":                 now.Add(15 * time.Minute),
		"2026-12-04T08:00:00Z": time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC),
		"2026-12-03":           time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC),
	} {
		got, err := parseWhen(in, now)
		require.NoError(t, err, in)
		require.True(t, want.Equal(got), "%q: %s != %s", in, got, want)
	}
	for _, bad := range []string{"-2x", "yesterday", "2026-13-01", "12:00"} {
		_, err := parseWhen(bad, now)
		require.Error(t, err, bad)
	}
}

func TestPrintUsage(t *testing.T) {
	var b strings.Builder
	h := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC).UnixMilli()
	printUsage(&b, &metav1.GetUsageResponse{
		Hours: []*metav1.UsageHour{
			{HourUnixMs: h, Final: true, Counts: &metav1.UsageCounts{IngestedRows: 5, PullMillis: 1500, StoredBytes: map[string]uint64{"pool": 9}}},
			{HourUnixMs: h + 3600_000, Counts: &metav1.UsageCounts{IngestedRows: 2}},
		},
		Total: &metav1.UsageCounts{IngestedRows: 7, PullMillis: 1500, StoredBytes: map[string]uint64{"pool": 9}},
	})
	out := b.String()
	require.Contains(t, out, "STORED POOL")
	require.Contains(t, out, "2026-12-04 09:00")
	require.Contains(t, out, "2026-12-04 10:00 *", "a provisional hour is marked")
	require.Contains(t, out, "TOTAL")
	require.Contains(t, out, "1.5")
}
