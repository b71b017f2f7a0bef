package sorter

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestThrottleWaitsForTheRoundThatFreesMemory(t *testing.T) {
	var used atomic.Int64
	th := NewThrottle(used.Load, 100)
	ctx := context.Background()

	used.Store(100)
	require.Zero(t, th.Wait(ctx, time.Minute), "at the limit: no wait")
	used.Store(500)
	require.Zero(t, th.Wait(ctx, time.Minute), "over it with no round under way: no wait (nothing would free memory)")

	th.Begin()
	done := make(chan time.Duration, 1)
	go func() { done <- th.Wait(ctx, time.Minute) }()
	select {
	case <-done:
		t.Fatal("returned while over the limit with a round under way")
	case <-time.After(50 * time.Millisecond):
	}
	th.End() // the round ends but memory is still high and another begins
	th.Begin()
	select {
	case <-done:
		t.Fatal("returned while memory is still over the limit and a round runs")
	case <-time.After(50 * time.Millisecond):
	}
	used.Store(50) // the round's commits free memory
	th.End()
	select {
	case d := <-done:
		require.GreaterOrEqual(t, d, 100*time.Millisecond)
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting after the round freed memory")
	}
	require.Equal(t, int64(1), th.Stats().Stalls)

	used.Store(500)
	th.Begin()
	start := time.Now()
	th.Wait(ctx, 30*time.Millisecond)
	require.Less(t, time.Since(start), 5*time.Second, "a wait is bounded")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	th.Wait(cctx, time.Minute) // an ended context returns at once
	th.End()

	var off *Throttle
	off.Begin()
	off.End()
	require.Zero(t, off.Wait(ctx, time.Minute))
	require.Zero(t, NewThrottle(used.Load, 0).Wait(ctx, time.Minute), "limit 0: never waits")
}
