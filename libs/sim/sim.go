package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/truth"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// tickMs is the step of the simulated clock.
const tickMs = 10

// FileHook is called after each store change file is written (the fleet's
// upstream notification).
type FileHook func(ctx context.Context, key string, h *formatv1.StoreFileHeader) error

// Options are the simulator's outputs.
type Options struct {
	Store  objstore.Store // where data_change_buffer/ goes
	Truth  *truth.Writer  // nil = no truth file
	OnFile FileHook       // nil = none
	// OnTenant is called once per tenant after its schema snapshot is
	// written and before its first store file (the fleet's RegisterTenant).
	OnTenant func(ctx context.Context, cluster, tenant uint64) error
	// Progress, if set, is called about once per simulated second.
	Progress func(Stats)
}

// Sim is one simulation run.
type Sim struct {
	cfg  Config
	opts Options
	rng  *rand.Rand
	// rng2 draws the decisions added after the simulator's scenarios were
	// tuned (orphan rollbacks), so that a seed keeps its scenario.
	rng2 *rand.Rand
	ctx  context.Context

	now           int64 // simulated ms since start
	origin        int64 // physical ms at now == 0
	wallStart     time.Time
	tso           tso
	maxReadTs     uint64 // TiKV's max_ts: async/1PC commit_ts exceed it
	lastResolveTs uint64
	sched         scheduler

	tenants  []*tenant
	storeIDs []uint64
	stores   []storeState // by store index
	nextReg  uint64

	inflight int
	started  int
	stopGen  bool
	rowAcc   float64
	err      error // first failure inside an action

	stats Stats
}

// New checks cfg and prepares a run.
func New(cfg Config, opts Options) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Store == nil {
		return nil, errors.New("sim: no object store to write to")
	}
	return &Sim{cfg: cfg, opts: opts, rng: rand.New(rand.NewPCG(cfg.Seed, 0x7157e3a)),
		rng2: rand.New(rand.NewPCG(cfg.Seed, 0x7157e3b))}, nil
}

func (s *Sim) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// physNow is the physical clock in Unix ms.
func (s *Sim) physNow() int64 { return s.origin + s.now }

func (s *Sim) ts() uint64 { return s.tso.next(s.physNow()) }

// chance is true with probability tick/interval (a Poisson process with that mean interval).
func (s *Sim) chance(interval time.Duration) bool {
	if interval <= 0 {
		return false
	}
	return s.rng.Float64() < float64(tickMs)/float64(interval.Milliseconds())
}

// Run simulates until the configured duration or transaction count, lets
// every transaction finish, publishes a final resolved ts and returns the
// statistics. The truth file's end line is written last.
func (s *Sim) Run(ctx context.Context) (Stats, error) {
	s.ctx = ctx
	s.wallStart = time.Now()
	if s.cfg.Realtime {
		s.origin = s.wallStart.UnixMilli()
	} else {
		s.origin = s.cfg.StartTime.UnixMilli()
	}
	for i := range s.cfg.Stores {
		s.storeIDs = append(s.storeIDs, uint64(i+1))
	}
	s.initStores()
	if err := s.bootstrap(); err != nil {
		return s.stats, err
	}
	resolveMs := s.cfg.ResolveEvery.Milliseconds()
	flushMs := s.cfg.FlushInterval.Milliseconds()
	limit := s.cfg.Duration.Milliseconds() + s.cfg.LongTxnHold.Milliseconds() + 120_000
	for {
		s.now += tickMs
		if err := s.pace(); err != nil {
			return s.stats, err
		}
		if !s.stopGen {
			s.generate()
		}
		s.sched.runDue(s.now)
		if s.err != nil {
			return s.stats, s.err
		}
		flush := s.now%flushMs == 0
		done := s.stopGen && s.inflight == 0 && s.sched.empty()
		if s.now%resolveMs == 0 || flush || done {
			s.resolve()
		}
		if flush || done {
			if err := s.flush(); err != nil {
				return s.stats, err
			}
			if s.opts.Progress != nil {
				s.opts.Progress(s.snapshotStats())
			}
		}
		if done {
			break
		}
		if s.now > limit && !s.cfg.Realtime {
			return s.stats, fmt.Errorf("sim: %d transactions still running %s after the end of traffic", s.inflight, time.Duration(s.now-s.cfg.Duration.Milliseconds())*time.Millisecond)
		}
	}
	s.stats.FinalResolvedTs = s.lastResolveTs
	if s.opts.Truth != nil {
		if err := s.opts.Truth.WriteEnd(truth.End{ResolvedTs: s.stats.FinalResolvedTs}); err != nil {
			return s.stats, fmt.Errorf("write truth end: %w", err)
		}
		if err := s.opts.Truth.Flush(); err != nil {
			return s.stats, fmt.Errorf("flush truth: %w", err)
		}
	}
	return s.snapshotStats(), nil
}

// pace sleeps until the wall clock reaches the simulated clock (Realtime).
func (s *Sim) pace() error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	if !s.cfg.Realtime {
		return nil
	}
	wait := time.Until(s.wallStart.Add(time.Duration(s.now) * time.Millisecond))
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return s.ctx.Err()
	case <-t.C:
		return nil
	}
}

// generate starts this tick's new transactions, DDL and region changes.
func (s *Sim) generate() {
	if (s.cfg.Txns > 0 && s.started >= s.cfg.Txns) || (s.cfg.Txns == 0 && s.now > s.cfg.Duration.Milliseconds()) {
		s.stopGen = true
		return
	}
	// TiKV's max_ts moves with reads; a shared max_ts is what makes async
	// and 1PC commit_ts collide across transactions.
	if s.rng.IntN(5) == 0 {
		s.maxReadTs = max(s.maxReadTs, s.ts())
	}
	s.rowAcc += float64(s.cfg.RowsPerSec) * tickMs / 1000
	for s.rowAcc >= 1 && !s.stopGen {
		tn := s.tenants[s.rng.IntN(len(s.tenants))]
		n := 1 + s.rng.IntN(2*s.cfg.RowsPerTxn-1)
		if float64(n) > s.rowAcc && s.rowAcc < float64(s.cfg.RowsPerTxn) {
			n = int(s.rowAcc)
		}
		s.rowAcc -= float64(n)
		s.startDML(tn, n, txnOrdinary)
		if s.cfg.Txns > 0 && s.started >= s.cfg.Txns {
			s.stopGen = true
		}
	}
	for _, tn := range s.tenants {
		if s.chance(s.cfg.LargeTxnEvery) {
			s.startDML(tn, s.cfg.LargeTxnRows, txnLarge)
		}
		if s.chance(s.cfg.LongTxnEvery) {
			s.startDML(tn, 2+s.rng.IntN(4), txnLong)
		}
		if s.chance(s.cfg.DDLEvery) {
			s.startDDL(tn)
		}
		if s.chance(s.cfg.SplitEvery) {
			s.split(tn)
		}
		if s.chance(s.cfg.MergeEvery) {
			s.merge(tn)
		}
		if s.chance(s.cfg.TransferEvery) {
			s.transfer(tn)
		}
		if s.chance(s.cfg.PipelinedEvery) {
			s.startDML(tn, 2+s.rng.IntN(6), txnPipelined)
		}
	}
	if s.chance(s.cfg.CrashEvery) {
		s.planCrash()
	}
}

// flush cuts one change file per (tenant, store) and writes them.
func (s *Sim) flush() error {
	maxTs := s.ts()
	for _, tn := range s.tenants {
		for i, st := range tn.streams {
			if s.stores[i].down {
				continue // a crashed store uploads nothing
			}
			h := &formatv1.StoreFileHeader{
				ClusterId: s.cfg.ClusterID, TenantId: tn.id, MaxTs: maxTs,
				CreatedUnixMs: s.physNow(), Producer: s.cfg.Producer,
			}
			rows := st.rows
			b, err := st.cut(h)
			if err != nil {
				return fmt.Errorf("sim: encode store %d file %d: %w", st.storeID, st.seq, err)
			}
			if err := s.writeFile(tn, st, h, b); err != nil {
				return err
			}
			s.stats.Files++
			s.stats.Bytes += int64(len(b))
			s.stats.RowEvents += int64(rows)
		}
	}
	if s.cfg.CrashEvery > 0 {
		s.scheduleCrashes()
	}
	return nil
}

func (s *Sim) snapshotStats() Stats {
	st := s.stats
	st.SimTime = time.Duration(s.now) * time.Millisecond
	st.WallTime = time.Since(s.wallStart)
	st.Regions = 0
	for _, tn := range s.tenants {
		st.Regions += len(tn.regions.list)
	}
	st.Inflight = s.inflight
	return st
}
