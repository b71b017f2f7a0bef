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
