package sortbuftest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
)

func formatID(commitTs, startTs uint64, key string) string {
	return fmt.Sprintf("%d/%d/%s", commitTs, startTs, key)
}

func testScanOrder(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(7)
	rows := []sortbuf.Row{
		row(20, 15, "b"), row(10, 5, "z"), row(20, 15, "a"), row(20, 12, "c"),
		row(10, 5, "a"), row(30, 1, ""), row(20, 15, "a\x00"), row(10, 6, "a"),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	require.NoError(t, b.Add(rows...))
	want := []string{
		"10/5/a", "10/5/z", "10/6/a",
		"20/12/c", "20/15/a", "20/15/a\x00", "20/15/b",
		"30/1/",
	}
	require.Equal(t, want, ids(scanAll(t, b, math.MaxUint64)))
}

func testScanUpTo(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(1)
	require.NoError(t, b.Add(row(10, 1, "a"), row(11, 1, "b"), row(12, 1, "c")))
	cases := []struct {
		upTo uint64
		want []string
	}{
		{0, nil},
		{9, nil},
		{10, []string{"10/1/a"}},
		{11, []string{"10/1/a", "11/1/b"}},
		{math.MaxUint64, []string{"10/1/a", "11/1/b", "12/1/c"}},
	}
	for _, c := range cases {
		require.Equal(t, c.want, nilIfEmpty(ids(scanAll(t, b, c.upTo))), "upTo %d", c.upTo)
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func testValuesRoundTrip(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(3)
	big := make([]byte, 70000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	rows := []sortbuf.Row{
		{CommitTs: 5, StartTs: 1, Op: sortbuf.OpPut, Key: []byte("k1"), Value: []byte("v"), OldValue: []byte("old")},
		{CommitTs: 5, StartTs: 1, Op: sortbuf.OpDelete, Key: []byte("k2"), OldValue: []byte("gone")},
		{CommitTs: 5, StartTs: 1, Op: sortbuf.OpDelete, Key: []byte("k3")},
		{CommitTs: 5, StartTs: 1, Op: sortbuf.OpPut, Key: []byte("k4"), Value: big, OldValue: big[:300]},
		{CommitTs: 5, StartTs: 1, Op: sortbuf.OpPut, Key: []byte("k5"), Value: []byte{}},
	}
	require.NoError(t, b.Add(rows...))
	got := scanAll(t, b, 5)
	require.Len(t, got, len(rows))
	for i, want := range rows {
		require.Equal(t, want.Op, got[i].Op, "row %d", i)
		require.Equal(t, string(want.Key), string(got[i].Key), "row %d", i)
		require.Equal(t, string(want.Value), string(got[i].Value), "row %d", i)
		require.Equal(t, string(want.OldValue), string(got[i].OldValue), "row %d", i)
	}
}

func testIdempotentAdd(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(1)
	r := row(10, 5, "k")
	require.NoError(t, b.Add(r))
	require.NoError(t, b.Add(r, r))
	batch := b.NewBatch()
	defer batch.Close()
	require.NoError(t, batch.Add(r))
	require.NoError(t, batch.Add(r))
	require.NoError(t, batch.Commit())
	require.Equal(t, []string{"10/5/k"}, ids(scanAll(t, b, math.MaxUint64)))
}

// A row added again with the same (commit_ts, start_ts, key) replaces the
// one buffered, the last added winning, also within one batch: the
// transaction matcher re-emits a row when a prewrite of higher rank (a
// later pipelined DML generation, the real prewrite after a lock refresh)
// arrives after the commit.
func testAddReplacesSameKey(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(1)
	v := func(op sortbuf.Op, value, old string) sortbuf.Row {
		return sortbuf.Row{CommitTs: 10, StartTs: 5, Op: op, Key: []byte("k"), Value: []byte(value), OldValue: []byte(old)}
	}
	last := func() sortbuf.Row {
		t.Helper()
		got := scanAll(t, b, math.MaxUint64)
		require.Len(t, got, 1)
		return got[0]
	}
	require.NoError(t, b.Add(v(sortbuf.OpPut, "", "")))
	require.NoError(t, b.Add(v(sortbuf.OpPut, "second", "o")))
	require.Equal(t, "second", string(last().Value), "Buffer.Add across calls")
	require.NoError(t, b.Add(v(sortbuf.OpPut, "third", ""), v(sortbuf.OpDelete, "", "fourth")))
	require.Equal(t, sortbuf.OpDelete, last().Op, "Buffer.Add within one call")
	require.Equal(t, "fourth", string(last().OldValue))

	batch := b.NewBatch()
	defer batch.Close()
	require.NoError(t, batch.Add(v(sortbuf.OpPut, "fifth", "")))
	require.NoError(t, batch.Add(v(sortbuf.OpPut, "sixth", "o6")))
	require.NoError(t, batch.Commit())
	require.Equal(t, "sixth", string(last().Value), "Batch.Add within one batch")
	require.Equal(t, "o6", string(last().OldValue))
	require.NoError(t, batch.Add(v(sortbuf.OpPut, "seventh", "")))
	require.NoError(t, batch.Commit())
	got := last()
	require.Equal(t, "seventh", string(got.Value), "Batch.Add across commits")
	require.Empty(t, got.OldValue)
}

func testHas(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(1)
	require.NoError(t, b.Add(row(10, 5, "k"), row(20, 15, "k")))
	cases := []struct {
		commit, start uint64
		key           string
		want          bool
	}{
		{10, 5, "k", true},
		{20, 15, "k", true},
		{10, 5, "k\x00", false},
		{10, 5, "", false},
		{10, 6, "k", false},
		{11, 5, "k", false},
	}
	for _, c := range cases {
		ok, err := b.Has(c.commit, c.start, []byte(c.key))
		require.NoError(t, err)
		require.Equal(t, c.want, ok, "%d/%d/%q", c.commit, c.start, c.key)
	}
	require.NoError(t, b.DeleteUpTo(10))
	ok, err := b.Has(10, 5, []byte("k"))
	require.NoError(t, err)
	require.False(t, ok, "a deleted row is gone")
}

func testBatch(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(1)
	batch := b.NewBatch()
	require.Zero(t, batch.Len())
	require.NoError(t, batch.Add(row(10, 5, "a")))
	require.NoError(t, batch.Add(row(10, 5, "bb")))
	require.Equal(t, 2, batch.Len())
	require.Equal(t, len("a")+len("v:a")+len("bb")+len("v:bb"), batch.Bytes())
	require.Empty(t, scanAll(t, b, math.MaxUint64), "nothing visible before Commit")
	require.NoError(t, batch.Commit())
	require.Zero(t, batch.Len())
	require.Zero(t, batch.Bytes())
	require.NoError(t, batch.Commit(), "an empty commit is fine")
	require.NoError(t, batch.Add(row(11, 5, "c")), "a batch is reusable after Commit")
	require.NoError(t, batch.Commit())
	require.Equal(t, []string{"10/5/a", "10/5/bb", "11/5/c"}, ids(scanAll(t, b, math.MaxUint64)))
	batch.Close()
	require.ErrorIs(t, batch.Add(row(12, 5, "d")), sortbuf.ErrClosed)
	require.ErrorIs(t, batch.Commit(), sortbuf.ErrClosed)
	batch.Close() // twice is harmless

	// Rows are copied in Add: the caller may reuse its buffers at once.
	batch = b.NewBatch()
	defer batch.Close()
	key, val := []byte("x"), []byte("1")
	require.NoError(t, batch.Add(sortbuf.Row{CommitTs: 20, StartTs: 1, Op: sortbuf.OpPut, Key: key, Value: val}))
	key[0], val[0] = 'y', '2'
	require.NoError(t, batch.Commit())
	got := scanAll(t, b, math.MaxUint64)
	require.Equal(t, "x", string(got[len(got)-1].Key))
	require.Equal(t, "1", string(got[len(got)-1].Value))
}

func testInvalidRows(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(1)
	cases := []sortbuf.Row{
		{CommitTs: 0, StartTs: 0, Op: sortbuf.OpPut, Key: []byte("k")},
		{CommitTs: 5, StartTs: 1, Op: 0, Key: []byte("k")},
		{CommitTs: 5, StartTs: 1, Op: 3, Key: []byte("k")},
	}
	for _, r := range cases {
		require.Error(t, b.Add(r), "%+v", r)
	}
	require.Empty(t, scanAll(t, b, math.MaxUint64))
}

func testScanCallbackError(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(1)
	require.NoError(t, b.Add(row(1, 1, "a"), row(2, 1, "b"), row(3, 1, "c")))
	stop := errors.New("stop")
	n := 0
	err := b.Scan(math.MaxUint64, func(sortbuf.Row) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 2, n)
}

func testScanConsistentView(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(1)
	require.NoError(t, b.Add(row(1, 1, "a"), row(2, 1, "b")))
	var seen []string
	require.NoError(t, b.Scan(math.MaxUint64, func(r sortbuf.Row) error {
		seen = append(seen, id(r))
		if len(seen) == 1 {
			return b.Add(row(3, 1, "c"))
		}
		return nil
	}))
	require.Equal(t, []string{"1/1/a", "2/1/b"}, seen, "a scan sees the buffer as it was when it started")
	require.Len(t, scanAll(t, b, math.MaxUint64), 3)
}

func testExtremeTimestamps(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(math.MaxUint64)
	max := uint64(math.MaxUint64)
	require.NoError(t, b.Add(row(max, max, "k"), row(max, 1, "k"), row(1, 0, "k")))
	require.Equal(t, []string{"1/0/k", formatID(max, 1, "k"), formatID(max, max, "k")},
		ids(scanAll(t, b, max)))
	require.Len(t, scanAll(t, b, max-1), 1)
	require.NoError(t, b.DeleteUpTo(max-1))
	require.Len(t, scanAll(t, b, max), 2)
	require.NoError(t, b.DeleteUpTo(max))
	require.Empty(t, scanAll(t, b, max))
	require.NoError(t, b.Add(row(max, 2, "k")))
	require.Empty(t, scanAll(t, b, max), "nothing can be added above a floor of MaxUint64")
}

func testRangesIsolated(t *testing.T, s sortbuf.Store) {
	uids := []uint64{0, 1, 2, 255, 256, 1 << 32, math.MaxUint64 - 1, math.MaxUint64}
	for _, u := range uids {
		require.NoError(t, s.Buffer(u).Add(row(10, 1, fmt.Sprint(u)), row(20, 1, fmt.Sprint(u))))
	}
	require.NoError(t, s.Buffer(1).DeleteUpTo(10))
	require.NoError(t, s.Buffer(256).Drop())
	for _, u := range uids {
		got := ids(scanAll(t, s.Buffer(u), math.MaxUint64))
		switch u {
		case 1:
			require.Equal(t, []string{"20/1/1"}, got)
		case 256:
			require.Empty(t, got)
		default:
			require.Equal(t, []string{"10/1/" + fmt.Sprint(u), "20/1/" + fmt.Sprint(u)}, got, "uid %d", u)
		}
	}
}

func testSameBuffer(t *testing.T, s sortbuf.Store) {
	a := s.Buffer(5)
	require.NoError(t, a.DeleteUpTo(3))
	require.Equal(t, uint64(5), s.Buffer(5).UID())
	require.Equal(t, uint64(3), s.Buffer(5).Floor(), "Buffer returns the same buffer until Drop")
}

// sortedIDs returns the ids of rows in the buffer's order.
func sortedIDs(rows []sortbuf.Row) []string {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.CommitTs != b.CommitTs {
			return a.CommitTs < b.CommitTs
		}
		if a.StartTs != b.StartTs {
			return a.StartTs < b.StartTs
		}
		return string(a.Key) < string(b.Key)
	})
	return ids(rows)
}
