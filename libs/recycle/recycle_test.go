package recycle

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSmallestTakesTheBestFit(t *testing.T) {
	list := [][]int{make([]int, 0, 50), make([]int, 0, 10), make([]int, 0, 30), make([]int, 0, 20)}
	s, ok := Smallest(&list, 15, 0)
	require.True(t, ok)
	require.Equal(t, 20, cap(s), "the least capacity that fits")
	require.Len(t, list, 3)
	_, ok = Smallest(&list, 31, 40)
	require.False(t, ok, "none in [31, 40]")
	require.Len(t, list, 3)
	s, ok = Smallest(&list, 31, 60)
	require.True(t, ok)
	require.Equal(t, 50, cap(s))
	var caps []int
	for _, c := range list {
		caps = append(caps, cap(c))
	}
	require.ElementsMatch(t, []int{10, 30}, caps, "the others stay")
	empty := [][]byte{}
	_, ok = Smallest(&empty, 1, 0)
	require.False(t, ok)
}

// A slice taken back is handed out again, zeroed where its user wrote;
// the bounds leave the rest to the collector.
func TestListRecyclesWithinBounds(t *testing.T) {
	l := &List[*int]{MaxSlices: 2, MaxBytes: 1 << 20}
	a := l.Get(10)
	require.Len(t, a, 10)
	x := 7
	for i := range a {
		a[i] = &x
	}
	l.Put(a[:4]) // wrote only the first four
	b := l.Get(3)
	require.Len(t, b, 3)
	require.Equal(t, cap(a), cap(b), "the held slice")
	for _, p := range b[:cap(b)][:4] {
		require.Nil(t, p, "what its user wrote is cleared")
	}
	require.EqualValues(t, 1, l.Reused.Load())
	require.EqualValues(t, 1, l.Made.Load())
	require.Len(t, l.Get(11), 11, "none large enough: a new one")
	require.EqualValues(t, 2, l.Made.Load())

	l.Put(make([]*int, 1))
	l.Put(make([]*int, 1))
	l.Put(make([]*int, 1)) // a third: past MaxSlices
	require.Len(t, l.free, 2)
	big := &List[byte]{MaxSlices: 10, MaxBytes: 100}
	big.Put(make([]byte, 0, 60))
	big.Put(make([]byte, 0, 60)) // would pass MaxBytes
	require.Len(t, big.free, 1)
	require.EqualValues(t, 60, big.bytes)
	big.Get(50)
	require.Zero(t, big.bytes)
}
