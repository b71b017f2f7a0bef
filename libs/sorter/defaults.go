package sorter

import (
	"runtime"
	"time"
)

// DefaultFlushInterval is how often, at most, a sorter process publishes
// the ranges it holds for a tenant: the sorter service's flush_interval
// default. The ordering core's benchmark (sorterbench) flushes as often,
// so that its figures are those of a sorter on default settings; both take
// it from here, so the two cannot drift apart.
const DefaultFlushInterval = 200 * time.Millisecond

// DefaultWorkers is the size of the worker pool that drives a process's
// ranges by default (the sorter service's --workers, the benchmark's
// workers): four times GOMAXPROCS, at least 8. More workers than cores
// because a worker may wait rather than compute (a range's lock held by a
// snapshot or seal writing to the object store, an fsync, Pebble when the
// buffers spill); a fixed number, not a goroutine per range.
func DefaultWorkers() int { return max(8, 4*runtime.GOMAXPROCS(0)) }
