package workpool

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// Each visits every index once, and of several failures returns the
// smallest index's, at any parallelism.
func TestEach(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 4} {
		runtime.GOMAXPROCS(procs)
		for _, n := range []int{0, 1, 1000, 5000, 100003} {
			seen := make([]atomic.Int32, n)
			require.NoError(t, Each(n, func(i int) error { seen[i].Add(1); return nil }))
			for i := range seen {
				require.Equal(t, int32(1), seen[i].Load(), "procs %d n %d index %d", procs, n, i)
			}
			if n < 1000 {
				continue
			}
			bad := map[int]bool{n - 1: true, n / 2: true, n/2 + 1: true, 7: n > 5000}
			err := Each(n, func(i int) error {
				if bad[i] {
					return fmt.Errorf("item %d", i)
				}
				return nil
			})
			want := n / 2
			if n > 5000 {
				want = 7
			}
			require.EqualError(t, err, fmt.Sprintf("item %d", want), "procs %d n %d", procs, n)
		}
	}
}
