package sorter

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/watermark"
)

// stalledGauge reads tistream_sorter_watermark_stalled_seconds of a range
// by cause.
func stalledGauge(t *testing.T, s *Service, rangeID, cause string) float64 {
	return gaugeValue(t, s, "tistream_sorter_watermark_stalled_seconds", map[string]string{"range": rangeID, "cause": cause})
}

// An orphan COMMIT (its prewrite never arrives: a forged or broken input)
// holds the range's watermark below it. That must be loud: after
// --stall-after, with input still arriving, the range is reported stalled
// with the cause, and the report clears when the watermark moves again.
func TestStalledWatermarkIsReported(t *testing.T) {
	e := newEnv(t)
	s, f := e.sorterFeedingRange1(nil)
	f.send(tenant, 1, 1, 1, 1, file1()...)
	f.send(tenant, 1, 2, 1, 1, file2()...)
	require.Equal(t, rows12, e.waitPublished(tenant, 1, 130))

	f.send(tenant, 1, 3, 1, 1, commit(7, 131, 140), resolvedAt(150))
	seq := uint64(4)
	require.Eventually(t, func() bool {
		f.send(tenant, 1, seq, 1, 1, resolvedAt(150+seq)) // input keeps arriving
		seq++
		return stalledGauge(t, s, "1", "pending-commit") > 0
	}, waitFor, pollEvery)
	_, wm := e.published(tenant, 1)
	require.Equal(t, uint64(139), wm, "flushed up to just below the waiting commit")
	require.GreaterOrEqual(t, counterValue(t, s, "tistream_sorter_watermark_stalls_total", "cause", "pending-commit"), float64(1))

	// The prewrite arrives: the row is published and the alarm clears.
	f.send(tenant, 1, seq, 1, 1, prewrite(7, "v7", 131), resolvedAt(200))
	want := append(append([]string(nil), rows12...), "7@140 OP_PUT=v7")
	require.Equal(t, want, e.waitPublished(tenant, 1, 200))
	require.Eventually(t, func() bool { return stalledGauge(t, s, "1", "pending-commit") == 0 }, waitFor, pollEvery)
}

// A stalled range's log line lists what its watermark map set aside, by
// the metric's kinds; nothing set aside reads "none".
func TestIgnoredSummary(t *testing.T) {
	require.Equal(t, "none", ignoredSummary(watermark.Counters{}))
	require.Equal(t, "stale_start=2 bad_start=3 early_end=2 unled=1",
		ignoredSummary(watermark.Counters{Stale: 2, OutsideSpan: 1, BadPredecessor: 2, EarlyEnds: 1, EarlyDropped: 1, Unled: 1}))
}
