package offheap

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSlabsCarveDistinctBuffers(t *testing.T) {
	s := NewSlabs(4 << 20)
	sizes := []int{100, MinCarve, 600 << 10, 1 << 20, 700 << 10, 3 << 20, 5 << 20, MinCarve + 1, 900 << 10, 1500 << 10}
	var bufs [][]byte
	for i, n := range sizes {
		b := s.Make(n)
		require.Len(t, b, 0)
		require.Equal(t, n, cap(b), "size %d: the capacity is what was asked, so appends cannot run into the next buffer", n)
		b = b[:n]
		for j := range b {
			b[j] = byte(i + 1)
		}
		bufs = append(bufs, b)
	}
	for i, b := range bufs {
		for j := 0; j < len(b); j += 1021 {
			require.Equal(t, byte(i+1), b[j], "buffer %d (%d bytes) was written through another", i, len(b))
		}
	}
	require.Nil(t, s.Make(0))
}

func TestSlabsStartAtHugePageBoundaries(t *testing.T) {
	if !supported {
		t.Skip("plain allocations here")
	}
	s := NewSlabs(4 << 20)
	first := s.Make(MinCarve) // the first carve of a fresh slab
	require.Zero(t, base(first)%PageSize)
	large := s.Make(3 << 20) // its own memory
	require.Zero(t, base(large)%PageSize)
	second := s.Make(MinCarve)
	require.Equal(t, base(first)+MinCarve, base(second), "carved one after the other from the slab")
	small := s.Make(MinCarve - 1)
	require.NotEqual(t, base(second)+MinCarve, base(small), "under MinCarve: not from the slab")
}

// HugeHeap acts unless the kernel has no huge pages or strict overcommit
// would charge (and might refuse) its mapping.
func TestHugeHeapUseful(t *testing.T) {
	for _, c := range []struct {
		thp, overcommit string
		want            bool
	}{
		{"always [madvise] never\n", "0\n", true},
		{"[always] madvise never\n", "1\n", true},
		{"always madvise [never]\n", "0\n", false},
		{"always [madvise] never\n", "2\n", false},
		{"", "", true}, // unknown: try; the advice is refused harmlessly
	} {
		require.Equal(t, c.want, hugeHeapUseful(c.thp, c.overcommit), "%q %q", c.thp, c.overcommit)
	}
}
