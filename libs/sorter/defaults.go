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

// DefaultFlushBytes: a sorter process publishes a tenant's ranges sooner
// than DefaultFlushInterval once this many bytes of rows arrived for it
// since its last round began (the sorter service's flush_bytes; the
// benchmark's rounds follow the same rule). A round then holds at most
// about this much, as a storage engine flushes a memtable when it is
// full rather than by the clock: at full speed (a catch-up, a restart) the
// rounds stay small, their memory is the last round's memory reused, and
// the requests per MiB stay bounded (one publication per 16 MiB). Below
// ~80 MiB/s per tenant the interval comes first and this changes nothing.
const DefaultFlushBytes = 16 << 20

// DefaultWorkers is the size of the worker pool that drives a process's
// ranges by default (the sorter service's --workers, the benchmark's
// workers): four times GOMAXPROCS, at least 8. More workers than cores
// because a worker may wait rather than compute (a range's lock held by a
// snapshot or seal writing to the object store, an fsync, Pebble when the
// buffers spill); a fixed number, not a goroutine per range.
func DefaultWorkers() int { return max(8, 4*runtime.GOMAXPROCS(0)) }
