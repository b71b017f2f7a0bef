package sorter

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	rangesorter "github.com/tistream/tistream/libs/sorter"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
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
	req := &sorterv1.IngestRequest{TenantId: 1, StoreId: 1, Seq: 1}

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
