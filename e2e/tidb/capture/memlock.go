package capture

import (
	"bytes"
	"sort"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/tikv/client-go/v2/tikvrpc"
)

// memTxn is an async-commit or 1PC prewrite in flight: TiKV's
// concurrency manager holds an in-memory lock on its keys from before it
// computes the commit ts until the locks (or, for 1PC, the commits) are
// written.
//
// Unistore takes such a transaction's min_commit_ts from a fresh TSO
// inside the prewrite, before its locks are visible, and has no in-memory
// lock (its own TODO). Two things break without one:
//
//   - the capture's resolved ts: one taken after that TSO but published
//     before the write lets the commit land at or below it (the max_ts
//     trap of the issue); so no region publishes a resolved ts at or above
//     the start_ts of a prewrite in flight;
//   - snapshot isolation of TiDB itself: a read at a ts above the TSO that
//     does not see the lock yet misses a write that commits below its ts,
//     and an optimistic transaction built on that read loses an update
//     (the bank's balances drifted from their sum); so a read of a key of
//     a prewrite in flight whose start_ts is at or below the read's ts
//     waits until the prewrite has landed, then reads the lock, as a TiKV
//     read meeting a memory lock would.
type memTxn struct {
	startTs uint64
	keys    [][]byte // sorted
	done    chan struct{}
}

func (c *Capture) memLock(startTs uint64, keys [][]byte) *memTxn {
	if c.noCM.Load() {
		return nil
	}
	t := &memTxn{startTs: startTs, keys: make([][]byte, len(keys)), done: make(chan struct{})}
	copy(t.keys, keys)
	sort.Slice(t.keys, func(i, j int) bool { return bytes.Compare(t.keys[i], t.keys[j]) < 0 })
	c.mu.Lock()
	c.mem[t] = struct{}{}
	c.mu.Unlock()
	return t
}

func (c *Capture) memUnlock(t *memTxn) {
	if t == nil {
		return
	}
	c.mu.Lock()
	delete(c.mem, t)
	c.mu.Unlock()
	close(t.done)
}

// waitMemLocks blocks a read at version of the given keys and ranges
// while a prewrite in flight with start_ts <= version holds one of them.
func (c *Capture) waitMemLocks(version uint64, keys [][]byte, ranges []keyRange) {
	for {
		var wait chan struct{}
		c.mu.Lock()
		for t := range c.mem {
			if t.startTs <= version && t.overlaps(keys, ranges) {
				wait = t.done
				c.stats.ReadsWaited++
				break
			}
		}
		c.mu.Unlock()
		if wait == nil {
			return
		}
		<-wait
	}
}

type keyRange struct{ start, end []byte } // end empty = unbounded

func (t *memTxn) overlaps(keys [][]byte, ranges []keyRange) bool {
	for _, k := range keys {
		i := sort.Search(len(t.keys), func(i int) bool { return bytes.Compare(t.keys[i], k) >= 0 })
		if i < len(t.keys) && bytes.Equal(t.keys[i], k) {
			return true
		}
	}
	for _, r := range ranges {
		i := sort.Search(len(t.keys), func(i int) bool { return bytes.Compare(t.keys[i], r.start) >= 0 })
		if i < len(t.keys) && (len(r.end) == 0 || bytes.Compare(t.keys[i], r.end) < 0) {
			return true
		}
	}
	return false
}

// readOf is what a read request reads: its version, keys and ranges; ok
// false for requests that read nothing at a version.
func readOf(req *tikvrpc.Request) (version uint64, keys [][]byte, ranges []keyRange, ok bool) {
	switch req.Type {
	case tikvrpc.CmdGet:
		g := req.Get()
		return g.Version, [][]byte{g.Key}, nil, true
	case tikvrpc.CmdBatchGet:
		g := req.BatchGet()
		return g.Version, g.Keys, nil, true
	case tikvrpc.CmdScan:
		s := req.Scan()
		if s.Reverse {
			return s.Version, nil, []keyRange{{start: s.EndKey, end: s.StartKey}}, true
		}
		return s.Version, nil, []keyRange{{start: s.StartKey, end: s.EndKey}}, true
	case tikvrpc.CmdCop, tikvrpc.CmdCopStream:
		cop := req.Cop()
		return cop.StartTs, nil, copRanges(cop.Ranges), true
	}
	return 0, nil, nil, false
}

func copRanges(rs []*coprocessor.KeyRange) []keyRange {
	out := make([]keyRange, len(rs))
	for i, r := range rs {
		out[i] = keyRange{start: r.Start, end: r.End}
	}
	return out
}
