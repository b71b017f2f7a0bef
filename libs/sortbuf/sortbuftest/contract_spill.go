package sortbuftest

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
)

func requireSpill(t *testing.T, sp sortbuf.SpillStore, startTs uint64, key, want string, found bool) {
	t.Helper()
	v, ok, err := sp.Get(startTs, []byte(key))
	require.NoError(t, err)
	require.Equal(t, found, ok, "%d/%q", startTs, key)
	if found {
		require.Equal(t, want, string(v), "%d/%q", startTs, key)
	}
}

func testSpillRoundTrip(t *testing.T, s sortbuf.Store) {
	sp := s.Buffer(1).Spill()
	requireSpill(t, sp, 5, "k", "", false)
	require.NoError(t, sp.Put(5, []byte("k"), []byte("v1")))
	require.NoError(t, sp.Put(5, []byte(""), []byte("empty key")))
	require.NoError(t, sp.Put(5, []byte("k2"), nil))
	requireSpill(t, sp, 5, "k", "v1", true)
	requireSpill(t, sp, 5, "", "empty key", true)
	requireSpill(t, sp, 5, "k2", "", true)
	requireSpill(t, sp, 6, "k", "", false)
	require.NoError(t, sp.Put(5, []byte("k"), []byte("v2")))
	requireSpill(t, sp, 5, "k", "v2", true)
	require.NoError(t, sp.Delete(5, []byte("k")))
	requireSpill(t, sp, 5, "k", "", false)
	require.NoError(t, sp.Delete(5, []byte("absent")), "deleting nothing is fine")
	requireSpill(t, sp, 5, "k2", "", true)
}

func testSpillDeleteTxn(t *testing.T, s sortbuf.Store) {
	sp := s.Buffer(1).Spill()
	max := uint64(math.MaxUint64)
	for _, ts := range []uint64{0, 4, 5, 6, max} {
		for _, k := range []string{"", "a", "b\xff"} {
			require.NoError(t, sp.Put(ts, []byte(k), []byte(fmt.Sprint(ts))))
		}
	}
	require.NoError(t, sp.DeleteTxn(5))
	require.NoError(t, sp.DeleteTxn(max))
	for _, ts := range []uint64{0, 4, 5, 6, max} {
		for _, k := range []string{"", "a", "b\xff"} {
			gone := ts == 5 || ts == max
			requireSpill(t, sp, ts, k, fmt.Sprint(ts), !gone)
		}
	}
	require.NoError(t, sp.DeleteTxn(77), "deleting an unknown txn is fine")
}

func testSpillForEachOrder(t *testing.T, s sortbuf.Store) {
	sp := s.Buffer(2).Spill()
	require.NoError(t, s.Buffer(3).Spill().Put(1, []byte("other range"), nil))
	puts := []struct {
		ts  uint64
		key string
	}{{9, "b"}, {3, "z"}, {9, "a"}, {3, "a"}, {math.MaxUint64, ""}, {0, "q"}}
	for _, p := range puts {
		require.NoError(t, sp.Put(p.ts, []byte(p.key), []byte(p.key+"!")))
	}
	var got []string
	require.NoError(t, sp.ForEach(func(ts uint64, key, value []byte) error {
		require.Equal(t, string(key)+"!", string(value))
		got = append(got, fmt.Sprintf("%d/%s", ts, key))
		return nil
	}))
	require.Equal(t, []string{"0/q", "3/a", "3/z", "9/a", "9/b", fmt.Sprintf("%d/", uint64(math.MaxUint64))}, got)
	stop := fmt.Errorf("stop")
	require.ErrorIs(t, sp.ForEach(func(uint64, []byte, []byte) error { return stop }), stop)
}

func testSpillSeparateFromRows(t *testing.T, s sortbuf.Store) {
	b := s.Buffer(4)
	require.NoError(t, b.Spill().Put(10, []byte("k"), []byte("prewrite")))
	require.NoError(t, b.Add(row(11, 10, "k")))
	require.Equal(t, []string{"11/10/k"}, ids(scanAll(t, b, math.MaxUint64)))
	require.NoError(t, b.DeleteUpTo(math.MaxUint64))
	requireSpill(t, b.Spill(), 10, "k", "prewrite", true)
}

func testSpillGetReturnsCopy(t *testing.T, s sortbuf.Store) {
	sp := s.Buffer(1).Spill()
	val := []byte("abc")
	require.NoError(t, sp.Put(1, []byte("k"), val))
	val[0] = 'X'
	got, ok, err := sp.Get(1, []byte("k"))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "abc", string(got), "Put copies")
	got[0] = 'Y'
	requireSpill(t, sp, 1, "k", "abc", true)
}
