package sortbuftest

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/tistream/tistream/libs/sortbuf"
)

// Phase is the wall time and the process CPU time (user + system, every
// thread, so Pebble's background flushes and compactions count) of a part
// of a benchmark.
type Phase struct{ Wall, CPU time.Duration }

// PhaseStart marks the start of a Phase.
type PhaseStart struct {
	wall time.Time
	cpu  time.Duration
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// StartPhase starts timing.
func StartPhase() PhaseStart { return PhaseStart{wall: time.Now(), cpu: processCPU()} }

// End returns the phase since s.
func (s PhaseStart) End() Phase {
	return Phase{Wall: time.Since(s.wall), CPU: processCPU() - s.cpu}
}

// Add accumulates q into p.
func (p *Phase) Add(q Phase) {
	p.Wall += q.Wall
	p.CPU += q.CPU
}

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

// ReportRates reports rows/s and MB/s (wall) and rows per CPU-second (robust
// to other load on a shared machine) of ingest, output and both (e2e), per
// benchmark iteration of the whole workload.
func ReportRates(b *testing.B, w *Workload, ingest, output Phase) {
	n := float64(b.N)
	report := func(name string, p Phase) {
		wall, cpu := p.Wall.Seconds()/n, p.CPU.Seconds()/n
		b.ReportMetric(float64(w.Rows)/wall, name+"_rows/s")
		b.ReportMetric(float64(w.Bytes)/wall/1e6, name+"_MB/s")
		b.ReportMetric(float64(w.Rows)/cpu, name+"_rows/cpu-s")
	}
	report("ingest", ingest)
	report("output", output)
	e2e := ingest
	e2e.Add(output)
	report("e2e", e2e)
	b.ReportMetric(0, "ns/op") // one op is the whole workload: the rates say more
}

// BatchBytes is when a benchmark commits a range's batch: a sorter commits
// what one dispatcher message brought for a range, some hundred KiB.
const BatchBytes = 256 << 10
