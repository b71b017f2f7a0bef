package sortbuf

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// Rows added out of order are sorted when read, and of rows of one
// identity the one added last wins — also when the index's arrival
// counter wraps in the middle of the unsorted tail (the tail is sorted by
// an unstable sort, identity then arrival).
func TestOutOfOrderTailLastAddedWins(t *testing.T) {
	for _, start := range []uint32{0, math.MaxUint32 - 500} {
		t.Run(fmt.Sprint(start), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(start), 3))
			s := newMemoryFirst(nil, 1<<30)
			b := s.Buffer(1).(*mfBuffer)
			b.mem.nextSeq = start
			want := map[string]string{} // identity -> value of the last row added
			for i := 0; i < 3000; i++ {
				// A small key and ts space: many rows of one identity, in
				// random order, in batches of a few rows (as ranges get them).
				ts := uint64(100 + rng.IntN(40))
				key := fmt.Sprintf("k%02d", rng.IntN(30))
				val := fmt.Sprintf("v%d", i)
				require.NoError(t, b.Add(Row{CommitTs: ts, StartTs: ts - 1, Op: OpPut, Key: []byte(key), Value: []byte(val)}))
				want[fmt.Sprintf("%d/%s", ts, key)] = val
				if i == 1500 {
					// A read in the middle sorts and merges the tail so far;
					// what comes after is a new tail over the same rows.
					_, _, _ = b.SizeUpTo(math.MaxUint64)
				}
			}
			var prev string
			got := map[string]string{}
			require.NoError(t, b.Scan(math.MaxUint64, func(r Row) error {
				id := fmt.Sprintf("%d/%s", r.CommitTs, r.Key)
				sortKey := fmt.Sprintf("%020d/%s", r.CommitTs, r.Key)
				require.Greater(t, sortKey, prev, "rows in order, each identity once")
				prev = sortKey
				got[id] = string(r.Value)
				return nil
			}))
			require.Equal(t, want, got)
			require.NotEqual(t, start, b.mem.nextSeq)
		})
	}
}

// BenchmarkNormalizeTail sorts a tail of rows added in random order, as the
// fleet's ranges get them from many regions (tails of thousands of rows,
// about half as many ascending runs as rows).
func BenchmarkNormalizeTail(b *testing.B) {
	const n = 20000
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([]Row, n)
	for i := range rows {
		ts := uint64(1000 + rng.IntN(5000))
		rows[i] = Row{CommitTs: ts, StartTs: ts - 5, Op: OpPut, Key: fmt.Appendf(nil, "t\x80\x00\x00\x00\x00\x00\x00\x64_r%08d", rng.IntN(1e8)), Value: make([]byte, 100)}
	}
	s := newMemoryFirst(nil, 1<<30)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		buf := s.Buffer(uint64(i + 1)).(*mfBuffer)
		require.NoError(b, buf.Add(rows[0]))
		_, _, _ = buf.SizeUpTo(math.MaxUint64) // the first row sorted: the rest is the tail
		require.NoError(b, buf.Add(rows[1:]...))
		b.StartTimer()
		buf.mu.Lock()
		buf.mem.normalize()
		buf.mu.Unlock()
		b.StopTimer()
		require.NoError(b, buf.DeleteUpTo(math.MaxUint64))
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
}
