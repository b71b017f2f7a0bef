// Package sorterbench runs the standard sorter workload through TiStream's
// whole ordering core — route batches into sorter ranges (matcher, Pebble
// buffer, watermark map), flush to a committed data pool on local disk —
// and reads every table back in order, timing the two phases separately.
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
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/sorter"
	"github.com/tistream/tistream/libs/tidbcodec"
	"github.com/tistream/tistream/libs/txnmatch"
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

// Options of one run.
type Options struct {
	Rows       int           // default 1,000,000
	Pairs      bool          // feed PREWRITE + COMMIT pairs through the matcher instead of committed rows
	Dir        string        // scratch directory for Pebble and the pool (required)
	BatchRows  int           // rows per routed batch ("store file"), default 10,000
	FlushEvery time.Duration // how often every range flushes, default 1 s (TiStream's cadence)
	Seed       uint64
	// AfterIngest, if set, runs between the phases (heap profiles).
	AfterIngest func()
}

// Result of one run.
type Result struct {
	Mode       string  `json:"mode"`
	Procs      int     `json:"procs"`
	Rows       int     `json:"rows"`
	IngestSec  float64 `json:"ingest_sec"`
	OutputSec  float64 `json:"output_sec"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	PoolMiB    float64 `json:"pool_mib"`
	Files      int     `json:"files"`
}

// Run executes one run in this process.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Rows <= 0 {
		o.Rows = 1_000_000
	}
	if o.BatchRows <= 0 {
		o.BatchRows = 10_000
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = time.Second
	}
	if o.Dir == "" {
		return Result{}, errors.New("sorterbench: a scratch directory is required")
	}
	res := Result{Mode: "committed", Procs: runtime.GOMAXPROCS(0), Rows: o.Rows / TxnRows * TxnRows}
	if o.Pairs {
		res.Mode = "prewrite+commit"
	}
	store, err := objstore.Open(ctx, "file://"+o.Dir+"/pool")
	if err != nil {
		return res, err
	}
	engine, err := sortbuf.Open(o.Dir+"/sortbuf", sortbuf.DefaultConfig())
	if err != nil {
		return res, err
	}
	defer engine.Close()
	deps := sorter.Deps{Pool: store, Snapshots: store, Buffers: engine, Budget: txnmatch.NewBudget(256 << 20), Owner: "bench"}
	ranges, table, err := setup(ctx, deps, store)
	if err != nil {
		return res, err
	}

	start := time.Now()
	if err := ingest(ctx, o, ranges, table); err != nil {
		return res, err
	}
	res.IngestSec = time.Since(start).Seconds()
	if o.AfterIngest != nil {
		o.AfterIngest()
	}

	start = time.Now()
	n, files, err := output(ctx, store)
	if err != nil {
		return res, err
	}
	res.OutputSec = time.Since(start).Seconds()
	if n != res.Rows {
		return res, fmt.Errorf("sorterbench: read back %d rows, wrote %d", n, res.Rows)
	}
	res.Files = files
	res.PeakRSSMiB = peakRSSMiB()
	res.PoolMiB = dirMiB(o.Dir + "/pool")
	return res, nil
}

// setup publishes a manifest of one range per table and opens the ranges,
// each with one bootstrap region covering it.
func setup(ctx context.Context, deps sorter.Deps, store objstore.Store) ([]*sorter.Range, *route.Table, error) {
	m := &formatv1.Manifest{TenantId: 1, Version: 1, NextRangeId: Tables + 1}
	var rts []route.Range
	for i := 0; i < Tables; i++ {
		var start, end []byte
		if i > 0 {
			start = tidbcodec.TablePrefix(int64(FirstTable + i))
		}
		if i < Tables-1 {
			end = tidbcodec.TablePrefix(int64(FirstTable + i + 1))
		}
		id := uint64(i + 1)
		m.Ranges = append(m.Ranges, &formatv1.RangeDescriptor{RangeId: id, StartKey: start, EndKey: end,
			State: formatv1.RangeDescriptor_STATE_ACTIVE, OpenedAtTs: 1})
		rts = append(rts, route.Range{ID: id, Start: start, End: end})
	}
	if err := pool.PublishManifest(ctx, store, m); err != nil {
		return nil, nil, err
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

// ingest feeds the workload in batches (one "store file" each), publishes
// resolved ts after every batch, flushes every range each FlushEvery of wall
// time as a sorter does, and once more at the end, when every table's
// resolved ts is reached and its rows are durable and readable in the pool.
func ingest(ctx context.Context, o Options, ranges []*sorter.Range, table *route.Table) error {
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	// Values are 256 bytes at random offsets of a 16 MiB random pool: as
	// incompressible as fresh random bytes for any compressor window, without
	// timing a random generator as part of the sorter.
	values := make([]byte, 16<<20)
	_, _ = rand.NewChaCha8([32]byte{byte(o.Seed), 7}).Read(values)
	rows := make([]cdcpb.Event_Row, 0, 2*o.BatchRows)
	batches := make([]route.Batch, len(ranges))
	for i, rt := range table.Ranges() {
		batches[i] = route.Batch{RangeID: rt.ID, Events: []route.Event{bootstrap(i, rt)}}
	}
	txns := o.Rows / TxnRows
	seq := uint64(0)
	var last uint64
	pending := 0
	lastFlush := time.Now()
	send := func() error {
		seq++
		for i := range batches {
			b := &batches[i]
			b.Pos = route.Position{Store: 1, Seq: seq}
			b.Events = append(b.Events, route.Event{Kind: route.KindResolved, Refs: []route.Ref{{RegionID: uint64(i + 1), Version: 1, Term: 1}}, Ts: last})
			if err := ranges[i].Apply(b); err != nil {
				return err
			}
			clear(b.Events) // drop pointers into the old row slab so it can be freed
			b.Events = b.Events[:0]
		}
		return nil
	}
	for k := 0; k < txns; k++ {
		commit := uint64(baseTs + TxnRows*(k+1))
		tbl := int64(FirstTable + rng.IntN(Tables))
		b := &batches[tbl-FirstTable]
		for j := 0; j < TxnRows; j++ {
			key := tidbcodec.EncodeRecordKey(tbl, rng.Int64())
			off := rng.IntN(len(values) - ValueSize)
			val := values[off : off+ValueSize : off+ValueSize]
			if o.Pairs {
				rows = append(rows, cdcpb.Event_Row{Type: cdcpb.Event_PREWRITE, OpType: cdcpb.Event_Row_PUT, Key: key, Value: val, StartTs: commit - 5},
					cdcpb.Event_Row{Type: cdcpb.Event_COMMIT, OpType: cdcpb.Event_Row_PUT, Key: key, StartTs: commit - 5, CommitTs: commit})
				b.Events = append(b.Events, route.Event{Kind: route.KindRow, Row: &rows[len(rows)-2]}, route.Event{Kind: route.KindRow, Row: &rows[len(rows)-1]})
			} else {
				rows = append(rows, cdcpb.Event_Row{Type: cdcpb.Event_COMMITTED, OpType: cdcpb.Event_Row_PUT, Key: key, Value: val,
					StartTs: commit - 5, CommitTs: commit})
				b.Events = append(b.Events, route.Event{Kind: route.KindRow, Row: &rows[len(rows)-1]})
			}
		}
		last = commit
		pending += TxnRows
		if pending%o.BatchRows == 0 {
			if err := send(); err != nil {
				return err
			}
			rows = make([]cdcpb.Event_Row, 0, 2*o.BatchRows) // the ranges keep nothing, but a fresh slab keeps it simple
			if time.Since(lastFlush) >= o.FlushEvery {
				if err := flushAll(ctx, ranges); err != nil {
					return err
				}
				lastFlush = time.Now()
			}
		}
	}
	if err := send(); err != nil {
		return err
	}
	if err := flushAll(ctx, ranges); err != nil {
		return err
	}
	for _, r := range ranges {
		if r.Published() != last {
			return fmt.Errorf("sorterbench: a range published %d, want %d", r.Published(), last)
		}
	}
	return nil
}

func flushAll(ctx context.Context, ranges []*sorter.Range) error {
	for _, r := range ranges {
		if _, err := r.Flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

// output reads every table back in commit order from the pool.
func output(ctx context.Context, store objstore.Store) (rows, files int, err error) {
	for t := int64(FirstTable); t < FirstTable+Tables; t++ {
		span := tidbcodec.TableSpan(t)
		p, err := pool.NewPuller(ctx, store, 1, span.Start, span.End, nil, 0)
		if err != nil {
			return 0, 0, err
		}
		var prev uint64
		for {
			got, _, caughtUp, err := p.Poll(ctx)
			if err != nil {
				return 0, 0, err
			}
			for i := range got {
				if got[i].CommitTs < prev {
					return 0, 0, fmt.Errorf("sorterbench: table %d out of order", t)
				}
				prev = got[i].CommitTs
			}
			rows += len(got)
			if caughtUp {
				break
			}
		}
	}
	objs, err := objstore.ListAll(ctx, store, "committed_data_pool/", "")
	if err != nil {
		return 0, 0, err
	}
	for _, o := range objs {
		if strings.Contains(o.Key, "/data/") {
			files++
		}
	}
	return rows, files, nil
}

// peakRSSMiB is the process's peak resident set (VmHWM), 0 where unknown.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}

func dirMiB(dir string) float64 {
	var total int64
	_ = walk(dir, func(size int64) { total += size })
	return float64(total) / (1 << 20)
}
