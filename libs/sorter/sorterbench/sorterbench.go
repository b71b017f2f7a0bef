// Package sorterbench runs the standard sorter workload through TiStream's
// whole ordering core — route batches into sorter ranges (matcher,
// memory-first buffer, watermark map), publish them to a committed data
// pool on local disk — and reads every table back in order, timing the two
// phases separately. The ranges are driven by a bounded worker pool
// (package workpool): each range's applies and flush stages run in order,
// ranges in parallel with each other and with the feeding of the next
// batches; each flush round is one group publication of every range, as a
// sorter process writes it (package pool), encoded, written and fsynced on
// its own goroutine while the ranges go on applying; the output reads the
// tables in parallel too. The feeder passes the sorter's write stall
// (sorter.Throttle) before each batch, as a sorter's ingest does: it waits
// while the rows in memory pass the bound and a round is under way.
//
// RunBaseline runs the same rows through plain Pebble (package pebblebase),
// the yardstick every figure is compared with in the same run.
//
// The workload, so figures compare with other sorters: 1,000,000 rows over
// 64 tables (ids 100-163); transactions of exactly 10 rows in one table
// picked at random; transaction k commits at 1,000,000 + 10(k+1) and starts 5
// earlier; keys are TiDB record keys with random int handles; values are 256
// random bytes; all puts; 275 bytes a row. Rows are generated as they are
// fed, so the process's peak RSS is the core's, not the workload's.
package sorterbench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/offheap"
	"github.com/tistream/tistream/libs/pebblebase"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/procstat"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/sorter"
	"github.com/tistream/tistream/libs/tidbcodec"
	"github.com/tistream/tistream/libs/txnmatch"
	"github.com/tistream/tistream/libs/workpool"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// Workload constants.
const (
	Tables     = 64
	FirstTable = 100
	TxnRows    = 10
	ValueSize  = 256
	baseTs     = 1_000_000
	RowBytes   = 275 // key (19) + value (256)
)

// outputCacheBytes is the output's shared cache: what a lone puller takes
// for itself, not the api-server's 256 MiB, which would keep nearly all
// of a one-pass read's decoded rows for the collector to scan (measured:
// output 0.26-0.32 s at GOMAXPROCS 2 with 32 MiB, 0.52-0.81 s with 256).
const outputCacheBytes = 32 << 20

// filesInFlight bounds the batches ("store files") fed and not yet applied
// by every range.
const filesInFlight = 4

// Options of one run.
type Options struct {
	Rows       int           // default 1,000,000
	Pairs      bool          // feed PREWRITE + COMMIT pairs through the matcher instead of committed rows
	Dir        string        // scratch directory for Pebble and the pool (required)
	BatchRows  int           // rows per routed batch ("store file"), default 10,000
	FlushEvery time.Duration // how often every range flushes, default sorter.DefaultFlushInterval (200 ms, the sorter service's default flush_interval)
	// FlushBytes: a round comes sooner than FlushEvery once this many
	// bytes of rows were fed since the last one began, as a sorter's
	// (default sorter.DefaultFlushBytes, its flush_bytes; negative: the
	// interval alone).
	FlushBytes int64
	Seed       uint64
	// Workers drive the ranges (default sorter.DefaultWorkers). More workers than
	// cores let a worker wait for an fsync while the others compute.
	Workers int
	// MemoryBudget is the memory-first buffer's budget (default
	// sortbuf.DefaultMemoryBudget); Pebble takes what does not fit.
	MemoryBudget int64
	// WriteStallBytes: the feeder waits while the rows in memory pass it
	// and a flush round is under way, as the sorter service's ingest does
	// (sorter.Throttle; default sorter.DefaultWriteStallBytes, negative:
	// never waits).
	WriteStallBytes int64
	// AfterIngest and AfterOutput, if set, run after each phase (heap
	// profiles).
	AfterIngest, AfterOutput func()
}

func (o *Options) defaults() error {
	if o.Rows <= 0 {
		o.Rows = 1_000_000
	}
	if o.BatchRows <= 0 {
		o.BatchRows = 10_000
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = sorter.DefaultFlushInterval
	}
	if o.FlushBytes == 0 {
		o.FlushBytes = sorter.DefaultFlushBytes
	}
	if o.Workers <= 0 {
		o.Workers = sorter.DefaultWorkers()
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = sortbuf.DefaultMemoryBudget
	}
	if o.WriteStallBytes == 0 {
		o.WriteStallBytes = sorter.DefaultWriteStallBytes
	}
	if o.Dir == "" {
		return errors.New("sorterbench: a scratch directory is required")
	}
	// The pool is opened by a file:// URL, in which a relative path's
	// first element would read as a host name.
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return fmt.Errorf("sorterbench: scratch directory %q: %w", o.Dir, err)
	}
	o.Dir = abs
	return nil
}

// Result of one run. Allocations are the Go heap's, whole process.
type Result struct {
	Mode             string  `json:"mode"`
	Procs            int     `json:"procs"`
	Workers          int     `json:"workers,omitempty"`
	Rows             int     `json:"rows"`
	IngestSec        float64 `json:"ingest_sec"`
	OutputSec        float64 `json:"output_sec"`
	IngestCPUSec     float64 `json:"ingest_cpu_sec"`
	OutputCPUSec     float64 `json:"output_cpu_sec"`
	IngestAllocs     uint64  `json:"ingest_allocs"`
	IngestAllocBytes uint64  `json:"ingest_alloc_bytes"`
	OutputAllocs     uint64  `json:"output_allocs"`
	OutputAllocBytes uint64  `json:"output_alloc_bytes"`
	PeakRSSMiB       float64 `json:"peak_rss_mib"`
	// Warm: the process ran the workload once, untimed, before this run
	// (tistream bench --warm); PeakRSSMiB is then the peak of both.
	Warm    bool    `json:"warm,omitempty"`
	PoolMiB float64 `json:"pool_mib,omitempty"`
	Files   int     `json:"files,omitempty"`
	// ProcessCPUSec is the child process's whole CPU time, filled in by the
	// parent of a `tistream bench` run.
	ProcessCPUSec float64 `json:"-"`
	Flushes       int64   `json:"flushes,omitempty"` // range flushes that published
	Spills        int64   `json:"spills"`            // ranges the memory-first buffer moved to Pebble
	Stalls        int64   `json:"stalls,omitempty"`  // feeder waits for a flush round (write stall)
	StalledSec    float64 `json:"stalled_sec,omitempty"`
	// Pages is the page size the child's large buffers took ("huge" or
	// "small", offheap.Pages), filled in by `tistream bench --child`.
	Pages string `json:"pages,omitempty"`
}

func (r *Result) setPhases(ingest, output procstat.Phase) {
	r.IngestSec, r.IngestCPUSec = ingest.Wall.Seconds(), ingest.CPU.Seconds()
	r.IngestAllocs, r.IngestAllocBytes = ingest.Allocs, ingest.AllocBytes
	r.OutputSec, r.OutputCPUSec = output.Wall.Seconds(), output.CPU.Seconds()
	r.OutputAllocs, r.OutputAllocBytes = output.Allocs, output.AllocBytes
	r.PeakRSSMiB = procstat.PeakRSSMiB()
}

// Run executes one run of the ordering core in this process.
func Run(ctx context.Context, o Options) (Result, error) {
	if err := o.defaults(); err != nil {
		return Result{}, err
	}
	res := Result{Mode: "committed", Procs: runtime.GOMAXPROCS(0), Workers: o.Workers, Rows: o.Rows / TxnRows * TxnRows}
	if o.Pairs {
		res.Mode = "pairs"
	}
	store, group, err := openPool(ctx, o.Dir)
	if err != nil {
		return res, err
	}
	defer group.Close()
	engine, err := sortbuf.Open(o.Dir+"/sortbuf", sortbuf.DefaultConfig())
	if err != nil {
		return res, err
	}
	defer engine.Close()
	buffers, err := sortbuf.NewMemoryFirst(engine, o.MemoryBudget)
	if err != nil {
		return res, err
	}
	deps := sorter.Deps{Pool: store, Snapshots: store, Buffers: buffers, Budget: txnmatch.NewBudget(256 << 20), Owner: "bench",
		Group: func(uint64) (*pool.GroupWriter, error) { return group, nil }}
	ranges, table, err := setup(ctx, deps, store)
	if err != nil {
		return res, err
	}
	workers, err := workpool.New(o.Workers, len(ranges)*(filesInFlight+2))
	if err != nil {
		return res, err
	}
	defer workers.Close()

	throttle := sorter.NewThrottle(func() int64 { used, _, _ := buffers.Bytes(); return used }, max(o.WriteStallBytes, 0))
	g := newGenerator(o.Seed) // the workload's fixture, not timed (RunBaseline's alike)
	start := procstat.Begin()
	if err := ingest(ctx, o, g, workers, group, ranges, table, throttle); err != nil {
		return res, err
	}
	ingested := start.End()
	if o.AfterIngest != nil {
		o.AfterIngest()
	}

	if err := readBack(ctx, o, &res, ingested, workers, store); err != nil {
		return res, err
	}
	res.Spills = buffers.Metrics().Spills
	st := throttle.Stats()
	res.Stalls, res.StalledSec = st.Stalls, st.Stalled.Seconds()
	for _, r := range ranges {
		res.Flushes += r.Stats().Flushes
	}
	return res, nil
}

// readBack times the output phase (every table read back from the pool),
// runs the AfterOutput hook, checks that every row came back, and fills in
// the result's phases and pool figures.
func readBack(ctx context.Context, o Options, res *Result, ingested procstat.Phase, workers *workpool.Pool, store objstore.Store) error {
	start := procstat.Begin()
	n, err := output(ctx, workers, store)
	if err != nil {
		return err
	}
	res.setPhases(ingested, start.End())
	if o.AfterOutput != nil {
		o.AfterOutput()
	}
	if n != res.Rows {
		return fmt.Errorf("sorterbench: read back %d rows, wrote %d", n, res.Rows)
	}
	if res.Files, err = poolFiles(ctx, store); err != nil {
		return err
	}
	res.PoolMiB = dirMiB(o.Dir + "/pool")
	return nil
}

// RunBaseline writes the same rows to one plain Pebble instance
// (pebblebase) and reads them back, timing the two phases alike.
func RunBaseline(ctx context.Context, o Options) (Result, error) {
	if err := o.defaults(); err != nil {
		return Result{}, err
	}
	res := Result{Mode: "pebble", Procs: runtime.GOMAXPROCS(0), Rows: o.Rows / TxnRows * TxnRows}
	db, err := pebblebase.Open(o.Dir + "/pebble")
	if err != nil {
		return res, err
	}
	defer db.Close()
	g := newGenerator(o.Seed) // the workload's fixture, not timed (Run's alike)
	start := procstat.Begin()
	for k := 0; k < o.Rows/TxnRows; k++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		g.txn(k)
		for j := range g.keys {
			if err := db.Add(g.commit, g.commit-5, g.keys[j], g.vals[j]); err != nil {
				return res, err
			}
		}
	}
	if err := db.Finish(); err != nil {
		return res, err
	}
	ingested := start.End()
	start = procstat.Begin()
	if err := db.ReadAll(); err != nil {
		return res, err
	}
	res.setPhases(ingested, start.End())
	return res, nil
}

// generator makes the workload's transactions. Keys are appended to a slab
// the caller owns, so generating allocates nothing per row.
type generator struct {
	rng *rand.Rand
	// Values are 256 bytes at random offsets of a 16 MiB random pool: as
	// incompressible as fresh random bytes for any compressor window,
	// without timing a random generator as part of the sorter.
	values   []byte
	prefixes [][]byte // record key prefix of each table
	// The last transaction: its table index, commit ts, keys and values.
	table  int
	commit uint64
	keys   [TxnRows][]byte
	vals   [TxnRows][]byte
	slab   []byte
}

func newGenerator(seed uint64) *generator {
	g := &generator{rng: rand.New(rand.NewPCG(seed, 0x5eed)), values: make([]byte, 16<<20)}
	_, _ = rand.NewChaCha8([32]byte{byte(seed), 7}).Read(g.values)
	for t := 0; t < Tables; t++ {
		g.prefixes = append(g.prefixes, tidbcodec.TableRecordPrefix(int64(FirstTable+t)))
	}
	return g
}

// txn makes transaction k; its keys alias g.slab until it is replaced.
func (g *generator) txn(k int) {
	g.commit = uint64(baseTs + TxnRows*(k+1))
	g.table = g.rng.IntN(Tables)
	if cap(g.slab)-len(g.slab) < TxnRows*32 {
		g.slab = make([]byte, 0, 64<<10)
	}
	for j := 0; j < TxnRows; j++ {
		n := len(g.slab)
		g.slab = tidbcodec.EncodeInt(append(g.slab, g.prefixes[g.table]...), g.rng.Int64())
		g.keys[j] = g.slab[n:len(g.slab):len(g.slab)]
		off := g.rng.IntN(len(g.values) - ValueSize)
		g.vals[j] = g.values[off : off+ValueSize : off+ValueSize]
	}
}

// openPool opens the run's committed data pool on local disk and the
// group writer that publishes every range.
func openPool(ctx context.Context, dir string) (objstore.Store, *pool.GroupWriter, error) {
	store, err := objstore.Open(ctx, "file://"+dir+"/pool")
	if err != nil {
		return nil, nil, err
	}
	group, err := pool.NewGroupWriter(store, 1, pool.GroupID("bench", uint64(time.Now().UnixMilli())), "bench", pool.GroupOptions{})
	return store, group, err
}

// publishManifest publishes a manifest of one range per table.
func publishManifest(ctx context.Context, store objstore.Store) (*formatv1.Manifest, error) {
	m := &formatv1.Manifest{TenantId: 1, Version: 1, NextRangeId: Tables + 1}
	for i := 0; i < Tables; i++ {
		var start, end []byte
		if i > 0 {
			start = tidbcodec.TablePrefix(int64(FirstTable + i))
		}
		if i < Tables-1 {
			end = tidbcodec.TablePrefix(int64(FirstTable + i + 1))
		}
		m.Ranges = append(m.Ranges, &formatv1.RangeDescriptor{RangeId: uint64(i + 1), StartKey: start, EndKey: end,
			State: formatv1.RangeDescriptor_STATE_ACTIVE, OpenedAtTs: 1})
	}
	return m, pool.PublishManifest(ctx, store, m)
}

// setup publishes the manifest and opens the ranges, each with one
// bootstrap region covering it.
func setup(ctx context.Context, deps sorter.Deps, store objstore.Store) ([]*sorter.Range, *route.Table, error) {
	m, err := publishManifest(ctx, store)
	if err != nil {
		return nil, nil, err
	}
	var rts []route.Range
	for _, d := range m.Ranges {
		rts = append(rts, route.Range{ID: d.RangeId, Start: d.StartKey, End: d.EndKey})
	}
	table, err := route.NewTable(rts)
	if err != nil {
		return nil, nil, err
	}
	var ranges []*sorter.Range
	for _, d := range m.Ranges {
		r, err := sorter.Create(ctx, deps, pool.RangeSpec{Tenant: 1, RangeID: d.RangeId, Start: d.StartKey, End: d.EndKey, OpenedAt: 1}, 1)
		if err != nil {
			return nil, nil, err
		}
		ranges = append(ranges, r)
	}
	return ranges, table, nil
}

func bootstrap(i int, rt route.Range) route.Event {
	return route.Event{Kind: route.KindRegionStart, Inc: route.Ref{RegionID: uint64(i + 1), Version: 1, Term: 1}, Start: rt.Start, End: rt.End}
}

// file is one batch of the workload for every range (one "store file"),
// reused once every range applied it.
type file struct {
	rows    []cdcpb.Event_Row
	batches []route.Batch
	refs    [][]route.Ref // the resolved event's refs of each range
	keys    []byte
	left    atomic.Int32 // ranges still to apply it
}

// ingest feeds the workload in batches (one "store file" each) with a
// resolved ts at the end of each, publishes every range each FlushEvery of
// wall time or sooner once FlushBytes of rows were fed, as a sorter does,
// and once more at the end, when every table's
// resolved ts is reached and its rows are durable and readable in the pool.
// Each range's applies and flush stages are tasks of the worker pool, in
// order per range, in parallel across ranges and with the feeding; the
// publications are written by a publisher goroutine. Before each batch the
// feeder passes the write stall, as a sorter's ingest does.
func ingest(ctx context.Context, o Options, g *generator, workers *workpool.Pool, group *pool.GroupWriter, ranges []*sorter.Range, table *route.Table, throttle *sorter.Throttle) error {
	free := make(chan *file, filesInFlight)
	for i := 0; i < filesInFlight; i++ {
		f := &file{rows: offheap.WritePages(make([]cdcpb.Event_Row, 0, 2*o.BatchRows)), batches: make([]route.Batch, len(ranges)),
			refs: make([][]route.Ref, len(ranges))}
		for j := range f.refs {
			f.refs[j] = []route.Ref{{RegionID: uint64(j + 1), Version: 1, Term: 1}}
			// Room for twice a range's share of a batch, every page
			// written, as the router sizes a store file's batches.
			f.batches[j].Events = offheap.WritePages(make([]route.Event, 0, 2*o.BatchRows/len(ranges)+8))
		}
		free <- f
	}
	seq := uint64(0)
	var last uint64
	lastFlush := time.Now()
	var f *file
	next := func() {
		f = <-free
		f.rows = f.rows[:0]
		f.keys = f.keys[:0]
		for i := range f.batches {
			f.batches[i].RangeID = uint64(i + 1)
			f.batches[i].Events = f.batches[i].Events[:0]
		}
		if seq == 0 {
			for i, rt := range table.Ranges() {
				f.batches[i].Events = append(f.batches[i].Events, bootstrap(i, rt))
			}
		}
	}
	send := func() error {
		throttle.Wait(ctx, sorter.MaxWriteStall)
		seq++
		f.left.Store(int32(len(ranges)))
		for i := range ranges {
			b := &f.batches[i]
			b.Pos = route.Position{Store: 1, Seq: seq}
			b.Events = append(b.Events, route.Event{Kind: route.KindResolved, Refs: f.refs[i], Ts: last})
			r, sent := ranges[i], f
			if err := workers.Submit(uint64(i), func() error {
				err := r.Apply(b)
				clear(b.Events) // no pointers into the reused row slab
				if sent.left.Add(-1) == 0 {
					free <- sent
				}
				return err
			}); err != nil {
				return err
			}
		}
		return nil
	}
	pub := newPublisher(ctx, workers, group, ranges, throttle)
	defer pub.stop()
	next()
	pending := 0
	var fed int64 // bytes of rows fed since the last round was asked for
	for k := 0; k < o.Rows/TxnRows; k++ {
		g.txn(k)
		b := &f.batches[g.table]
		start := g.commit - 5
		for j := 0; j < TxnRows; j++ {
			n := len(f.keys)
			f.keys = append(f.keys, g.keys[j]...)
			key := f.keys[n:len(f.keys):len(f.keys)]
			if o.Pairs {
				fed += int64(2*len(key) + len(g.vals[j]))
				f.rows = append(f.rows, cdcpb.Event_Row{Type: cdcpb.Event_PREWRITE, OpType: cdcpb.Event_Row_PUT, Key: key, Value: g.vals[j], StartTs: start},
					cdcpb.Event_Row{Type: cdcpb.Event_COMMIT, OpType: cdcpb.Event_Row_PUT, Key: key, StartTs: start, CommitTs: g.commit})
				b.Events = append(b.Events, route.Event{Kind: route.KindRow, Row: &f.rows[len(f.rows)-2]}, route.Event{Kind: route.KindRow, Row: &f.rows[len(f.rows)-1]})
			} else {
				fed += int64(len(key) + len(g.vals[j]))
				f.rows = append(f.rows, cdcpb.Event_Row{Type: cdcpb.Event_COMMITTED, OpType: cdcpb.Event_Row_PUT, Key: key, Value: g.vals[j],
					StartTs: start, CommitTs: g.commit})
				b.Events = append(b.Events, route.Event{Kind: route.KindRow, Row: &f.rows[len(f.rows)-1]})
			}
		}
		last = g.commit
		pending += TxnRows
		if pending%o.BatchRows == 0 {
			if err := send(); err != nil {
				return err
			}
			if time.Since(lastFlush) >= o.FlushEvery || (o.FlushBytes > 0 && fed >= o.FlushBytes) {
				pub.tick()
				lastFlush, fed = time.Now(), 0
			}
			next()
		}
	}
	if err := send(); err != nil {
		return err
	}
	// A last round once every batch is applied: its stages follow the
	// applies on each range's worker queue.
	if err := pub.last(); err != nil {
		return err
	}
	if err := workers.Wait(); err != nil {
		return err
	}
	for _, r := range ranges {
		if r.Published() != last {
			return fmt.Errorf("sorterbench: a range published %d, want %d", r.Published(), last)
		}
	}
	return nil
}

// output reads every table back in commit order from the pool, the tables
// in parallel on the workers, as one api-server serves table pulls: one
// cache shared by all of them (each publication's index is read once, not
// once per table), of outputCacheBytes, and the api-server's entries and
// bytes per poll.
func output(ctx context.Context, workers *workpool.Pool, store objstore.Store) (int, error) {
	var rows atomic.Int64
	opts := pool.ReadOptions{Cache: pool.NewCache(outputCacheBytes), MaxEntriesPerPoll: pool.DefaultMaxEntriesPerPoll,
		MaxBytesPerPoll: pool.DefaultMaxBytesPerPoll, Releases: true}
	for t := int64(FirstTable); t < FirstTable+Tables; t++ {
		if err := workers.Submit(uint64(t), func() error {
			n, err := readTable(ctx, store, t, opts)
			rows.Add(int64(n))
			return err
		}); err != nil {
			return 0, err
		}
	}
	if err := workers.Wait(); err != nil {
		return 0, err
	}
	return int(rows.Load()), nil
}

func readTable(ctx context.Context, store objstore.Store, t int64, opts pool.ReadOptions) (int, error) {
	span := tidbcodec.TableSpan(t)
	p, err := pool.NewPullerWith(ctx, store, 1, span.Start, span.End, nil, 0, opts)
	if err != nil {
		return 0, err
	}
	var prev uint64
	rows := 0
	for {
		got, _, caughtUp, err := p.Poll(ctx)
		if err != nil {
			return rows, err
		}
		for i := range got {
			if got[i].CommitTs < prev {
				return rows, fmt.Errorf("sorterbench: table %d out of order", t)
			}
			prev = got[i].CommitTs
		}
		rows += len(got)
		p.Release() // as the api-server does once the rows are sent
		if caughtUp {
			return rows, nil
		}
	}
}

// publisher writes a flush round when ticked: every range stages its
// flush on its worker queue (after the batches already queued for it), one
// group publication takes them all, and every range commits its staged
// flush on its queue again. Rounds run one at a time on the publisher's
// goroutine, so the publication's encoding, write and fsync overlap the
// ranges' applies; ticks during a round are coalesced into the next one.
type publisher struct {
	ctx     context.Context
	workers *workpool.Pool
	group   *pool.GroupWriter
	ranges  []*sorter.Range
	ticks   chan chan error // a round; the channel, if any, gets its error
	done    chan struct{}
	err     error // of the last round, read after done or a round's reply
	// throttle learns when a round begins and when its commits are done.
	throttle *sorter.Throttle
}

func newPublisher(ctx context.Context, workers *workpool.Pool, group *pool.GroupWriter, ranges []*sorter.Range, throttle *sorter.Throttle) *publisher {
	p := &publisher{ctx: ctx, workers: workers, group: group, ranges: ranges, ticks: make(chan chan error, 1), done: make(chan struct{}),
		throttle: throttle}
	go p.loop()
	return p
}

// tick asks for a round unless one is already waiting.
func (p *publisher) tick() {
	select {
	case p.ticks <- nil:
	default:
	}
}

// last runs a round after everything submitted so far and waits for it.
func (p *publisher) last() error {
	reply := make(chan error, 1)
	p.ticks <- reply
	return <-reply
}

func (p *publisher) stop() {
	close(p.ticks)
	<-p.done
}

func (p *publisher) loop() {
	defer close(p.done)
	var failed error
	for reply := range p.ticks {
		if failed == nil {
			failed = p.round()
		}
		if reply != nil {
			reply <- failed
		}
	}
}

func (p *publisher) round() (err error) {
	p.throttle.Begin()
	var commits atomic.Int32 // the round is over for the throttle when its last commit ran
	commits.Store(1)
	end := func() {
		if commits.Add(-1) == 0 {
			p.throttle.End()
		}
	}
	defer end()
	staged := make([]*pool.Staged, len(p.ranges))
	var left atomic.Int32
	left.Store(int32(len(p.ranges)))
	prepared := make(chan struct{})
	for i, r := range p.ranges {
		if err := p.workers.Submit(uint64(i), func() error {
			st, err := r.Prepare(^uint64(0))
			staged[i] = st
			if left.Add(-1) == 0 {
				close(prepared)
			}
			return err
		}); err != nil {
			return err
		}
	}
	select {
	case <-prepared:
	case <-p.workers.Failed(): // the stages queued behind a failed task never run
		return p.workers.Wait()
	}
	var list []*pool.Staged
	for _, st := range staged {
		if st != nil {
			list = append(list, st)
		}
	}
	if _, err := p.group.Publish(p.ctx, list); err != nil {
		return err
	}
	for i, r := range p.ranges {
		if st := staged[i]; st != nil {
			commits.Add(1)
			if err := p.workers.Submit(uint64(i), func() error {
				defer end()
				return r.Commit(st)
			}); err != nil {
				end()
				return err
			}
		}
	}
	return nil
}

// poolFiles counts the pool's objects holding rows: publications and
// segments.
func poolFiles(ctx context.Context, store objstore.Store) (int, error) {
	objs, err := objstore.ListAll(ctx, store, "committed_data_pool/", "")
	if err != nil {
		return 0, err
	}
	files := 0
	for _, o := range objs {
		if strings.Contains(o.Key, "/pub/") || strings.Contains(o.Key, "/seg/") || strings.Contains(o.Key, "/data/") {
			files++
		}
	}
	return files, nil
}

func dirMiB(dir string) float64 {
	var total int64
	_ = walk(dir, func(size int64) { total += size })
	return float64(total) / (1 << 20)
}
