// Package workpool runs tasks keyed by an id — a sorter range — on a fixed
// number of goroutines: the tasks of one key run one at a time, in the order
// they were submitted, and tasks of different keys run in parallel. There is
// no goroutine per key: a key with work waits in a ready queue for the next
// free worker, so any number of ranges share the workers as they need them,
// and a worker blocked in I/O (a pool file's fsync) leaves the others to the
// CPU. Submit blocks while MaxQueued tasks are unfinished, so a producer
// cannot run ahead of the workers without bound.
//
// A task's error stops the pool: later tasks are skipped, Submit and Wait
// return the error. Pipelines that stop at the first error (a benchmark, a
// replay) use it as is; a service keeps each range's errors inside its
// tasks.
package workpool

import (
	"errors"
	"fmt"
	"sync"
)

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("workpool: closed")

// Pool is a bounded set of workers running per-key ordered tasks. Its
// methods are safe for concurrent use, but a task must not Submit to its own
// pool (it could wait for itself).
type Pool struct {
	workers, maxQueued int

	mu     sync.Mutex
	work   sync.Cond // a key is ready, or the pool closes
	space  sync.Cond // a task finished: room to submit
	idle   sync.Cond // nothing unfinished
	keys   map[uint64]*keyQueue
	ready  []*keyQueue // keys with a task to run and none running, FIFO
	free   []*keyQueue
	queued int // submitted and not finished
	err    error
	failed chan struct{} // closed with the first error
	closed bool
	done   sync.WaitGroup
}

// keyQueue is one key's tasks; it is in Pool.keys while it has tasks
// queued or running.
type keyQueue struct {
	key   uint64
	tasks []func() error
	head  int
}

// New starts workers goroutines; Submit blocks while maxQueued tasks are
// unfinished.
func New(workers, maxQueued int) (*Pool, error) {
	if workers < 1 || maxQueued < 1 {
		return nil, fmt.Errorf("workpool: need at least one worker and one queued task, got %d and %d", workers, maxQueued)
	}
	p := &Pool{workers: workers, maxQueued: maxQueued, keys: map[uint64]*keyQueue{}, failed: make(chan struct{})}
	p.work.L, p.space.L, p.idle.L = &p.mu, &p.mu, &p.mu
	p.done.Add(workers)
	for i := 0; i < workers; i++ {
		go p.worker()
	}
	return p, nil
}

// Workers is the number of worker goroutines.
func (p *Pool) Workers() int { return p.workers }

// Submit queues task after the tasks already queued for key. It returns the
// pool's error (the task is then not queued) or ErrClosed.
func (p *Pool) Submit(key uint64, task func() error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.queued >= p.maxQueued && p.err == nil && !p.closed {
		p.space.Wait()
	}
	if p.closed {
		return ErrClosed
	}
	if p.err != nil {
		return p.err
	}
	p.queued++
	q := p.keys[key]
	if q == nil {
		if n := len(p.free); n > 0 {
			q, p.free = p.free[n-1], p.free[:n-1]
		} else {
			q = &keyQueue{}
		}
		q.key = key
		p.keys[key] = q
		p.ready = append(p.ready, q)
		p.work.Signal()
	}
	// Otherwise q is ready or running, and its worker requeues it.
	q.tasks = append(q.tasks, task)
	return nil
}

// Failed is closed when a task fails: the tasks queued behind it will not
// run, so whoever waits for one of them waits for this too.
func (p *Pool) Failed() <-chan struct{} { return p.failed }

// Wait blocks until every task submitted so far has finished (or was
// skipped after an error) and returns the first task error.
func (p *Pool) Wait() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.queued > 0 {
		p.idle.Wait()
	}
	return p.err
}

// Close waits for the submitted tasks, stops the workers and returns the
// first task error.
func (p *Pool) Close() error {
	err := p.Wait()
	p.mu.Lock()
	p.closed = true
	p.work.Broadcast()
	p.space.Broadcast()
	p.mu.Unlock()
	p.done.Wait()
	return err
}

func (p *Pool) worker() {
	defer p.done.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for len(p.ready) == 0 && !p.closed {
			p.work.Wait()
		}
		if len(p.ready) == 0 {
			return
		}
		q := p.ready[0]
		p.ready[0] = nil
		p.ready = p.ready[1:]
		task := q.tasks[q.head]
		q.tasks[q.head] = nil
		q.head++
		skip := p.err != nil
		p.mu.Unlock()
		var err error
		if !skip {
			err = task()
		}
		p.mu.Lock()
		if err != nil && p.err == nil {
			p.err = err
			close(p.failed)
			p.space.Broadcast() // blocked submitters return the error
		}
		p.queued--
		p.space.Signal()
		if q.head < len(q.tasks) {
			p.ready = append(p.ready, q) // behind the other ready keys: fair
			p.work.Signal()
		} else {
			delete(p.keys, q.key)
			q.tasks, q.head = q.tasks[:0], 0
			p.free = append(p.free, q)
		}
		if p.queued == 0 {
			p.idle.Broadcast()
		}
	}
}
