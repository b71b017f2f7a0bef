package workpool_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/workpool"
)

func TestNewRejects(t *testing.T) {
	_, err := workpool.New(0, 1)
	require.Error(t, err)
	_, err = workpool.New(1, 0)
	require.Error(t, err)
}

// Every key's tasks run in submission order and never two at once, while
// different keys do run at once, never more than the workers.
func TestOrderPerKeyAndBoundedParallelism(t *testing.T) {
	const workers, keys, perKey = 3, 20, 200
	p, err := workpool.New(workers, 64)
	require.NoError(t, err)
	var mu sync.Mutex
	got := make([][]int, keys)
	running := make([]atomic.Int32, keys)
	var now, peak atomic.Int32
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			require.NoError(t, p.Submit(uint64(k), func() error {
				if running[k].Add(1) != 1 {
					return fmt.Errorf("two tasks of key %d at once", k)
				}
				n := now.Add(1)
				for {
					old := peak.Load()
					if n <= old || peak.CompareAndSwap(old, n) {
						break
					}
				}
				if i%50 == 0 {
					time.Sleep(time.Millisecond) // let the others overlap
				}
				mu.Lock()
				got[k] = append(got[k], i)
				mu.Unlock()
				now.Add(-1)
				running[k].Add(-1)
				return nil
			}))
		}
	}
	require.NoError(t, p.Close())
	for k := range got {
		require.Len(t, got[k], perKey)
		for i, v := range got[k] {
			require.Equal(t, i, v, "key %d out of order", k)
		}
	}
	require.LessOrEqual(t, peak.Load(), int32(workers))
	require.Greater(t, peak.Load(), int32(1), "keys ran in parallel")
}

// Submit blocks while maxQueued tasks are unfinished.
func TestSubmitBlocksWhenFull(t *testing.T) {
	p, err := workpool.New(1, 2)
	require.NoError(t, err)
	release := make(chan struct{})
	block := func() error { <-release; return nil }
	require.NoError(t, p.Submit(1, block))
	require.NoError(t, p.Submit(2, block))
	submitted := make(chan error)
	go func() { submitted <- p.Submit(3, func() error { return nil }) }()
	select {
	case <-submitted:
		t.Fatal("a third task was queued past maxQueued")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-submitted)
	require.NoError(t, p.Close())
	require.ErrorIs(t, p.Submit(1, block), workpool.ErrClosed)
}

// The first error stops the pool: later tasks are skipped and every caller
// sees it.
func TestErrorStops(t *testing.T) {
	p, err := workpool.New(2, 100)
	require.NoError(t, err)
	boom := errors.New("boom")
	var ran atomic.Int32
	select {
	case <-p.Failed():
		t.Fatal("failed before any task")
	default:
	}
	require.NoError(t, p.Submit(1, func() error { return boom }))
	<-p.Failed()
	require.ErrorIs(t, p.Wait(), boom)
	err = p.Submit(1, func() error { ran.Add(1); return nil })
	require.ErrorIs(t, err, boom)
	require.ErrorIs(t, p.Close(), boom)
	require.Zero(t, ran.Load())
}

// Tasks queued behind a failing one are skipped, not run.
func TestErrorSkipsQueued(t *testing.T) {
	p, err := workpool.New(1, 100)
	require.NoError(t, err)
	start := make(chan struct{})
	var ran atomic.Int32
	require.NoError(t, p.Submit(1, func() error { <-start; return errors.New("first") }))
	for i := 0; i < 10; i++ {
		require.NoError(t, p.Submit(uint64(i%3), func() error { ran.Add(1); return nil }))
	}
	close(start)
	require.EqualError(t, p.Close(), "first")
	require.Zero(t, ran.Load())
}

// Wait can be called between rounds; the pool keeps working.
func TestWaitRounds(t *testing.T) {
	p, err := workpool.New(2, 4)
	require.NoError(t, err)
	var n atomic.Int64
	for round := 0; round < 5; round++ {
		for k := 0; k < 10; k++ {
			require.NoError(t, p.Submit(uint64(k), func() error { n.Add(1); return nil }))
		}
		require.NoError(t, p.Wait())
		require.Equal(t, int64(10*(round+1)), n.Load())
	}
	require.NoError(t, p.Close())
}
