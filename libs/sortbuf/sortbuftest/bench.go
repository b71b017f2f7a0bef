package sortbuftest

import (
	"fmt"
	"os"
	"testing"

	"github.com/tistream/tistream/libs/pebblebase"
	"github.com/tistream/tistream/libs/procstat"
	"github.com/tistream/tistream/libs/sortbuf"
)

// Phase is what a part of a benchmark took (procstat.Phase).
type Phase = procstat.Phase

// StartPhase starts timing a phase.
func StartPhase() procstat.Start { return procstat.Begin() }

// RangeOf maps a table of the workload to its range uid: its own (uid =
// table id) or range 1 for all.
func RangeOf(table int64, perTable bool) uint64 {
	if perTable {
		return uint64(table)
	}
	return 1
}

// Drain scans every range of the workload up to its last commit ts, checks
// the count and the order, and deletes what it read, as a flush does.
func Drain(b *testing.B, s sortbuf.Store, w *Workload, perTable bool) {
	upTo := w.MaxCommitTs()
	rows := 0
	seen := map[uint64]bool{}
	for _, txn := range w.Txns {
		uid := RangeOf(txn.TableID, perTable)
		if seen[uid] {
			continue
		}
		seen[uid] = true
		buf := s.Buffer(uid)
		var last uint64
		err := buf.Scan(upTo, func(r sortbuf.Row) error {
			if r.CommitTs < last {
				return fmt.Errorf("out of order: %d after %d", r.CommitTs, last)
			}
			last = r.CommitTs
			rows++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := buf.DeleteUpTo(upTo); err != nil {
			b.Fatal(err)
		}
	}
	if rows != w.Rows {
		b.Fatalf("read %d rows, wrote %d", rows, w.Rows)
	}
}

// ReportRates reports, per benchmark iteration of the whole workload, for
// ingest, output and both (e2e): rows/s and MB/s (wall), rows per
// CPU-second (robust to other load on a shared machine), Go heap
// allocations and bytes per row, and x_pebble, the wall rows/s as a multiple
// of the plain-Pebble baseline (package pebblebase) measured right after it
// in this process at this GOMAXPROCS (see Baseline).
func ReportRates(b *testing.B, w *Workload, ingest, output Phase) {
	bi, bo := Baseline(b, w)
	n := float64(b.N)
	rows := float64(w.Rows)
	report := func(name string, p, base Phase) {
		wall, cpu := p.Wall.Seconds()/n, p.CPU.Seconds()/n
		b.ReportMetric(rows/wall, name+"_rows/s")
		b.ReportMetric(float64(w.Bytes)/wall/1e6, name+"_MB/s")
		b.ReportMetric(rows/cpu, name+"_rows/cpu-s")
		b.ReportMetric(float64(p.Allocs)/n/rows, name+"_allocs/row")
		b.ReportMetric(float64(p.AllocBytes)/n/rows, name+"_B/row")
		b.ReportMetric(base.Wall.Seconds()/wall, name+"_x_pebble")
	}
	report("ingest", ingest, bi)
	report("output", output, bo)
	e2e, be2e := ingest, bi
	e2e.Add(output)
	be2e.Add(bo)
	report("e2e", e2e, be2e)
	b.ReportMetric(0, "ns/op") // one op is the whole workload: the rates say more
}

// Baseline measures the plain-Pebble baseline of w now, in this process at
// this GOMAXPROCS, right after the benchmark it is compared with: w's rows
// written in commit order to one Pebble instance with default options and
// the WAL off, in batches of pebblebase.BatchRows, then read back in order.
func Baseline(b *testing.B, w *Workload) (ingest, output Phase) {
	dir, err := os.MkdirTemp("", "pebblebase-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := pebblebase.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := StartPhase()
	for _, txn := range w.Txns {
		for _, kv := range txn.Rows {
			if err := db.Add(txn.CommitTs, txn.StartTs, kv.Key, kv.Value); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := db.Finish(); err != nil {
		b.Fatal(err)
	}
	ingest = start.End()
	start = StartPhase()
	if err := db.ReadAll(); err != nil {
		b.Fatal(err)
	}
	output = start.End()
	return ingest, output
}

// BatchBytes is when a benchmark commits a range's batch: a sorter commits
// what one dispatcher message brought for a range, some hundred KiB.
const BatchBytes = 256 << 10

// RunStandard runs the standard benchmark: for every store kind and for one
// range per table or one for all, ingest feeds w into a fresh store, then
// every range is drained in order (Drain); the phases are timed and
// reported by ReportRates.
func RunStandard(b *testing.B, w *Workload, ingest func(b *testing.B, s sortbuf.Store, w *Workload, perTable bool)) {
	for _, kind := range StoreKinds {
		for _, perTable := range []bool{true, false} {
			name := "ranges=1"
			if perTable {
				name = fmt.Sprintf("ranges=%d", StandardTables)
			}
			b.Run(kind+"/"+name, func(b *testing.B) {
				var in, out Phase
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					s, closeStore := OpenStore(b, kind)
					b.StartTimer()
					start := StartPhase()
					ingest(b, s, w, perTable)
					in.Add(start.End())
					start = StartPhase()
					Drain(b, s, w, perTable)
					out.Add(start.End())
					b.StopTimer()
					closeStore()
					b.StartTimer()
				}
				ReportRates(b, w, in, out)
			})
		}
	}
}

// StoreKinds are the stores the benchmarks run: the Pebble engine alone
// (every row through Pebble) and the memory-first store over it (the
// sorter's default).
var StoreKinds = []string{"pebble", "memfirst"}

// OpenStore opens a fresh store of a kind of StoreKinds in a temporary
// directory; close releases it.
func OpenStore(b *testing.B, kind string) (s sortbuf.Store, close func()) {
	e, err := sortbuf.Open(b.TempDir(), sortbuf.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	close = func() {
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
	}
	switch kind {
	case "pebble":
		return e, close
	case "memfirst":
		m, err := sortbuf.NewMemoryFirst(e, sortbuf.DefaultMemoryBudget)
		if err != nil {
			b.Fatal(err)
		}
		return m, close
	}
	b.Fatalf("unknown store kind %q", kind)
	return nil, nil
}
