package dispatcher

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// replayCache keeps the bytes of the store files a stream read and routed
// past its checkpoint, so the run after a restart (a routing change, a
// refusal, a broken Ingest stream) routes them again from memory instead of
// listing and reading them from the buffer again (issue 12: a split's or
// move's restart re-read 10–25 files per store, because the checkpoint
// moves only at the sorters' snapshots).
//
// It is only a cache of what the buffer holds: a file is put only once it
// decoded, passed the name checks and routed, a stream's files are
// immutable until the garbage collection deletes them behind the
// checkpoint, and a file at or below the checkpoint is dropped (trim) before
// the run reads on. So a run reads exactly the bytes it would read from the
// buffer, and a process that dies loses nothing but the cache. A file that
// does not fit the dispatcher-wide budget (Config.ReplayCacheBytes) is not
// kept: the next run reads it from the buffer, as before. A stream holds at
// most the files past its checkpoint, i.e. at most MaxInFlight of them (the
// window holds every file past the checkpoint).
//
// Used by the stream's loop goroutine, and trimmed also by its
// checkpointer (so a stream waiting for its next file gives the bytes back
// as its checkpoint passes them); the budget is shared.
type replayCache struct {
	budget *replayBudget
	mu     sync.Mutex
	files  map[uint64]cachedFile
	bytes  int64
}

// cachedFile is a store file as the run read it: its object key (the one
// picked among identical duplicates) and its bytes.
type cachedFile struct {
	key  string
	data []byte
}

// replayBudget bounds the bytes every stream of one dispatcher keeps.
type replayBudget struct {
	limit int64
	used  atomic.Int64
	gauge prometheus.Gauge
}

func newReplayBudget(limit int64, gauge prometheus.Gauge) *replayBudget {
	return &replayBudget{limit: limit, gauge: gauge}
}

// take reserves n bytes if they fit.
func (b *replayBudget) take(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			b.gauge.Set(float64(used + n))
			return true
		}
	}
}

func (b *replayBudget) give(n int64) {
	if n != 0 {
		b.gauge.Set(float64(b.used.Add(-n)))
	}
}

func newReplayCache(b *replayBudget) *replayCache {
	return &replayCache{budget: b, files: map[uint64]cachedFile{}}
}

// get returns file seq if it is kept.
func (c *replayCache) get(seq uint64) (cachedFile, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.files[seq]
	return f, ok
}

// put keeps file seq if the budget allows.
func (c *replayCache) put(seq uint64, key string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.files[seq]; ok {
		return
	}
	n := int64(len(data))
	if !c.budget.take(n) {
		return
	}
	c.files[seq] = cachedFile{key: key, data: data}
	c.bytes += n
}

// trim drops the files at or below the checkpoint: no run reads them again.
func (c *replayCache) trim(ckpt uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var freed int64
	for seq, f := range c.files {
		if seq <= ckpt {
			freed += int64(len(f.data))
			delete(c.files, seq)
		}
	}
	c.bytes -= freed
	c.budget.give(freed)
}

// clear drops every file (the stream stops, or a file was found bad: an
// operator may replace files in the buffer, docs/bad-input.md).
func (c *replayCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.budget.give(c.bytes)
	c.bytes = 0
	clear(c.files)
}
