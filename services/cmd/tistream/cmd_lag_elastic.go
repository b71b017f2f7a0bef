package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/truth"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	"github.com/tistream/tistream/services/metaserver"
	"github.com/tistream/tistream/services/sorter"
)

// Elasticity in `tistream lag` (docs/benchmarks.md, "Elasticity (issue
// 12)"): service flags for the meta-server (the autoscaler's bounds) and
// the sorters, a scale-down in the middle of the run (graceful stops, which
// drain), a timeline of the row lag and of each sorter's load and ranges,
// and a verification of the pulled rows against the simulator's truth.

// elasticOptions are the elasticity additions to a lag run.
type elasticOptions struct {
	MetaFlags   string        // meta-server flags, e.g. "--split-rows-per-sec=5000 --autoscale-interval=2s"
	SorterFlags string        // every sorter's flags, e.g. "--load-interval=2s"
	StopAt      time.Duration // from the sim's start: gracefully stop StopN sorters at once
	StopN       int
	Window      time.Duration // timeline window (0 = no timeline unless StopN > 0)
	Verify      bool          // compare the pulled rows with the truth (a digest of each side)
}

func (e *elasticOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&e.MetaFlags, "meta-flags", "", "meta-server flags, space separated (e.g. \"--split-rows-per-sec=5000 --autoscale-interval=2s\"; see `tistream run meta-server -h`)")
	fs.StringVar(&e.SorterFlags, "sorter-flags", "", "every sorter's flags, space separated (e.g. \"--load-interval=2s\")")
	fs.DurationVar(&e.StopAt, "stop-sorters-at", 0, "with --stop-sorters: when (from the sim's start) to stop the sorters")
	fs.IntVar(&e.StopN, "stop-sorters", 0, "gracefully stop the last N sorters at once at --stop-sorters-at (they drain: their ranges move away first); prints the lag before, during and after")
	fs.DurationVar(&e.Window, "timeline", 0, "print the row lag and each sorter's rows/s and ranges per window of this length (0 = none; 5s with --stop-sorters)")
	fs.BoolVar(&e.Verify, "verify", false, "verify the pulled rows against the simulator's truth: the same rows (table, key, start and commit ts, op, value), each once (costs CPU: the truth is encoded and decoded)")
}

// check reports a wrong setting, by its flag.
func (e *elasticOptions) check(sorters int) error {
	if _, err := serviceFlags(e.MetaFlags, e.SorterFlags); err != nil {
		return err
	}
	if e.StopN < 0 || e.StopN >= sorters {
		return fmt.Errorf("--stop-sorters must be between 0 and --sorters - 1 (%d), got %d", sorters-1, e.StopN)
	}
	if e.StopN > 0 && e.StopAt <= 0 {
		return errors.New("--stop-sorters needs a positive --stop-sorters-at")
	}
	if e.Window < 0 {
		return fmt.Errorf("--timeline must not be negative, got %s", e.Window)
	}
	if e.StopN > 0 && e.Window == 0 {
		e.Window = 5 * time.Second
	}
	return nil
}

// serviceFlags parses the meta-server and sorter flags onto a fleet
// configuration; with a nil config into defaults, to check them.
func serviceFlags(meta, sorterArgs string) (func(*fleetConfig) error, error) {
	parse := func(name, args string, register func(*flag.FlagSet)) error {
		if strings.TrimSpace(args) == "" {
			return nil
		}
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		register(fs)
		if err := fs.Parse(strings.Fields(args)); err != nil {
			return fmt.Errorf("--%s-flags: %w", name, err)
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("--%s-flags: unexpected argument %q", name, fs.Arg(0))
		}
		return nil
	}
	apply := func(c *fleetConfig) error {
		return errors.Join(parse("meta", meta, c.MetaServer.RegisterFlags), parse("sorter", sorterArgs, c.Sorter.RegisterFlags))
	}
	check := fleetConfig{MetaServer: metaserver.DefaultConfig(), Sorter: sorter.DefaultConfig()}
	if err := apply(&check); err != nil {
		return nil, err
	}
	return func(c *fleetConfig) error { return apply(c) }, nil
}

// tune is lagTune with the service flags applied after it.
func (o lagOptions) tune() func(*fleetConfig) {
	base := lagTune(o)
	apply, _ := serviceFlags(o.Elastic.MetaFlags, o.Elastic.SorterFlags) // checked by runLag
	return func(c *fleetConfig) {
		base(c)
		if apply != nil {
			_ = apply(c)
		}
	}
}

// elasticSample is the fleet's state at one instant.
type elasticSample struct {
	at      time.Time
	events  map[string]float64 // sorter name -> tistream_sorter_events_total
	ranges  map[string]float64 // sorter name -> tistream_sorter_ranges
	actions map[string]float64 // autoscaler action -> started, so far
	// every dispatcher's stream restarts so far, and the files those
	// restarts made the streams read again
	restarts, rereads float64
}

// rowAt is one pulled row: its commit time and lag.
type rowAt struct {
	commitMs int64
	lagMs    float64
}

// elasticRun records a lag run's timeline.
type elasticRun struct {
	o       elasticOptions
	sorters []string

	mu      sync.Mutex
	rows    []rowAt
	samples []elasticSample

	stopStart, stopEnd time.Time
	stopErr            error
	stopTook           map[string]time.Duration

	digest *rowDigest // pulled rows (--verify)
	truthD *rowDigest // truth rows (--verify)
	truthW *truth.Writer
	truthE chan error
	// closeTruth ends the truth stream once the simulator is done.
	closeTruth func() error
}

func newElasticRun(o lagOptions) *elasticRun {
	e := &elasticRun{o: o.Elastic, stopTook: map[string]time.Duration{}}
	for i := 1; i <= o.Sorters; i++ {
		e.sorters = append(e.sorters, "sorter-"+strconv.Itoa(i))
	}
	return e
}

func (e *elasticRun) timeline() bool { return e.o.Window > 0 }

// row records a pulled row (called from the pull's goroutine).
func (e *elasticRun) row(r *apiv1.RowChange, lagMs float64) {
	if e.timeline() {
		e.mu.Lock()
		e.rows = append(e.rows, rowAt{sim.PhysicalMs(r.CommitTs), lagMs})
		e.mu.Unlock()
	}
	if e.digest != nil {
		op := truth.OpPut
		if r.Op == apiv1.Op_OP_DELETE {
			op = truth.OpDelete
		}
		e.digest.add(r.TableId, r.Key, r.StartTs, r.CommitTs, op, r.Value)
	}
}

// truthSink returns the truth writer the simulator writes to with
// --verify (nil otherwise): its rows are decoded again, as a reader of the
// truth file would, into a digest.
func (e *elasticRun) truthSink() *truth.Writer {
	if !e.o.Verify {
		return nil
	}
	e.digest, e.truthD, e.truthE = &rowDigest{}, &rowDigest{}, make(chan error, 1)
	pr, pw := io.Pipe()
	e.truthW = truth.NewWriter(pw)
	go func() {
		r := truth.NewReader(pr, "truth")
		for {
			l, err := r.Next()
			if errors.Is(err, io.EOF) {
				e.truthE <- nil
				return
			}
			if err != nil {
				pr.CloseWithError(err)
				e.truthE <- err
				return
			}
			if l.Kind == truth.KindRow {
				e.truthD.add(l.Row.TableID, l.Row.Key, l.Row.StartTs, l.Row.CommitTs, l.Row.Op, l.Row.Value)
			}
		}
	}()
	e.closeTruth = func() error { return pw.Close() }
	return e.truthW
}

// verify compares the two digests once the simulator is done.
func (e *elasticRun) verify() error {
	if e.digest == nil {
		return nil
	}
	if err := e.closeTruth(); err != nil {
		return err
	}
	if err := <-e.truthE; err != nil {
		return fmt.Errorf("read the truth: %w", err)
	}
	d, t := e.digest.snapshot(), e.truthD.snapshot()
	if d != t {
		return fmt.Errorf("verify: pulled %d rows (digest %016x), the truth has %d (digest %016x)", d.n, d.sum, t.n, t.sum)
	}
	return nil
}

// rowDigest is an order-independent digest of a multiset of rows: their
// count and the sum of a 64-bit hash of each (a missing, extra, repeated
// or altered row changes it).
type rowDigest struct {
	mu  sync.Mutex
	n   int64
	sum uint64
}

type digestValue struct {
	n   int64
	sum uint64
}

func (d *rowDigest) add(table int64, key []byte, startTs, commitTs uint64, op string, value []byte) {
	h := fnv.New64a()
	var b [8]byte
	for _, v := range []uint64{uint64(table), startTs, commitTs, uint64(len(key)), uint64(len(value))} {
		for i := range b {
			b[i] = byte(v >> (8 * i))
		}
		h.Write(b[:])
	}
	h.Write(key)
	h.Write([]byte(op))
	h.Write(value)
	x := h.Sum64()
	x ^= x >> 31 // spread FNV's weak high bits before summing
	x *= 0x9E3779B97F4A7C15
	d.mu.Lock()
	d.n++
	d.sum += x
	d.mu.Unlock()
}

func (d *rowDigest) snapshot() digestValue {
	d.mu.Lock()
	defer d.mu.Unlock()
	return digestValue{d.n, d.sum}
}

// sample reads each sorter's and the meta-server's metrics from their
// registries (a stopped sorter keeps its last values).
func (e *elasticRun) sample(f *fleet, now time.Time) {
	s := elasticSample{at: now, events: map[string]float64{}, ranges: map[string]float64{}, actions: map[string]float64{}}
	for _, m := range f.members {
		if m.reg == nil {
			continue
		}
		isSorter := strings.HasPrefix(m.name, "sorter-")
		isDispatcher := strings.HasPrefix(m.name, "dispatcher-")
		if !isSorter && !isDispatcher && m.name != "meta-server" {
			continue
		}
		mfs, err := m.reg.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			switch {
			case isSorter && mf.GetName() == "tistream_sorter_events_total":
				s.events[m.name] = sumMetric(mf.GetMetric())
			case isSorter && mf.GetName() == "tistream_sorter_ranges":
				s.ranges[m.name] = sumMetric(mf.GetMetric())
			case isDispatcher && mf.GetName() == "tistream_dispatcher_stream_restarts_total":
				s.restarts += sumMetric(mf.GetMetric())
			case isDispatcher && mf.GetName() == "tistream_dispatcher_restart_reread_files":
				for _, x := range mf.GetMetric() {
					s.rereads += x.GetHistogram().GetSampleSum()
				}
			case mf.GetName() == "tistream_meta_autoscale_actions_total":
				for _, x := range mf.GetMetric() {
					var action, result string
					for _, l := range x.GetLabel() {
						switch l.GetName() {
						case "action":
							action = l.GetValue()
						case "result":
							result = l.GetValue()
						}
					}
					if result == "started" {
						s.actions[action] += x.GetCounter().GetValue()
					}
				}
			}
		}
	}
	e.mu.Lock()
	e.samples = append(e.samples, s)
	e.mu.Unlock()
}

func sumMetric(ms []*dto.Metric) float64 {
	v := 0.0
	for _, m := range ms {
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	return v
}

// watch samples every second until ctx ends, and stops the sorters at
// --stop-sorters-at.
func (e *elasticRun) watch(ctx context.Context, f *fleet, start time.Time, stopTimeout time.Duration, stderr io.Writer) {
	if !e.timeline() {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var stopAt <-chan time.Time
	if e.o.StopN > 0 {
		t := time.NewTimer(time.Until(start.Add(e.o.StopAt)))
		defer t.Stop()
		stopAt = t.C
	}
	e.sample(f, time.Now())
	for {
		select {
		case <-ctx.Done():
			e.sample(f, time.Now())
			return
		case now := <-tick.C:
			e.sample(f, now)
		case <-stopAt:
			go e.stopSorters(ctx, f, stopTimeout, stderr)
		}
	}
}

// stopSorters gracefully stops the last StopN sorters at once.
func (e *elasticRun) stopSorters(ctx context.Context, f *fleet, timeout time.Duration, stderr io.Writer) {
	names := e.sorters[len(e.sorters)-e.o.StopN:]
	e.mu.Lock()
	e.stopStart = time.Now()
	e.mu.Unlock()
	fmt.Fprintf(stderr, "lag: stopping %s (graceful: they drain)\n", strings.Join(names, ", "))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, m := range f.members {
		if !contains(names, m.name) {
			continue
		}
		wg.Add(1)
		go func(m member) {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
			defer cancel()
			t0 := time.Now()
			err := m.s.Stop(sctx)
			mu.Lock()
			defer mu.Unlock()
			e.stopTook[m.name] = time.Since(t0)
			if err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", m.name, err))
			}
		}(m)
	}
	wg.Wait()
	e.mu.Lock()
	e.stopEnd, e.stopErr = time.Now(), errors.Join(errs...)
	e.mu.Unlock()
	fmt.Fprintf(stderr, "lag: stopped %s in %s\n", strings.Join(names, ", "), e.stopEnd.Sub(e.stopStart).Round(time.Millisecond))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// window is a span of the run, by wall (and commit) time.
type window struct {
	name     string
	from, to time.Time
}

// stats are the row lags of rows committed in [from, to) and each
// sorter's events per second and ranges (at the end) over it.
func (e *elasticRun) stats(w window) (lags lagDist, rps map[string]float64, ranges map[string]float64, actions map[string]float64) {
	lo, hi := w.from.UnixMilli(), w.to.UnixMilli()
	for _, r := range e.rows {
		if r.commitMs >= lo && r.commitMs < hi {
			lags.add(r.lagMs)
		}
	}
	lags.sort()
	// the samples nearest the window's ends
	var a, b *elasticSample
	for i := range e.samples {
		s := &e.samples[i]
		if a == nil && !s.at.Before(w.from) {
			a = s
		}
		if !s.at.After(w.to) {
			b = s
		}
	}
	rps, ranges, actions = map[string]float64{}, map[string]float64{}, map[string]float64{}
	if a == nil || b == nil || !b.at.After(a.at) {
		return lags, nil, nil, nil
	}
	secs := b.at.Sub(a.at).Seconds()
	for _, n := range e.sorters {
		rps[n] = (b.events[n] - a.events[n]) / secs
		ranges[n] = b.ranges[n]
	}
	for k, v := range b.actions {
		actions[k] = v
	}
	actions["restarts"], actions["rereads"] = b.restarts, b.rereads
	return lags, rps, ranges, actions
}

// printElastic prints the timeline and, with a scale-down, the lag
// before, during and after it.
func (e *elasticRun) print(w io.Writer, start, warm, end time.Time) {
	if !e.timeline() {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	header := func(first string) {
		fmt.Fprintf(w, "| %s | rows | p50 ms | p99 ms | max ms |", first)
		for _, n := range e.sorters {
			fmt.Fprintf(w, " %s rows/s (ranges) |", n)
		}
		fmt.Fprintln(w, " splits / merges / moves+drains so far | dispatcher restarts / files re-read so far |")
		fmt.Fprint(w, "|---|---:|---:|---:|---:|")
		for range e.sorters {
			fmt.Fprint(w, "---:|")
		}
		fmt.Fprintln(w, "---:|---:|")
	}
	line := func(win window) {
		lags, rps, ranges, act := e.stats(win)
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s |", win.name, len(lags.ms), fmtMs(lags.q(.5)), fmtMs(lags.q(.99)), fmtMs(lags.q(1)))
		for _, n := range e.sorters {
			if rps == nil {
				fmt.Fprint(w, " - |")
				continue
			}
			fmt.Fprintf(w, " %.0f (%.0f) |", rps[n], ranges[n])
		}
		if rps == nil {
			fmt.Fprintln(w, " - | - |")
			return
		}
		fmt.Fprintf(w, " %.0f / %.0f / %.0f | %.0f / %.0f |\n", act["split"], act["merge"], act["move"]+act["drain"], act["restarts"], act["rereads"])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "timeline (by commit time for the lags, by wall time for the sorters' applied row events per second and ranges at the window's end; from the sim's start):\n\n")
	header("window")
	for from := start; from.Before(end); from = from.Add(e.o.Window) {
		to := from.Add(e.o.Window)
		if to.After(end) {
			to = end
		}
		line(window{fmt.Sprintf("%.0f–%.0f s", from.Sub(start).Seconds(), to.Sub(start).Seconds()), from, to})
	}
	if e.o.StopN > 0 {
		fmt.Fprintln(w)
		if e.stopStart.IsZero() {
			fmt.Fprintln(w, "scale-down: the sorters were not stopped (the run ended first)")
			return
		}
		stopEnd := e.stopEnd
		if stopEnd.IsZero() {
			stopEnd = end
		}
		took := make([]string, 0, len(e.stopTook))
		for n, d := range e.stopTook {
			took = append(took, fmt.Sprintf("%s %s", n, d.Round(time.Millisecond)))
		}
		sort.Strings(took)
		fmt.Fprintf(w, "scale-down: %d sorter(s) stopped gracefully at %.1f s, done at %.1f s (%s); error: %v\n\n",
			e.o.StopN, e.stopStart.Sub(start).Seconds(), stopEnd.Sub(start).Seconds(), strings.Join(took, ", "), e.stopErr)
		header("phase")
		line(window{"before (after the warm-up)", warm, e.stopStart})
		line(window{"during (stop called → stopped)", e.stopStart, stopEnd})
		line(window{"after", stopEnd, end})
	}
}
