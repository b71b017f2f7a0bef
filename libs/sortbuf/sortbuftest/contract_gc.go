package sortbuftest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
)

func testDeleteUpTo(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(1)
	require.Zero(t, b.Floor())
	require.NoError(t, b.Add(row(10, 1, "a"), row(20, 1, "b"), row(30, 1, "c")))
	require.NoError(t, b.DeleteUpTo(20))
	require.Equal(t, uint64(20), b.Floor())
	require.Equal(t, []string{"30/1/c"}, ids(scanAll(t, b, math.MaxUint64)))
	require.NoError(t, b.DeleteUpTo(5), "a lower floor is a no-op")
	require.Equal(t, uint64(20), b.Floor())
	require.NoError(t, b.Add(row(40, 1, "d")))
	require.NoError(t, b.DeleteUpTo(30))
	require.Equal(t, []string{"40/1/d"}, ids(scanAll(t, b, math.MaxUint64)))
	require.Empty(t, scanAll(t, b, 30))
}

func testLateRows(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(1)
	require.NoError(t, b.Add(row(10, 1, "a")))
	require.NoError(t, b.DeleteUpTo(10))
	require.NoError(t, b.Add(row(10, 1, "a"), row(9, 1, "z"), row(11, 1, "b")))
	require.Equal(t, []string{"11/1/b"}, ids(scanAll(t, b, math.MaxUint64)))
	st := b.Stats()
	require.Equal(t, int64(2), st.Late)
	require.Equal(t, int64(1), st.Rows)
	ok, err := b.Has(10, 1, []byte("a"))
	require.NoError(t, err)
	require.False(t, ok)
}

func testFloorBetweenAddAndCommit(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(1)
	batch := b.NewBatch()
	defer batch.Close()
	require.NoError(t, batch.Add(row(10, 1, "a")))
	require.NoError(t, batch.Add(row(30, 1, "b")))
	require.NoError(t, b.DeleteUpTo(20))
	require.NoError(t, batch.Commit())
	require.Equal(t, []string{"30/1/b"}, ids(scanAll(t, b, math.MaxUint64)),
		"a row the floor passed while it sat in a batch stays deleted")
}

func testDrop(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(9)
	require.NoError(t, b.Add(row(10, 1, "a")))
	require.NoError(t, b.DeleteUpTo(5))
	require.NoError(t, b.Spill().Put(3, []byte("k"), []byte("v")))
	sp := b.Spill()
	require.NoError(t, b.Drop())

	require.ErrorIs(t, b.Add(row(11, 1, "b")), sortbuf.ErrClosed)
	require.ErrorIs(t, b.Scan(math.MaxUint64, func(sortbuf.Row) error { return nil }), sortbuf.ErrClosed)
	_, err := b.Has(10, 1, []byte("a"))
	require.ErrorIs(t, err, sortbuf.ErrClosed)
	require.ErrorIs(t, b.DeleteUpTo(20), sortbuf.ErrClosed)
	require.ErrorIs(t, b.Drop(), sortbuf.ErrClosed)
	require.ErrorIs(t, sp.Put(3, []byte("k"), []byte("v")), sortbuf.ErrClosed)

	fresh := s.Buffer(9)
	require.Zero(t, fresh.Floor(), "a dropped uid comes back empty")
	require.Empty(t, scanAll(t, fresh, math.MaxUint64))
	_, ok, err := fresh.Spill().Get(3, []byte("k"))
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, fresh.Add(row(1, 1, "new")))
	require.Equal(t, []string{"1/1/new"}, ids(scanAll(t, fresh, math.MaxUint64)))
}

func testStats(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(1)
	require.Equal(t, sortbuf.BufferStats{}, b.Stats())
	require.NoError(t, b.Add(row(10, 1, "a"), row(1<<40, 1, "b"), row(1<<50, 1, "c")))
	st := b.Stats()
	require.Equal(t, int64(3), st.Rows)
	require.Equal(t, int64(3*4), st.Bytes) // "a"+"v:a" and alike
	require.NoError(t, b.DeleteUpTo(1<<40))
	st = b.Stats()
	require.Equal(t, int64(1), st.Rows)
	require.Equal(t, uint64(1<<40), st.Floor)
	require.NoError(t, b.DeleteUpTo(math.MaxUint64))
	st = b.Stats()
	require.Zero(t, st.Rows)
	require.Zero(t, st.Bytes)
}

// testRandomAgainstModel runs random adds, scans and deletes on a few
// ranges and checks each scan against a plain map of what must be there.
func testRandomAgainstModel(t *testing.T, s sortbuf.Store) {
	rng := rand.New(rand.NewPCG(7, 7))
	type model struct {
		rows  map[string]sortbuf.Row
		floor uint64
	}
	models := map[uint64]*model{}
	for u := uint64(0); u < 4; u++ {
		models[u] = &model{rows: map[string]sortbuf.Row{}}
	}
	ts := uint64(100)
	for step := 0; step < 2000; step++ {
		u := uint64(rng.IntN(4))
		m, b := models[u], s.Buffer(u)
		switch op := rng.IntN(10); {
		case op < 6: // a transaction of a few rows, commit ts near the front
			ts += uint64(rng.IntN(3))
			commit := ts - uint64(rng.IntN(20))
			start := commit - 1 - uint64(rng.IntN(5))
			batch := b.NewBatch()
			for i := 0; i < 1+rng.IntN(4); i++ {
				r := row(commit, start, string(rune('a'+rng.IntN(26))))
				require.NoError(t, batch.Add(r))
				if commit > m.floor {
					m.rows[id(r)] = r
				}
			}
			require.NoError(t, batch.Commit())
			batch.Close()
		case op < 8:
			upTo := ts - uint64(rng.IntN(30))
			var want []sortbuf.Row
			for _, r := range m.rows {
				if r.CommitTs <= upTo {
					want = append(want, r)
				}
			}
			require.Equal(t, nilIfEmpty(sortedIDs(want)), nilIfEmpty(ids(scanAll(t, b, upTo))), "step %d", step)
		default:
			upTo := ts - uint64(rng.IntN(30))
			require.NoError(t, b.DeleteUpTo(upTo))
			m.floor = max(m.floor, upTo)
			for k, r := range m.rows {
				if r.CommitTs <= m.floor {
					delete(m.rows, k)
				}
			}
		}
	}
	for u, m := range models {
		var want []sortbuf.Row
		for _, r := range m.rows {
			want = append(want, r)
		}
		require.Equal(t, nilIfEmpty(sortedIDs(want)), nilIfEmpty(ids(scanAll(t, s.Buffer(u), math.MaxUint64))))
		// Stats may run high (re-adds, partly deleted buckets), never low,
		// and return to zero once the range is empty.
		require.GreaterOrEqual(t, s.Buffer(u).Stats().Rows, int64(len(m.rows)))
		require.NoError(t, s.Buffer(u).DeleteUpTo(math.MaxUint64))
		require.Zero(t, s.Buffer(u).Stats().Rows)
		require.Zero(t, s.Buffer(u).Stats().Bytes)
	}
}
