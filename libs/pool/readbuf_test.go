package pool

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/objstore"
)

// Every test of the package runs with recycled read buffers poisoned: a
// row read after the last reference to its buffer was released reads
// poisonByte, and the tests that check rows against the generated ones
// fail.
func TestMain(m *testing.M) {
	poisonReleased = true
	code := m.Run()
	if n := overReleases.Load(); n != 0 && code == 0 {
		fmt.Fprintf(os.Stderr, "pool: %d read buffers were released more often than held\n", n)
		code = 1
	}
	os.Exit(code)
}

// Two pullers share a cache smaller than what they read, so its entries
// are evicted while they pull. They read the first half of the rows in
// step (one loads what the other then finds cached); one keeps its rows
// (never released: opened without ReadOptions.Releases), the other
// releases its rows after every poll (checked
// against the generated rows before) and reads on to the end, so the
// buffers it was given alone are read into again. The kept rows must all
// be whole at the end. Sections are read on their own (publications and
// segments larger than one GET's read-ahead, values that do not compress,
// so rows point into the buffers).
func TestPullerRecyclesReadBuffers(t *testing.T) {
	for _, mode := range []string{"pubs", "segments-only"} {
		t.Run(mode, func(t *testing.T) {
			store := objstore.NewMemory()
			split := key(101, 0)
			require.NoError(t, PublishManifest(ctx, store, twoRangeManifest(1, split)))
			rng := rand.New(rand.NewPCG(7, 7))
			noise := rand.NewChaCha8([32]byte{7})
			all := genRows(rng, 3000, []int64{100, 101}, 100)
			for i := range all {
				all[i].Value = make([]byte, 4096)
				_, _ = noise.Read(all[i].Value)
			}
			below, above := splitRows(all, split)
			g := newGroup(t, store, 1, "g", groupModes[mode])
			w1, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 1, End: split, OpenedAt: 100}, 1)
			require.NoError(t, err)
			w2, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 2, Start: split, OpenedAt: 100}, 1)
			require.NoError(t, err)
			last := all[len(all)-1].CommitTs
			for i := uint64(1); i <= 6; i++ {
				publishAll(t, g, 100+(last-100)*i/6, map[*RangeWriter][]Row{w1: below, w2: above})
			}
			g.WaitSegments()

			cache := NewCache(4 << 20)
			o := ReadOptions{Cache: cache, MaxEntriesPerPoll: 1}
			releasing, err := NewPullerWith(ctx, store, 1, nil, nil, nil, 0, ReadOptions{Cache: cache, MaxEntriesPerPoll: 1, Releases: true})
			require.NoError(t, err)
			keeping, err := NewPullerWith(ctx, store, 1, nil, nil, nil, 0, o)
			require.NoError(t, err)
			var released, kept []Row
			// pollReleasing polls the releasing puller once, checks what it
			// got and releases it.
			pollReleasing := func(polls int) (caughtUp bool) {
				rows, _, caughtUp, err := releasing.Poll(ctx)
				require.NoError(t, err)
				requireSameRows(t, all[len(released):len(released)+len(rows)], rows, "poll %d of the releasing puller", polls)
				released = append(released, rows...)
				releasing.Release()
				return caughtUp
			}
			for polls := 0; len(kept) < len(all)/2 || len(released) < len(all)/2; polls++ {
				require.Less(t, polls, 1000, "the pullers never read half the rows")
				pollReleasing(polls)
				rows, _, _, err := keeping.Poll(ctx)
				require.NoError(t, err)
				kept = append(kept, rows...)
				require.Empty(t, keeping.returned, "a puller whose caller never releases holds nothing it returned")
				require.Empty(t, keeping.outs)
			}
			require.Less(t, len(kept), len(all))
			for polls := 0; !pollReleasing(polls); polls++ {
				require.Less(t, polls, 1000, "the releasing puller never caught up")
			}
			requireSameRows(t, all[:len(kept)], kept, "rows kept across polls, never released")
			require.Len(t, released, len(all))
			st := cache.Stats()
			t.Logf("%s: %d reads into recycled buffers, %d evictions", mode, st.ReadBuffersReused, st.Evictions)
			require.Positive(t, st.ReadBuffersReused, "buffers are read into again")
			rowSlicesReused := cache.Stats().RowSlicesReused
			t.Logf("%s: %d row slices reused", mode, rowSlicesReused)
			require.Positive(t, rowSlicesReused, "the slices rows were decoded and returned in are used again")
			require.Positive(t, st.Evictions)
			keeping.Release()
			require.Zero(t, overReleases.Load())
		})
	}
}

// Every caller of a load gets its own reference: the one that loads, those
// that wait for it, and those that find it cached; the cache's own goes
// when it evicts the object, and the buffer is recycled after the last.
func TestCacheReferencesReadBuffers(t *testing.T) {
	c := NewCache(1 << 20)
	rb := &readBuf{b: make([]byte, 100<<10), home: c}
	rb.refs.Store(1)
	f := &cachedFile{buf: rb}
	const waiters = 4
	joined := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		if fl := c.flights["k"]; fl != nil {
			return fl.waiters
		}
		return -1
	}
	load := func(context.Context) (any, int64, error) {
		for i := 0; joined() < waiters; i++ {
			require.Less(t, i, 5000, "the waiters never joined the load")
			time.Sleep(time.Millisecond)
		}
		return f, 1000, nil
	}
	var wg sync.WaitGroup
	got := make(chan any, waiters+1)
	for range waiters + 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.get(ctx, "k", false, load)
			assert.NoError(t, err)
			got <- v
		}()
	}
	wg.Wait()
	close(got)
	require.EqualValues(t, 1+waiters+1, rb.refs.Load(), "the cache's and one per caller")
	v, err := c.get(ctx, "k", false, load)
	require.NoError(t, err)
	require.Same(t, f, v)
	require.EqualValues(t, 1+waiters+2, rb.refs.Load(), "a hit holds too")
	for v := range got {
		releaseValue(v)
	}
	releaseValue(v)
	require.EqualValues(t, 1, rb.refs.Load())
	require.Zero(t, c.bufs.bytes, "still cached")
	c.mu.Lock()
	c.insert("big", "other", 1<<20) // evicts k
	c.mu.Unlock()
	require.EqualValues(t, 0, rb.refs.Load())
	require.Equal(t, cap(rb.b), c.bufs.bytes, "recycled")
	require.Equal(t, byte(poisonByte), c.bufs.take(1, 1)[:1][0])
}
