package workpool

import (
	"runtime"
	"sync"
)

// eachMin is the fewest items worth a goroutine of their own in Each.
const eachMin = 1024

// Each calls fn(i) for every i in [0, n), the range cut into contiguous
// parts run in parallel, one per core (GOMAXPROCS), each in order. It
// returns the error of the smallest i whose fn failed — the one a loop
// would have stopped at, whatever the scheduling — or nil; a part stops at
// its first error. For checking or decoding many independent items (a
// schema snapshot's 1,000,000 TableInfos) on every core.
func Each(n int, fn func(i int) error) error {
	parts := min(runtime.GOMAXPROCS(0), max(n/eachMin, 1))
	if parts <= 1 {
		for i := range n {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p * n / parts; i < (p+1)*n/parts; i++ {
				if err := fn(i); err != nil {
					errs[p] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
