// Package capture turns what an embedded TiDB's unistore applies into the
// store change line protocol (libs/formats/storeline): per store, region
// incarnations with predecessors, Percolator rows as TiKV's CDC emits them,
// resolved ts following TiKV's rule, and a cut per flush interval.
package capture

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	us "github.com/pingcap/tidb/pkg/store/mockstore/unistore/tikv"
	"github.com/tistream/tistream/libs/formats/storeline"
)

// Config tunes a capture.
type Config struct {
	FlushInterval time.Duration // one file per store per interval
	// ChaosEvery, when > 0, runs one region operation of the model —
	// leader transfer, merge or split, at random — that often.
	ChaosEvery time.Duration
	Seed       int64
	// NoConcurrencyManager turns off the in-memory locks of async-commit
	// and 1PC prewrites (the TiKV max_ts trap's guard), for the test
	// that shows why it is needed (SetConcurrencyManager at run time).
	NoConcurrencyManager bool
	// OnlyConcurrencyManager keeps the hijacker's in-memory locks (which
	// unistore lacks and TiKV has) but observes nothing: the baseline the
	// capture's overhead is measured against.
	OnlyConcurrencyManager bool
}

// Capture observes one unistore and writes its stores' streams.
type Capture struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	armed   bool
	locks   map[string]*lockEnt
	mem     map[*memTxn]struct{} // async-commit and 1PC prewrites in flight
	regions regionSet
	stores  []uint64
	bufs    map[uint64]*storeBuf
	nextID  uint64
	rng     *rand.Rand
	recent  [][]byte // recently written keys, split points for chaos splits
	stats   Stats
	failed  error

	out  chan []storeline.Line
	noCM atomic.Bool
	// commitDelay, for tests only, holds every batch that commits this long
	// between the store's write and the capture seeing it: it widens the
	// window the concurrency manager closes.
	commitDelay atomic.Int64
}

// lockEnt mirrors unistore's lock of a key.
type lockEnt struct {
	startTs uint64
	op      kvrpcpb.Op
	value   []byte // for Put locks: replayed as a PREWRITE when the stream starts
}

// real says whether a lock writes a value: TiKV's CDC emits PREWRITE rows
// only for Put and Delete locks (not for Lock, from SELECT FOR UPDATE, nor
// pessimistic locks).
func real(op kvrpcpb.Op) bool { return op == kvrpcpb.Op_Put || op == kvrpcpb.Op_Del }

// New returns a capture; Install it through the mockstore's client hijacker.
func New(cfg Config, log *slog.Logger) *Capture {
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	c := &Capture{cfg: cfg, log: log, locks: make(map[string]*lockEnt), mem: make(map[*memTxn]struct{}),
		bufs: make(map[uint64]*storeBuf), rng: rand.New(rand.NewSource(cfg.Seed)), out: make(chan []storeline.Line, 256)}
	c.noCM.Store(cfg.NoConcurrencyManager)
	return c
}

// SetConcurrencyManager turns the in-memory locks on or off (tests).
func (c *Capture) SetConcurrencyManager(on bool) { c.noCM.Store(!on) }

// SetCommitDelay sets the test-only delay of committing batches.
func (c *Capture) SetCommitDelay(d time.Duration) { c.commitDelay.Store(int64(d)) }

// tso takes a timestamp from the mock PD's clock, the one TiDB uses.
func tso() uint64 {
	p, l := us.GetTS()
	return uint64(p)<<18 | uint64(l)
}

// Batches are the lines of each cut, in order, for the caller to write.
func (c *Capture) Batches() <-chan []storeline.Line { return c.out }

// Err is the first failure of the capture, if any.
func (c *Capture) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

func (c *Capture) fail(err error) {
	if c.failed == nil {
		c.failed = err
		c.log.Error("capture failed", "err", err)
	}
}

func (c *Capture) writeFailed(err error) {
	c.mu.Lock()
	c.stats.WriteErrors++
	c.mu.Unlock()
	c.log.Warn("store write failed", "err", err)
}

func (c *Capture) deleteRange(start, end []byte) {
	c.mu.Lock()
	c.stats.DeleteRanges++
	c.mu.Unlock()
	c.log.Info("raw delete range (not in the stream, as in TiKV)", "start", fmt.Sprintf("%x", start), "end", fmt.Sprintf("%x", end))
}

// apply takes the writes of one batch the store applied, in order: the
// lock model follows the store's lock table, and once the stream has
// started, each write becomes the row TiKV's CDC would emit for it.
func (c *Capture) apply(startTs, commitTs uint64, ops []applied) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range ops {
		a := &ops[i]
		k := string(a.key)
		prev := c.locks[k]
		switch a.kind {
		case opPrewrite:
			c.locks[k] = &lockEnt{startTs: startTs, op: a.lockOp, value: a.value}
			if real(a.lockOp) {
				c.emit(a.key, storeline.Row{Type: storeline.RowPrewrite, Op: opName(a.lockOp), StartTs: startTs, Key: a.key, Value: a.value})
			}
		case opCommit:
			delete(c.locks, k)
			if !real(a.lockOp) {
				continue // Lock and pessimistic locks commit nothing TiKV's CDC emits
			}
			if prev != nil && prev.startTs == startTs && real(prev.op) {
				c.emit(a.key, storeline.Row{Type: storeline.RowCommit, Op: opName(a.lockOp), StartTs: startTs, CommitTs: commitTs, Key: a.key})
			} else {
				// No prewritten lock: 1PC (or a pessimistic lock committed
				// in one phase), complete in itself.
				c.emit(a.key, storeline.Row{Type: storeline.RowCommitted, Op: opName(a.lockOp), StartTs: startTs, CommitTs: commitTs, Key: a.key, Value: a.value})
			}
		case opRollback:
			if a.delLock && prev != nil && prev.startTs == startTs {
				delete(c.locks, k)
			}
			c.emit(a.key, storeline.Row{Type: storeline.RowRollback, StartTs: startTs, Key: a.key})
		case opLockRewrite:
			c.locks[k] = &lockEnt{startTs: startTs, op: a.lockOp, value: a.value}
			if real(a.lockOp) {
				// A heartbeat or a pushed min_commit_ts rewrites the lock;
				// TiKV's CDC emits it again, with the value when it is
				// short enough to live in the lock (255 bytes), else empty.
				c.stats.LockRefreshes++
				r := storeline.Row{Type: storeline.RowPrewrite, Op: opName(a.lockOp), StartTs: startTs, Key: a.key}
				if len(a.value) <= 255 {
					r.Value = a.value
				}
				c.emit(a.key, r)
			}
		case opLockDelete:
			if prev != nil && prev.startTs == startTs {
				delete(c.locks, k)
			}
		}
	}
}

func opName(op kvrpcpb.Op) string {
	if op == kvrpcpb.Op_Del {
		return storeline.OpDelete
	}
	return storeline.OpPut
}

// emit appends a row to the stream of the leader of the key's region.
func (c *Capture) emit(key []byte, r storeline.Row) {
	if !c.armed {
		return
	}
	reg := c.regions.lookup(key)
	if floor := reg.floorAt(key); r.CommitTs != 0 && r.CommitTs <= floor {
		// The spec's resolved ts rule broken: a reader may already have
		// published past this commit.
		c.stats.Violations++
		c.log.Error("commit at or below a published resolved ts", "region", reg.id, "commit_ts", r.CommitTs,
			"resolved", floor, "start_ts", r.StartTs, "type", r.Type)
	}
	c.bufs[reg.leader].addRow(reg.id, r)
	c.stats.count(r.Type)
	if len(c.recent) < 64 {
		c.recent = append(c.recent, key)
	} else {
		c.recent[c.rng.Intn(len(c.recent))] = key
	}
}

// Stats returns the capture's counters.
func (c *Capture) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.CheckTxnStatus = make(map[string]int64, len(c.stats.CheckTxnStatus))
	for k, v := range c.stats.CheckTxnStatus {
		s.CheckTxnStatus[k] = v
	}
	s.Regions = len(c.regions.list)
	s.Locks = len(c.locks)
	return s
}

var errNotArmed = errors.New("capture: the stream has not started")

// sortedStores is the store ids in order, for deterministic output.
func (c *Capture) sortedStores() []uint64 {
	s := append([]uint64(nil), c.stores...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

// TSO takes a timestamp from the mock PD's clock.
func TSO() uint64 { return tso() }

// LockInfo describes a lock of the capture's model.
type LockInfo struct {
	Key     string `json:"key"` // hex
	StartTs uint64 `json:"start_ts"`
	Op      string `json:"op"`
}

// OldestLocks lists up to n locks of the model, oldest first: what holds
// the resolved ts back.
func (c *Capture) OldestLocks(n int) []LockInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]LockInfo, 0, len(c.locks))
	for k, l := range c.locks {
		out = append(out, LockInfo{Key: fmt.Sprintf("%x", k), StartTs: l.startTs, Op: l.op.String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartTs < out[j].StartTs })
	return out[:min(n, len(out))]
}

// LocksBefore lists the keys of the model's locks (pessimistic ones
// included) whose start_ts is below ts.
func (c *Capture) LocksBefore(ts uint64) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]byte
	for k, l := range c.locks {
		if l.startTs < ts {
			out = append(out, []byte(k))
		}
	}
	return out
}

// CountStaleResolved counts locks handed to the lock resolver because they
// held a region's resolved ts back.
func (c *Capture) CountStaleResolved(n int) {
	c.mu.Lock()
	c.stats.StaleLocksResolved += int64(n)
	c.mu.Unlock()
}
