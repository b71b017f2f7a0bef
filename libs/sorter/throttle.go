package sorter

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultWriteStallBytes is the memory in use by a process's buffered rows
// above which its ingest waits for the flush round under way (the sorter
// service's --write-stall-bytes, the benchmark's feeder): a quarter of the
// default buffer budget, so a sorter that cannot publish as fast as it
// applies slows its input down long before it spills ranges to Pebble.
// Every byte of rows held beyond what a round needs is memory the process
// first touches (page faults) and sections it encodes in one go; 128 MiB
// measured faster than 256 at one core and no slower at two (a sorter
// keeping up at full speed holds a round or two of rows, more than 64
// MiB, where a stall once cost the benchmark a fifth of its two-core
// throughput; docs/benchmarks.md).
const DefaultWriteStallBytes = 128 << 20

// MaxWriteStall bounds one wait: rows that cannot be flushed yet (their
// ranges' watermark held by an open transaction) are no reason to hold
// the input for long, so past it the rows are taken, and the buffers'
// budget (spilling the largest ranges to Pebble) bounds memory as before.
const MaxWriteStall = time.Second

// Throttle is a sorter process's write stall, as a storage engine stalls
// its writers while its memtables wait to be flushed. The applies of a
// sorter never wait for its publisher by themselves: a process that
// applies faster than it publishes (one core shared by both, a slow
// object store) would hold ever more rows until the buffers' budget spills
// them to Pebble, every round larger than the last and each one in memory
// the process has never touched (page faults, the collector's heap). With
// a Throttle, the ingest waits while the memory in use is above its limit
// and a flush round is under way (it is what frees memory), at most
// MaxWriteStall each time; the input's sender (a dispatcher's in-flight
// window) slows down with it.
//
// A nil Throttle, or one with a limit of 0, never waits. It is safe for
// concurrent use.
type Throttle struct {
	used  func() int64
	limit int64

	mu     sync.Mutex
	rounds int           // flush rounds under way
	ended  chan struct{} // closed when a round ends, then replaced

	stalls    atomic.Int64
	stalledNs atomic.Int64
}

// NewThrottle returns a write stall over the memory used (in bytes, as
// used reports it) with the given limit (0: never waits).
func NewThrottle(used func() int64, limit int64) *Throttle {
	return &Throttle{used: used, limit: limit, ended: make(chan struct{})}
}

// Begin marks a flush round under way; End marks it over (after its
// commits: the flushed rows' memory is then free).
func (t *Throttle) Begin() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.rounds++
	t.mu.Unlock()
}

// End marks a round begun with Begin as over.
func (t *Throttle) End() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.rounds--
	close(t.ended)
	t.ended = make(chan struct{})
	t.mu.Unlock()
}

// Wait returns once the memory in use is at or below the limit, no round
// is under way, maxWait has passed, or ctx ended; it reports how long it
// waited.
func (t *Throttle) Wait(ctx context.Context, maxWait time.Duration) time.Duration {
	if t == nil || t.limit <= 0 || t.used() <= t.limit {
		return 0
	}
	var (
		start time.Time
		timer <-chan time.Time
	)
	for t.used() > t.limit {
		t.mu.Lock()
		busy, ended := t.rounds > 0, t.ended
		t.mu.Unlock()
		if !busy {
			break
		}
		if start.IsZero() {
			start = time.Now()
			tm := time.NewTimer(maxWait)
			defer tm.Stop()
			timer = tm.C
		}
		select {
		case <-ended:
			continue
		case <-timer:
		case <-ctx.Done():
		}
		break
	}
	if start.IsZero() {
		return 0 // nothing under way would free memory: no wait
	}
	d := time.Since(start)
	t.stalls.Add(1)
	t.stalledNs.Add(int64(d))
	return d
}

// ThrottleStats counts the waits.
type ThrottleStats struct {
	Stalls  int64         // waits that began over the limit
	Stalled time.Duration // their time
}

// Stats returns the counters.
func (t *Throttle) Stats() ThrottleStats {
	if t == nil {
		return ThrottleStats{}
	}
	return ThrottleStats{Stalls: t.stalls.Load(), Stalled: time.Duration(t.stalledNs.Load())}
}
