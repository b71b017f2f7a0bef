// Package gcpace bounds how far the Go heap may grow past its live data
// between two garbage collections.
//
// With GOGC=100 the collector lets the heap grow to twice what was live at
// the last collection. A sorter's live heap is a sawtooth: rows pile up in
// memory between flush rounds and are let go when a round is written. When
// the live heap was large at a collection (a round about to be written),
// the next collection waits until as much again has been allocated — by
// then the rows are long gone, and everything allocated in between went to
// pages the process had never touched. A page touched for the first time
// costs a page fault (measured at ~9 µs on a 2-vCPU Firecracker guest,
// docs/benchmarks.md), and those faults were the largest single cost of
// the sorter benchmark. The pacer caps the headroom instead: after every
// collection it sets GOGC so the next one comes after at most MaxHeadroom
// bytes of allocation (and never less than MinPercent of the live heap,
// so a large live heap does not make the collector run back to back).
// A small live heap keeps the GOGC the process started with.
package gcpace

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// Defaults.
const (
	DefaultMaxHeadroom = 128 << 20
	DefaultMinPercent  = 25
)

// Options of the pacer.
type Options struct {
	// MaxHeadroom bounds the allocation between two collections, in bytes
	// (default DefaultMaxHeadroom).
	MaxHeadroom int64
	// MinPercent is the lowest GOGC the pacer sets (default
	// DefaultMinPercent).
	MinPercent int
}

// Pacer adjusts GOGC after every collection until its last user releases
// it.
type Pacer struct {
	o       Options
	base    int // the GOGC the process had; the pacer never sets more
	stopped atomic.Bool
	mu      sync.Mutex
	percent int // what the pacer set last
	sample  []metrics.Sample
	// Adjustments counts changes of GOGC (tests, metrics).
	adjustments atomic.Int64
}

// The process has one pacer: GOGC is the process's. Services of one
// process share it (the first one's options hold) and the last release
// stops it.
var (
	procMu    sync.Mutex
	procUsers int
	proc      *Pacer
)

// Acquire starts the process's pacer with o, or shares the one already
// running. The pacer is nil (and nothing changes) while GOGC is off.
// release is never nil; the last release of a running pacer stops it
// and restores the GOGC the process had.
func Acquire(o Options) (p *Pacer, release func()) {
	procMu.Lock()
	defer procMu.Unlock()
	if procUsers == 0 {
		proc = start(o)
	}
	procUsers++
	p = proc
	var once sync.Once
	return p, func() {
		once.Do(func() {
			procMu.Lock()
			defer procMu.Unlock()
			if procUsers--; procUsers == 0 {
				proc.stop()
				proc = nil
			}
		})
	}
}

func start(o Options) *Pacer {
	if o.MaxHeadroom <= 0 {
		o.MaxHeadroom = DefaultMaxHeadroom
	}
	if o.MinPercent <= 0 {
		o.MinPercent = DefaultMinPercent
	}
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if base < 0 {
		return nil
	}
	p := &Pacer{o: o, base: base, percent: base,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	p.arm()
	return p
}

// stop stops adjusting and restores the process's GOGC.
func (p *Pacer) stop() {
	if p == nil || p.stopped.Swap(true) {
		return
	}
	p.mu.Lock()
	debug.SetGCPercent(p.base)
	p.percent = p.base
	p.mu.Unlock()
}

// Percent is the GOGC the pacer set last.
func (p *Pacer) Percent() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.percent
}

// Adjustments counts the times the pacer changed GOGC.
func (p *Pacer) Adjustments() int64 { return p.adjustments.Load() }

// sentinel is garbage the moment it is made; its finalizer runs after the
// collection that found it, which is how the pacer learns of each one.
// It is larger than the allocator's tiny objects (under 16 bytes, packed
// together, whose finalizers may never run).
type sentinel struct{ _ [32]byte }

func (p *Pacer) arm() {
	s := &sentinel{}
	runtime.SetFinalizer(s, func(*sentinel) {
		if p.stopped.Load() {
			return
		}
		p.adjust()
		p.arm()
	})
}

// adjust sets GOGC from the live heap of the collection that just ended.
func (p *Pacer) adjust() {
	metrics.Read(p.sample)
	if p.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	want := Percent(p.sample[0].Value.Uint64(), p.base, p.o)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped.Load() || want == p.percent {
		return
	}
	debug.SetGCPercent(want)
	p.percent = want
	p.adjustments.Add(1)
}

// Percent is the GOGC for a live heap of live bytes: base while base
// percent of it is within o.MaxHeadroom, else what allows o.MaxHeadroom,
// but not below o.MinPercent.
func Percent(live uint64, base int, o Options) int {
	if live == 0 || int64(live)*int64(base)/100 <= o.MaxHeadroom {
		return base
	}
	return max(min(base, int(o.MaxHeadroom*100/int64(live))), min(o.MinPercent, base))
}
