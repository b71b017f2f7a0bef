package storefile

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A carver hands out zeroed arrays from chunks; recycled chunks come back
// zeroed, forgotten ones are never handed out again, and a request over
// half a chunk gets an array of its own.
func TestCarverHandsOutZeroedArrays(t *testing.T) {
	c := carver[int]{chunkLen: 8}
	a, b := c.take(3), c.take(4)
	require.Len(t, a, 3)
	require.Len(t, b, 4)
	require.Equal(t, 3, cap(a), "capped: appending cannot reach the next array")
	for i := range a {
		a[i] = 1
	}
	for i := range b {
		b[i] = 2
	}
	d := c.take(3) // does not fit the first chunk's last one
	d[0] = 3
	require.Len(t, c.used, 2)
	big := c.take(5)
	require.Len(t, big, 5)
	require.Len(t, c.used, 2, "an array of its own")

	c.recycle()
	require.Len(t, c.free, 2)
	require.Empty(t, c.used)
	e := c.take(4)
	require.Equal(t, make([]int, 4), e, "a recycled chunk is zeroed")
	require.Equal(t, make([]int, 4), c.take(4), "all of it")
	require.Len(t, c.free, 1)

	c.forget()
	require.Empty(t, c.used)
	f := c.take(2)
	f[0] = 9
	require.Equal(t, 0, e[0], "a forgotten chunk is not carved again")
	require.Len(t, c.free, 0, "the last recycled chunk was taken")
}
