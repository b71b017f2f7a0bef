package sorter

import (
	"math/bits"
	"sync"

	"github.com/tistream/tistream/libs/workpool"
)

// The ranges are driven on one bounded worker pool per process (package
// workpool, --workers): the batches of an Ingest request for different
// ranges are applied in parallel (ingest.go), and a tenant's publish round
// stages and commits its ranges' flushes in parallel (publish.go). A task
// is keyed by its range, so a range's tasks run one at a time in the order
// they were submitted; a range's own lock (holder.mu) still guards its
// state, as it does for the holder's snapshots and seals, which stay on
// the holder's goroutine.
//
// Every caller submits a round of tasks and waits for that round only (the
// pool's Wait is process-wide). A task keeps its range's errors inside
// (logged, or the range dropped, as on the serial path) and returns nil,
// so one range's failure never stops the pool. No task submits to the
// pool, so a full pool only makes the submitters wait.

// queuedPerWorker bounds the unfinished tasks per worker (Submit blocks
// past it). Each submitter waits for its own round, so the queue never
// holds more than the open streams' requests' batches and the tenants'
// ranges; the bound only caps the queue's memory if that is large.
const queuedPerWorker = 64

// newWorkPool starts the worker pool.
func newWorkPool(workers int) (*workpool.Pool, error) {
	return workpool.New(workers, workers*queuedPerWorker)
}

// poolKey is the range's key in the worker pool. Two ranges may share a
// key (the tenant is mixed into 64 bits): their tasks then run one after
// the other, which costs parallelism but never breaks a range's order.
func (k rangeKey) poolKey() uint64 {
	return bits.RotateLeft64(k.tenant*0x9e3779b97f4a7c15, 32) ^ k.id
}

// round is one caller's tasks on the worker pool.
type round struct {
	work *workpool.Pool
	wg   sync.WaitGroup
}

func (s *Service) newRound() *round { return &round{work: s.work} }

// run queues task after the tasks queued for k's range. A pool that
// refuses it (closed: the service stopped while a stream was still
// applying) leaves it to run on the caller, as it did before the pool.
func (r *round) run(k rangeKey, task func()) {
	r.wg.Add(1)
	f := func() error {
		defer r.wg.Done()
		task()
		return nil
	}
	if r.work == nil || r.work.Submit(k.poolKey(), f) != nil {
		_ = f()
	}
}

// wait returns once every task of the round has run.
func (r *round) wait() { r.wg.Wait() }
