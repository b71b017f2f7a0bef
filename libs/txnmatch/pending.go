package txnmatch

import (
	"container/heap"

	"github.com/tistream/tistream/libs/sortbuf"
)

// pendingCommit is a commit whose prewrite has not arrived, or, in the
// correction index, a commit already matched (see corrections.go).
type pendingCommit struct {
	key      string
	startTs  uint64
	commitTs uint64
	op       sortbuf.Op
	rank     rank // correction index only: the rank of the prewrite emitted
	idx      int  // position in the heap
}

// pendingCommits indexes commits by (start_ts, key) and keeps them in a
// min-heap by commit_ts, so MinPendingCommit is O(1), adding or removing
// one O(log n), and Forget O(log n) per entry it drops. It holds the
// waiting commits, and (a second instance) the correction index.
type pendingCommits struct {
	byTxn map[uint64]map[string]*pendingCommit
	heap  commitHeap
}

func newPendingCommits() pendingCommits {
	return pendingCommits{byTxn: make(map[uint64]map[string]*pendingCommit)}
}

func (p *pendingCommits) get(startTs uint64, key []byte) *pendingCommit {
	return p.byTxn[startTs][string(key)]
}

func (p *pendingCommits) add(c *pendingCommit) {
	m := p.byTxn[c.startTs]
	if m == nil {
		m = make(map[string]*pendingCommit)
		p.byTxn[c.startTs] = m
	}
	m[c.key] = c
	heap.Push(&p.heap, c)
}

func (p *pendingCommits) remove(c *pendingCommit) {
	m := p.byTxn[c.startTs]
	delete(m, c.key)
	if len(m) == 0 {
		delete(p.byTxn, c.startTs)
	}
	heap.Remove(&p.heap, c.idx)
}

func (p *pendingCommits) min() uint64 {
	if len(p.heap) == 0 {
		return 0
	}
	return p.heap[0].commitTs
}

func (p *pendingCommits) len() int { return len(p.heap) }

type commitHeap []*pendingCommit

func (h commitHeap) Len() int { return len(h) }
func (h commitHeap) Less(i, j int) bool {
	return h[i].commitTs < h[j].commitTs
}
func (h commitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}
func (h *commitHeap) Push(x any) {
	c := x.(*pendingCommit)
	c.idx = len(*h)
	*h = append(*h, c)
}
func (h *commitHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return c
}

// pendingRollbacks are rollbacks whose prewrite has not arrived, by
// (start_ts, key).
type pendingRollbacks struct {
	byTxn map[uint64]map[string]struct{}
	n     int
}

func newPendingRollbacks() pendingRollbacks {
	return pendingRollbacks{byTxn: make(map[uint64]map[string]struct{})}
}

func (p *pendingRollbacks) has(startTs uint64, key []byte) bool {
	_, ok := p.byTxn[startTs][string(key)]
	return ok
}

// add reports whether the rollback was new.
func (p *pendingRollbacks) add(startTs uint64, key string) bool {
	m := p.byTxn[startTs]
	if m == nil {
		m = make(map[string]struct{})
		p.byTxn[startTs] = m
	}
	if _, ok := m[key]; ok {
		return false
	}
	m[key] = struct{}{}
	p.n++
	return true
}

// remove reports whether there was such a rollback.
func (p *pendingRollbacks) remove(startTs uint64, key []byte) bool {
	m := p.byTxn[startTs]
	if _, ok := m[string(key)]; !ok {
		return false
	}
	delete(m, string(key))
	if len(m) == 0 {
		delete(p.byTxn, startTs)
	}
	p.n--
	return true
}

// dropBelow forgets the rollbacks with start_ts < ts and returns the bytes
// they were charged.
func (p *pendingRollbacks) dropBelow(ts uint64) (bytes int64) {
	for startTs, keys := range p.byTxn {
		if startTs >= ts {
			continue
		}
		for k := range keys {
			bytes += rollbackSize(len(k))
		}
		p.n -= len(keys)
		delete(p.byTxn, startTs)
	}
	return bytes
}
