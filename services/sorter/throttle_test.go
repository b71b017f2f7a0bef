package sorter

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/route/routepb"
	"github.com/tistream/tistream/libs/sortbuf"
	rangesorter "github.com/tistream/tistream/libs/sorter"
)

// An Ingest request waits while the rows in memory are over
// --write-stall-bytes and a publish round is under way, and goes on when
// the round's commits freed them; the wait is counted.
func TestIngestWaitsForThePublishRound(t *testing.T) {
	var used atomic.Int64
	s := &Service{m: newMetrics(prometheus.NewRegistry()), rootCtx: context.Background(),
		feeders:  map[tenantStore]map[*ingestStream]struct{}{},
		throttle: rangesorter.NewThrottle(used.Load, 64<<20)}
	is := &ingestStream{durable: map[rangeStore]uint64{}, kick: make(chan struct{}, 1)}
	req := &routepb.Received{TenantID: 1, StoreID: 1, Seq: 1}

	used.Store(100 << 20)
	s.ingest(is, req) // no round under way: nothing would free memory, no wait
	require.Zero(t, testutil.ToFloat64(s.m.writeStalls), "counted only when it waited")

	s.throttle.Begin()
	done := make(chan struct{})
	go func() {
		s.ingest(is, req)
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("the request went on while over the limit with a round under way")
	case <-time.After(100 * time.Millisecond):
	}
	used.Store(10 << 20)
	s.throttle.End()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the request still waits after the round freed memory")
	}
	require.Equal(t, 1.0, testutil.ToFloat64(s.m.writeStalls))
	require.GreaterOrEqual(t, testutil.ToFloat64(s.m.writeStalled), 0.1)
}

// The memory gauges show the rows waiting in memory against the budget,
// and the arena they are held in.
func TestMemoryGauges(t *testing.T) {
	e := newEnv(t)
	s, f := e.sorterFeedingRange1(func(c *Config) { c.BufferMemory = 64 << 20 })
	memory := func(state string) float64 {
		return gaugeValue(t, s, "tistream_sorter_buffer_memory_bytes", map[string]string{"state": state})
	}
	require.Equal(t, float64(64<<20), memory("budget"))
	f.send(tenant, 1, 1, 1, 1, file1()...)
	f.send(tenant, 1, 2, 1, 1, append(file2(), committed(5, "v5", 140, 150))...)
	require.Equal(t, rows12, e.waitPublished(tenant, 1, 130))
	require.Eventually(t, func() bool { return memory("used") > 0 }, waitFor, pollEvery, "row 5 waits above the watermark")
	f.send(tenant, 1, 3, 1, 1, resolvedAt(160))
	e.waitPublished(tenant, 1, 160)
	require.Eventually(t, func() bool { return memory("used") == 0 }, waitFor, pollEvery, "published rows leave memory")
	fams, err := s.registry.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, fam := range fams {
		if fam.GetName() == "tistream_sorter_arena_bytes" {
			for _, m := range fam.Metric {
				got[m.Label[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	st := sortbuf.ArenaStats()
	require.Equal(t, map[string]float64{"in_use": float64(st.InUse), "resident": float64(st.Resident), "mapped": float64(st.Mapped)}, got)
}
