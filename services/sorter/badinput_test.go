package sorter

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// series calls fn with every series of the metric name in g whose labels
// include want.
func series(t *testing.T, g prometheus.Gatherer, name string, want map[string]string, fn func(*dto.Metric)) {
	t.Helper()
	fams, err := g.Gather()
	require.NoError(t, err)
	for _, fam := range fams {
		if fam.GetName() != name {
			continue
		}
	next:
		for _, m := range fam.Metric {
			l := map[string]string{}
			for _, p := range m.Label {
				l[p.GetName()] = p.GetValue()
			}
			for k, v := range want {
				if l[k] != v {
					continue next
				}
			}
			fn(m)
		}
	}
}

// gaugeValue sums the gauge name over the series whose labels include want.
func gaugeValue(t *testing.T, s *Service, name string, want map[string]string) float64 {
	t.Helper()
	sum := 0.0
	series(t, s.registry, name, want, func(m *dto.Metric) { sum += m.GetGauge().GetValue() })
	return sum
}

// blockedGauge reads tistream_sorter_stream_blocked for (range, store).
func blockedGauge(t *testing.T, s *Service, rangeID, store string) float64 {
	return gaugeValue(t, s, "tistream_sorter_stream_blocked", map[string]string{"range": rangeID, "store": store, "reason": "late_commit"})
}

func counterValue(t *testing.T, s *Service, name, label, value string) float64 {
	t.Helper()
	sum := 0.0
	series(t, s.registry, name, map[string]string{label: value}, func(m *dto.Metric) { sum += m.GetCounter().GetValue() })
	return sum
}

// Bad input case 9 (docs/bad-input.md): a commit at or below the range's
// published watermark is never published out of order. The batch carrying
// it is refused (NotOwner), as is every later file of that store until the
// file is fixed, with an error log, a counter and the blocked gauge; the
// range is unchanged and other stores keep feeding it.
func TestBadInputCommitBelowPublishedWatermark(t *testing.T) {
	e := newEnv(t)
	s, f := e.sorterFeedingRange1(nil)
	f.send(tenant, 1, 1, 1, 1, file1()...)
	f.send(tenant, 1, 2, 1, 1, file2()...)
	require.Equal(t, rows12, e.waitPublished(tenant, 1, 130))

	// Store 2 delivers a commit at 125 after the range published 130.
	f.send(tenant, 2, 1, 1, 1, committed(4, "v4", 100, 125))
	f.waitNotOwner(tenant, 1, 2, 1)
	require.Eventually(t, func() bool { return blockedGauge(t, s, "1", "2") == 1 }, waitFor, pollEvery)
	require.GreaterOrEqual(t, counterValue(t, s, "tistream_sorter_batches_total", "result", "late_commit"), float64(1))
	// Its later files are refused too (applying them would skip file 1).
	f.send(tenant, 2, 2, 1, 1, committed(6, "v6", 131, 133))
	f.waitNotOwner(tenant, 1, 2, 2)
	// A retry of the same file is refused again.
	n := len(f.refusals())
	f.send(tenant, 2, 1, 1, 1, committed(4, "v4", 100, 125))
	require.Eventually(t, func() bool { return len(f.refusals()) > n }, waitFor, pollEvery)
	require.Equal(t, float64(1), blockedGauge(t, s, "1", "2"))

	// Store 1 keeps going; nothing of store 2 was published.
	f.send(tenant, 1, 3, 1, 1, committed(5, "v5", 131, 135), resolvedAt(140))
	want := append(append([]string(nil), rows12...), "5@135 OP_PUT=v5")
	require.Equal(t, want, e.waitPublished(tenant, 1, 140))
	time.Sleep(100 * time.Millisecond)
	rows, wm := e.published(tenant, 1)
	require.Equal(t, want, rows)
	require.Equal(t, uint64(140), wm)

	// The file is replaced by a good one: accepted, the alert clears.
	f.send(tenant, 2, 1, 1, 1, committed(4, "v4", 141, 145))
	f.send(tenant, 1, 4, 1, 1, resolvedAt(150))
	want = append(want, "4@145 OP_PUT=v4")
	require.Equal(t, want, e.waitPublished(tenant, 1, 150))
	f.waitDurable(tenant, 1, 2, 1)
	require.Eventually(t, func() bool { return blockedGauge(t, s, "1", "2") == 0 }, waitFor, pollEvery)
}

// Bad input cases 7 and 8 at the sorter, where streams of several stores
// meet: a resolved ts of an incarnation from a store that does not lead it,
// a resolved ts going backwards (a re-delivered older record) and a START
// of an incarnation older than the one owning its keys are ignored by the
// watermark map (the watermark never goes backwards and nothing is
// published early) and counted in tistream_sorter_watermark_ignored_total.
// Within one store stream the dispatcher refuses regressions
// (services/dispatcher).
func TestBadInputRegressionsIgnoredAndCounted(t *testing.T) {
	e := newEnv(t)
	s, f := e.sorterFeedingRange1(nil)
	f.send(tenant, 1, 1, 1, 1, file1()...)
	f.send(tenant, 1, 2, 1, 1, file2()...)
	require.Equal(t, rows12, e.waitPublished(tenant, 1, 130))

	older := &sorterv1.Event{Kind: sorterv1.Event_KIND_REGION_START, Inc: &sorterv1.Incarnation{RegionId: 7, Version: 0, Term: 1},
		StartKey: regionStart().StartKey, EndKey: regionStart().EndKey}
	f.send(tenant, 2, 1, 1, 1, resolvedAt(500), older)
	f.waitDurable(tenant, 1, 2, 1)
	f.send(tenant, 1, 3, 1, 1, resolvedAt(120))
	f.waitDurable(tenant, 1, 1, 3)
	require.Eventually(t, func() bool {
		return counterValue(t, s, "tistream_sorter_watermark_ignored_total", "kind", "regressed") == 1 &&
			counterValue(t, s, "tistream_sorter_watermark_ignored_total", "kind", "stale_start") == 1 &&
			counterValue(t, s, "tistream_sorter_watermark_ignored_total", "kind", "foreign_resolved") == 1
	}, waitFor, pollEvery)
	rows, wm := e.published(tenant, 1)
	require.Equal(t, rows12, rows)
	require.Equal(t, uint64(130), wm)
	require.Empty(t, f.refusals())
}
