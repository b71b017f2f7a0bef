package sortbuf

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// An emptied range's index array goes to the store's cache and the next
// range that needs as many rows takes it instead of allocating; the cache
// holds it within the budget and it never carries rows into its next use.
func TestIndexArraysAreRecycled(t *testing.T) {
	s := newMemoryFirst(nil, 1<<30)
	fill := func(uid uint64, n int, at uint64) {
		b := s.Buffer(uid)
		for i := 0; i < n; i++ {
			require.NoError(t, b.Add(Row{CommitTs: at + uint64(i), StartTs: 1, Op: OpPut, Key: []byte(fmt.Sprint(i)), Value: []byte("v")}))
		}
	}
	fill(1, 3000, 10)
	require.NoError(t, s.Buffer(1).DeleteUpTo(3009))
	require.Len(t, s.chunks.indexes, 1, "the emptied index is kept")
	kept := cap(s.chunks.indexes[0])
	require.Positive(t, s.chunks.cached.Load())

	require.NoError(t, s.Buffer(1).Add()) // an empty batch between cycles keeps the hint
	fill(1, 2000, 1<<40)                  // the next cycle of the range takes it back (hint 3000)
	require.Empty(t, s.chunks.indexes)
	b := s.Buffer(1).(*mfBuffer)
	require.Equal(t, kept, cap(b.mem.rows))
	rows := 0
	require.NoError(t, b.Scan(math.MaxUint64, func(r Row) error {
		require.GreaterOrEqual(t, r.CommitTs, uint64(1<<40), "a row of the array's previous use")
		rows++
		return nil
	}))
	require.Equal(t, 2000, rows)

	tiny := newMemoryFirst(nil, 1<<30)
	b2 := tiny.Buffer(7)
	require.NoError(t, b2.Add(Row{CommitTs: 5, StartTs: 1, Op: OpPut, Key: []byte("k")}))
	require.NoError(t, b2.DeleteUpTo(math.MaxUint64))
	require.Empty(t, tiny.chunks.indexes, "small arrays are left to the collector")
}

// The cache follows the memory in use down: what a burst released is not
// held once the ranges are empty (beyond minKeep).
func TestChunkCacheFollowsUseDown(t *testing.T) {
	s := newMemoryFirst(nil, 1<<30)
	value := make([]byte, 1000)
	for u := uint64(1); u <= 4; u++ {
		b := s.Buffer(u)
		batch := b.NewBatch()
		for i := 0; i < 12000; i++ { // ~12 MB a range
			require.NoError(t, batch.Add(Row{CommitTs: uint64(10 + i), StartTs: 1, Op: OpPut, Key: []byte(fmt.Sprint(i)), Value: value}))
		}
		require.NoError(t, batch.Commit())
		batch.Close()
	}
	require.Greater(t, s.used.Load(), int64(40<<20))
	for u := uint64(1); u <= 4; u++ {
		require.NoError(t, s.Buffer(u).DeleteUpTo(6000+10)) // half: the cache may hold what is in use
	}
	require.LessOrEqual(t, s.chunks.cached.Load(), max(s.used.Load(), minKeep))
	require.Positive(t, s.chunks.cached.Load(), "released chunks are recycled")
	for u := uint64(1); u <= 4; u++ {
		require.NoError(t, s.Buffer(u).DeleteUpTo(math.MaxUint64))
	}
	require.Zero(t, s.used.Load())
	require.LessOrEqual(t, s.chunks.cached.Load(), int64(minKeep))
}

// SizeUpTo counts what Scan(upTo) yields, out-of-order and replaced rows
// included.
func TestSizeUpToMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	s := newMemoryFirst(nil, 1<<30)
	b := s.Buffer(1)
	sz := b.(Sizer)
	for round := 0; round < 20; round++ {
		batch := b.NewBatch()
		for i := 0; i < 500; i++ {
			ts := 1000 + rng.Uint64N(5000)
			v := make([]byte, rng.IntN(300))
			require.NoError(t, batch.Add(Row{CommitTs: ts, StartTs: ts - 1, Op: OpPut, Key: []byte(fmt.Sprint(rng.IntN(300))), Value: v}))
		}
		require.NoError(t, batch.Commit())
		batch.Close()
		upTo := 1000 + rng.Uint64N(6000)
		rows, bytes, ok := sz.SizeUpTo(upTo)
		require.True(t, ok)
		var n int
		var m int64
		require.NoError(t, b.Scan(upTo, func(r Row) error {
			n++
			m += int64(r.Size())
			return nil
		}))
		require.Equal(t, n, rows, "round %d", round)
		require.Equal(t, m, bytes, "round %d", round)
		if round%5 == 4 {
			require.NoError(t, b.DeleteUpTo(upTo/2+500))
		}
	}
}
