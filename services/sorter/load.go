package sorter

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/procstat"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/tidbcodec"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Load reporting (docs/fleet.md, "Automatic split, merge and balance"):
// every --load-interval the sorter publishes, in its WorkerInfo, the rows
// and bytes per second each held range applied over the interval, the share
// of a core its applies and flushes took, the bytes it published to the
// pool per second, what it holds (sort buffer and matcher bytes), a split
// key proposed from a reservoir sample of the interval's row keys, and
// whether the range is catching up; and the process's CPU share and
// resident set. The meta-server's autoscaler splits,
// merges and moves ranges from these. A graceful stop first drains: the
// WorkerInfo says draining, the meta-server moves the ranges away, and the
// sorter exits once it holds none (or half its stop timeout has passed).

// sampleSize is the reservoir of row keys kept per range per interval: the
// median of 64 uniform samples splits the rows within about ±6% (one
// standard deviation) of the half, which is as close as a split needs.
const sampleSize = 64

// catchUpLag: a range whose published watermark lags the newest file it
// received (the files' max commit ts, physical part) by more than this is
// catching up, and the meta-server neither splits nor moves it.
const catchUpLag = 5 * time.Second

// keySampler keeps a uniform sample of at most sampleSize keys of one
// interval (Vitter's algorithm R) with a cheap deterministic generator.
type keySampler struct {
	keys [][]byte
	seen uint64
	rnd  uint64
}

func (k *keySampler) observe(key []byte) {
	k.seen++
	if len(k.keys) < sampleSize {
		k.keys = append(k.keys, bytes.Clone(key))
		return
	}
	// xorshift64*: quality is irrelevant here, cost is not.
	if k.rnd == 0 {
		k.rnd = 0x9E3779B97F4A7C15
	}
	k.rnd ^= k.rnd >> 12
	k.rnd ^= k.rnd << 25
	k.rnd ^= k.rnd >> 27
	if j := (k.rnd * 0x2545F4914F6CDD1D) % k.seen; j < sampleSize {
		k.keys[j] = append(k.keys[j][:0], key...)
	}
}

func (k *keySampler) reset() { k.keys, k.seen = k.keys[:0], 0 }

// minSplitSample: fewer sampled keys propose no split key.
const minSplitSample = 8

// splitKey proposes a key strictly inside [start, end) (end empty =
// unbounded) with sampled keys on both sides: when the sample spans
// tables, the table boundary (tidbcodec.TablePrefix) nearest to halving it
// if it leaves at least a quarter of the sample on each side (a table is
// better not cut); otherwise the sample's median (so one hot table among
// cold ones is itself cut). nil when no such key exists.
func splitKey(sample [][]byte, start, end []byte) []byte {
	in := make([][]byte, 0, len(sample))
	for _, k := range sample {
		if bytes.Compare(k, start) >= 0 && (len(end) == 0 || bytes.Compare(k, end) < 0) {
			in = append(in, k)
		}
	}
	if len(in) < minSplitSample {
		return nil
	}
	slices.SortFunc(in, bytes.Compare)
	below := func(p []byte) int { // sampled keys below p
		n, _ := slices.BinarySearchFunc(in, p, bytes.Compare)
		return n
	}
	valid := func(p []byte) bool {
		n := below(p)
		return n > 0 && n < len(in) && bytes.Compare(p, start) > 0 && (len(end) == 0 || bytes.Compare(p, end) < 0)
	}
	half := len(in) / 2
	var best []byte
	score := func(p []byte) int { return abs(below(p) - half) }
	if first, last := tableOf(in[0]), tableOf(in[len(in)-1]); first != last {
		// Boundaries of the tables the sample touches: the start of each
		// table after the first one sampled.
		seen := map[int64]bool{}
		for _, k := range in {
			t := tableOf(k)
			if t == noTable || seen[t] {
				continue
			}
			seen[t] = true
			if p := tidbcodec.TablePrefix(t); valid(p) && (best == nil || score(p) < score(best)) {
				best = p
			}
		}
		if n := below(best); best != nil && min(n, len(in)-n) >= len(in)/4 {
			return best
		}
	}
	// The median, or the next larger sampled key when many equal it.
	p := in[half]
	if below(p) == 0 {
		i, _ := slices.BinarySearchFunc(in, append(bytes.Clone(p), 0), bytes.Compare)
		if i >= len(in) {
			return nil
		}
		p = in[i]
	}
	if !valid(p) {
		return nil
	}
	return bytes.Clone(p)
}

const noTable = int64(-1 << 63)

// tableOf is the table id of a key, noTable for a key outside the tables.
func tableOf(k []byte) int64 {
	id, err := tidbcodec.DecodeTableID(k)
	if err != nil {
		return noTable
	}
	return id
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// loadTracker is one held range's measurement of the current interval. It
// has its own lock so that the load report never waits for a range busy
// with the pool (h.mu).
type loadTracker struct {
	mu     sync.Mutex
	rows   int64
	bytes  int64
	maxTs  uint64 // newest file max ts received
	sample keySampler
	// busy is the wall time spent applying batches and staging and
	// committing flushes; published the data file bytes published.
	busy      time.Duration
	published int64
	// catchingUp and memory as last measured, kept when h.mu was busy.
	catchingUp bool
	memory     uint64
	since      time.Time // start of the interval (the holder's creation for the first)
	measured   bool      // an interval has been measured
}

// restart begins the range's first interval again at now, when it is
// taken: what came before (waiting for the take, restoring its snapshot)
// is not its load.
func (l *loadTracker) restart(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.begin(now, false)
}

// begin starts an interval at now with nothing counted; measured says
// whether one was measured before it. l.mu is held.
func (l *loadTracker) begin(now time.Time, measured bool) {
	l.rows, l.bytes, l.busy, l.published, l.since, l.measured = 0, 0, 0, 0, now, measured
	l.sample.reset()
}

// young reports whether the range's first interval is still shorter than
// minAge: a rate over a few seconds of a range just taken (a restart's catch-up,
// a move's first batches) says little about its load, so it is not
// reported yet, and the meta-server holds its balance moves meanwhile, as
// for any range whose owner has not reported it (docs/operations.md).
func (l *loadTracker) young(now time.Time, minAge time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.measured && now.Sub(l.since) < minAge
}

// spent adds the wall time of an apply or a flush step since start, and
// the bytes it published.
func (l *loadTracker) spent(start time.Time, published int) {
	d := time.Since(start)
	l.mu.Lock()
	l.busy += d
	l.published += int64(published)
	l.mu.Unlock()
}

// observe counts one applied batch's rows and samples their keys; it
// returns the batch's bytes of rows.
func (l *loadTracker) observe(maxTs uint64, evs []route.Event) (bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maxTs = max(l.maxTs, maxTs)
	for i := range evs {
		row := evs[i].Row
		if evs[i].Kind != route.KindRow || row == nil {
			continue
		}
		l.rows++
		bytes += int64(len(row.Key) + len(row.Value) + len(row.OldValue))
		l.sample.observe(row.Key)
	}
	l.bytes += bytes
	return bytes
}

// loadReporter is the sorter's load and drain state.
type loadReporter struct {
	draining   atomic.Bool
	rows       *prometheus.GaugeVec // tenant, range
	bytes      *prometheus.GaugeVec // tenant, range
	cpu        *prometheus.GaugeVec // tenant, range
	memory     *prometheus.GaugeVec // tenant, range
	poolBytes  *prometheus.GaugeVec // tenant, range
	drainingG  prometheus.Gauge
	lastEvents int64
	lastCPU    time.Duration // the process's CPU time at lastAt
	lastAt     time.Time
}

func (lr *loadReporter) init(reg prometheus.Registerer) {
	f := promauto.With(reg)
	perRange := func(name, help string) *prometheus.GaugeVec {
		return f.NewGaugeVec(prometheus.GaugeOpts{Name: "tistream_sorter_range_" + name, Help: help}, []string{"tenant", "range"})
	}
	lr.rows = perRange("rows_per_second", "Row events applied per second by each held range over the last --load-interval (what the meta-server's autoscaler sees).")
	lr.bytes = perRange("bytes_per_second", "Key and value bytes of the row events applied per second by each held range over the last --load-interval.")
	lr.cpu = perRange("cpu_share", "Wall time spent applying each held range's batches and staging and committing its flushes, per second over the last --load-interval: the share of one core the range costs.")
	lr.memory = perRange("memory_bytes", "What each held range holds at the last --load-interval: its sort buffer's buffered row payload plus its transaction matcher's share of the memory budget.")
	lr.poolBytes = perRange("pool_bytes_per_second", "Committed data file bytes each held range published to the pool per second over the last --load-interval.")
	lr.drainingG = f.NewGauge(prometheus.GaugeOpts{Name: "tistream_sorter_draining",
		Help: "1 while the sorter drains (graceful stop: waits for its ranges to move away)."})
}

// measure ends the interval of a range and returns its load; h.mu is
// taken only if free (the catching-up state and the bytes held of a busy
// range are the last ones measured).
func (h *holder) measure(now time.Time) *metav1.RangeLoad {
	l := &h.load
	l.mu.Lock()
	secs := now.Sub(l.since).Seconds()
	if l.since.IsZero() || secs <= 0 {
		secs = h.s.cfg.LoadInterval.Seconds()
	}
	rows, byts, maxTs, busy, published := l.rows, l.bytes, l.maxTs, l.busy, l.published
	sample := slices.Clone(l.sample.keys)
	l.begin(now, true)
	catching, memory := l.catchingUp, l.memory
	l.mu.Unlock()

	t := h.task.Load()
	if h.mu.TryLock() {
		memory = 0
		if h.r != nil {
			memory = uint64(max(h.r.Buffer().Bytes, 0) + max(h.r.Matcher().Bytes, 0))
		}
		switch {
		case h.r == nil:
			catching = true // not taken (yet)
		case h.stall.cause != "":
			catching = true
		default:
			pub := h.r.Published()
			catching = maxTs > pub && time.Duration(int64(maxTs>>18)-int64(pub>>18))*time.Millisecond > catchUpLag
		}
		h.mu.Unlock()
		l.mu.Lock()
		l.catchingUp, l.memory = catching, memory
		l.mu.Unlock()
	}
	rl := &metav1.RangeLoad{TenantId: h.key.tenant, RangeId: h.key.id, Epoch: h.epoch,
		RowsPerSec: float64(rows) / secs, BytesPerSec: float64(byts) / secs, CatchingUp: catching,
		MemoryBytes: memory, CpuShare: busy.Seconds() / secs, PoolBytesPerSec: float64(published) / secs}
	if t != nil {
		rl.SplitKey = splitKey(sample, t.StartKey, t.EndKey)
	}
	return rl
}

// publishLoad measures the interval that ends now and republishes the
// WorkerInfo: the total events per second (load, as before), each held
// range's load, and the draining flag.
func (s *Service) publishLoad(ctx context.Context, reg *etcdx.Registration, now time.Time) {
	lr := &s.ld
	n, cpu := s.events.Load(), procstat.CPU()
	load, cpuShare := 0.0, 0.0
	if secs := now.Sub(lr.lastAt).Seconds(); !lr.lastAt.IsZero() && secs > 0 {
		load = float64(n-lr.lastEvents) / secs
		cpuShare = max(cpu-lr.lastCPU, 0).Seconds() / secs
	}
	lr.lastEvents, lr.lastCPU, lr.lastAt = n, cpu, now
	rss := procstat.RSSBytes()
	s.mu.Lock()
	held := make([]*holder, 0, len(s.holders))
	for _, h := range s.holders {
		held = append(held, h)
	}
	s.mu.Unlock()
	loads := make([]*metav1.RangeLoad, 0, len(held))
	gauges := []*prometheus.GaugeVec{lr.rows, lr.bytes, lr.cpu, lr.memory, lr.poolBytes}
	for _, g := range gauges {
		g.Reset()
	}
	for _, h := range held {
		if h.load.young(now, s.cfg.LoadInterval/2) {
			continue // reported at the next interval, over both
		}
		rl := h.measure(now)
		loads = append(loads, rl)
		t, r := strconv.FormatUint(rl.TenantId, 10), strconv.FormatUint(rl.RangeId, 10)
		for i, v := range []float64{rl.RowsPerSec, rl.BytesPerSec, rl.CpuShare, float64(rl.MemoryBytes), rl.PoolBytesPerSec} {
			gauges[i].WithLabelValues(t, r).Set(v)
		}
	}
	slices.SortFunc(loads, func(a, b *metav1.RangeLoad) int {
		return cmp.Or(cmp.Compare(a.TenantId, b.TenantId), cmp.Compare(a.RangeId, b.RangeId))
	})
	err := reg.Update(ctx, func(info *metav1.WorkerInfo) {
		info.Load, info.Ranges, info.Draining = load, loads, lr.draining.Load()
		info.LoadIntervalMs = s.cfg.LoadInterval.Milliseconds()
		info.ProcessCpuShare, info.RssBytes = cpuShare, rss
	})
	if err != nil && ctx.Err() == nil {
		s.log.Warn("publish load", "err", err)
	}
}

// drainPoll is how often a draining sorter looks whether its ranges left.
const drainPoll = 100 * time.Millisecond

// drain, at a graceful stop: publish draining and wait until every range
// has moved away, for at most half the stop timeout (the rest is for
// releasing what is left). It does not wait when no other live sorter
// could take the ranges.
func (s *Service) drain(ctx context.Context) {
	reg := s.worker.Get()
	if reg == nil || s.holding() == 0 {
		return
	}
	if !s.othersAlive(ctx) {
		s.log.Info("not draining: no other live sorter to take the ranges")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StopTimeout/2)
	defer cancel()
	s.ld.draining.Store(true)
	s.ld.drainingG.Set(1)
	defer s.ld.drainingG.Set(0)
	start := time.Now()
	s.log.Info("draining: waiting for the ranges to move away", "ranges", s.holding(), "at_most", s.cfg.StopTimeout/2)
	if err := reg.Update(ctx, func(info *metav1.WorkerInfo) { info.Draining = true }); err != nil {
		s.log.Warn("publish draining", "err", err)
		return
	}
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		n := s.holding()
		if n == 0 {
			s.log.Info("drained", "in", time.Since(start).Round(time.Millisecond))
			return
		}
		select {
		case <-ctx.Done():
			s.log.Warn("drain incomplete: stopping with ranges still held", "ranges", n, "after", time.Since(start).Round(time.Millisecond))
			return
		case <-reg.Done():
			return
		case <-tick.C:
		}
	}
}

// holding is the number of ranges held.
func (s *Service) holding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.holders)
}

// othersAlive reports whether another sorter that is not draining is
// registered.
func (s *Service) othersAlive(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	all, _, err := etcdx.ListProto(ctx, s.etcd, etcdx.WorkerPrefix(metav1.WorkerKind_WORKER_KIND_SORTER), func() *metav1.WorkerInfo { return &metav1.WorkerInfo{} })
	if err != nil {
		return false
	}
	for _, w := range all {
		if w.Id != s.cfg.ID && !w.Draining {
			return true
		}
	}
	return false
}
