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

// pendingRollbacks are the (start_ts, key) whose prewrite must be dropped
// on arrival: rollbacks whose prewrite has not arrived (value 0), and
// commits dropped as late (DropCommit; value: their commit_ts).
//
// A rollback is used up by the prewrite it meets and forgotten by Forget
// once the range's input is past its start_ts. A dropped commit is kept
// for every prewrite of its (key, start_ts) that may still come (re-sent
// ones, pipelined generations) until Forget passes its commit_ts: see
// DropCommit for why its start_ts is not enough.
type pendingRollbacks struct {
	byTxn map[uint64]map[string]uint64
	n     int
}

func newPendingRollbacks() pendingRollbacks {
	return pendingRollbacks{byTxn: make(map[uint64]map[string]uint64)}
}

// add records a rollback (commitTs 0) or a dropped commit and reports
// whether the entry is new. A dropped commit replaces a rollback; a
// rollback leaves a dropped commit as it is.
func (p *pendingRollbacks) add(startTs uint64, key string, commitTs uint64) bool {
	m := p.byTxn[startTs]
	if m == nil {
		m = make(map[string]uint64)
		p.byTxn[startTs] = m
	}
	old, ok := m[key]
	if !ok || (old == 0 && commitTs != 0) {
		m[key] = commitTs
	}
	if ok {
		return false
	}
	p.n++
	return true
}

// meet is a prewrite of (start_ts, key) arriving: it reports whether the
// prewrite is to be dropped, and whether that used up a rollback (a
// dropped commit stays).
func (p *pendingRollbacks) meet(startTs uint64, key []byte) (drop, usedUp bool) {
	c, ok := p.byTxn[startTs][string(key)]
	if ok && c == 0 {
		p.remove(startTs, key)
	}
	return ok, ok && c == 0
}

// remove reports whether there was such an entry.
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

// dropBelow forgets the rollbacks with start_ts < ts and the dropped
// commits with commit_ts <= ts, and returns the bytes they were charged.
func (p *pendingRollbacks) dropBelow(ts uint64) (bytes int64) {
	for startTs, keys := range p.byTxn {
		if startTs >= ts {
			continue
		}
		for k, c := range keys {
			if c > ts {
				continue
			}
			bytes += rollbackSize(len(k))
			delete(keys, k)
			p.n--
		}
		if len(keys) == 0 {
			delete(p.byTxn, startTs)
		}
	}
	return bytes
}
