package sortbuf

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
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

// TestTailSortAgainstModel adds tails of every size around the radix
// sort's threshold, of commit ts that differ in one byte or in many
// (TSO-like: physical milliseconds << 18 | logical), transactions of one
// row to far more than the insertion sort's dozen, rows re-added with new
// values (the last added wins), across the arrival counter's wrap, and
// tails sorted while a scan holds the rows (merged into a new array):
// every scan must match a plain map of the rows by identity, in order,
// and a scan in progress must go on seeing the rows as they were.
func TestTailSortAgainstModel(t *testing.T) {
	for _, c := range []struct {
		name    string
		spread  uint64 // milliseconds a tail's commit ts span
		seqFrom uint32
	}{
		{"narrow", 0, 0},
		{"seconds", 5000, 0},
		{"wide", 1 << 22, math.MaxUint32 - 20000},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(c.spread, 11))
			s := newMemoryFirst(nil, 1<<30)
			b := s.Buffer(1).(*mfBuffer)
			b.mem.nextSeq = c.seqFrom
			type ident struct {
				commit, start uint64
				key           string
			}
			model := map[ident]string{}
			order := func() []string {
				ids := make([]ident, 0, len(model))
				for id := range model {
					ids = append(ids, id)
				}
				slices.SortFunc(ids, func(a, b ident) int {
					return cmp.Or(cmp.Compare(a.commit, b.commit), cmp.Compare(a.start, b.start), strings.Compare(a.key, b.key))
				})
				out := make([]string, len(ids))
				for i, id := range ids {
					out[i] = fmt.Sprintf("%d/%d/%s=%s", id.commit, id.start, id.key, model[id])
				}
				return out
			}
			scan := func(each func()) []string {
				var out []string
				require.NoError(t, b.Scan(math.MaxUint64, func(r Row) error {
					if each != nil {
						each()
						each = nil
					}
					out = append(out, fmt.Sprintf("%d/%d/%s=%s", r.CommitTs, r.StartTs, r.Key, r.Value))
					return nil
				}))
				return out
			}
			const tso = 470_000_000_000 << 18 // physical ms of 2026, shifted
			lowMs := uint64(0)
			n := 0
			// burst adds about size rows: whole transactions in shuffled
			// order, some rows re-adds of held identities.
			burst := func(size int) {
				var rows []Row
				for len(rows) < size {
					var commit uint64
					if c.spread == 0 {
						commit = 1000 + uint64(rng.IntN(200)) // one byte differs
					} else {
						commit = tso + (lowMs+uint64(rng.Uint64N(c.spread)))<<18 + uint64(rng.IntN(4))
					}
					start := commit - 1 - uint64(rng.IntN(3))
					txn := 1 + rng.IntN(3)
					if rng.IntN(6) == 0 {
						txn = 13 + rng.IntN(60)
					}
					for i := 0; i < txn; i++ {
						n++
						rows = append(rows, Row{CommitTs: commit, StartTs: start, Op: OpPut,
							Key: fmt.Appendf(nil, "k%03d", rng.IntN(400)), Value: fmt.Appendf(nil, "v%d", n)})
					}
				}
				for id := range model {
					if rng.IntN(20) == 0 {
						n++
						rows = append(rows, Row{CommitTs: id.commit, StartTs: id.start, Op: OpPut, Key: []byte(id.key), Value: fmt.Appendf(nil, "again%d", n)})
					}
				}
				rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
				for _, r := range rows {
					require.NoError(t, b.Add(r))
					model[ident{r.CommitTs, r.StartTs, string(r.Key)}] = string(r.Value)
				}
			}
			sizes := []int{1, 10, 63, 64, 65, 300, 3000}
			for round := 0; round < 40; round++ {
				burst(sizes[rng.IntN(len(sizes))])
				switch rng.IntN(4) {
				case 0: // a tail sorted and merged while a scan holds the rows
					before := order()
					got := scan(func() {
						burst(sizes[rng.IntN(len(sizes))])
						_, _, _ = b.SizeUpTo(math.MaxUint64)
					})
					require.Equal(t, before, got, "round %d: the scan in progress", round)
				case 1: // the flushed part goes; later rows all come above it
					if c.spread > 0 {
						lowMs += c.spread / 2
						floor := tso + lowMs<<18 - 1
						require.NoError(t, b.DeleteUpTo(floor))
						for id := range model {
							if id.commit <= floor {
								delete(model, id)
							}
						}
					}
				}
				require.Equal(t, order(), scan(nil), "round %d", round)
			}
		})
	}
}
