package sortbuf_test

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/tistream/tistream/libs/sortbuf"
)

// BenchmarkChurn is the sorter's steady state: many ranges each receive a
// few rows per cycle, then every range scans and deletes them (a flush).
// It reports the average scan+delete time per range in the first and last
// ten cycles, so that range tombstones piling up would show as a slowdown,
// and the engine's state at the end (disk, L0 files). gc=0 writes each
// range's tombstone at once; gc=1s is the default batching.
func BenchmarkChurn(b *testing.B) {
	const (
		ranges    = 2000
		perCycle  = 20 // rows per range per cycle
		cycles    = 60
		valueSize = 64
	)
	for _, gc := range []time.Duration{0, time.Second} {
		b.Run(fmt.Sprintf("gc=%s", gc), func(b *testing.B) {
			cfg := sortbuf.DefaultConfig()
			cfg.GCInterval = gc
			cfg.MemTableSize = 16 << 20 // a flush every few cycles
			value := make([]byte, valueSize)
			key := make([]byte, 19)
			var first, last time.Duration
			var m sortbuf.Metrics
			for i := 0; i < b.N; i++ {
				e, err := sortbuf.Open(b.TempDir(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				ts := uint64(1000)
				for c := 0; c < cycles; c++ {
					for u := uint64(0); u < ranges; u++ {
						batch := e.Buffer(u).NewBatch()
						for r := 0; r < perCycle; r++ {
							binary.BigEndian.PutUint64(key, u)
							binary.BigEndian.PutUint64(key[8:], uint64(r))
							row := sortbuf.Row{CommitTs: ts + uint64(r), StartTs: ts, Op: sortbuf.OpPut, Key: key, Value: value}
							if err := batch.Add(row); err != nil {
								b.Fatal(err)
							}
						}
						if err := batch.Commit(); err != nil {
							b.Fatal(err)
						}
						batch.Close()
					}
					ts += perCycle
					start := time.Now()
					for u := uint64(0); u < ranges; u++ {
						n := 0
						buf := e.Buffer(u)
						if err := buf.Scan(ts-1, func(sortbuf.Row) error { n++; return nil }); err != nil {
							b.Fatal(err)
						}
						if n != perCycle {
							b.Fatalf("cycle %d range %d: %d rows", c, u, n)
						}
						if err := buf.DeleteUpTo(ts - 1); err != nil {
							b.Fatal(err)
						}
					}
					d := time.Since(start)
					switch {
					case c < 10:
						first += d
					case c >= cycles-10:
						last += d
					}
				}
				if m, err = e.Metrics(); err != nil {
					b.Fatal(err)
				}
				if err := e.Close(); err != nil {
					b.Fatal(err)
				}
			}
			perRange := func(d time.Duration) float64 {
				return float64(d.Nanoseconds()) / float64(b.N*10*ranges) / 1e3
			}
			b.ReportMetric(perRange(first), "first_drain_us/range")
			b.ReportMetric(perRange(last), "last_drain_us/range")
			b.ReportMetric(float64(b.N*ranges*perCycle*cycles)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(m.DiskBytes)/1e6, "end_disk_MB")
			b.ReportMetric(float64(m.L0Files), "end_L0_files")
			b.ReportMetric(float64(m.Tombstones), "end_tombstones")
			b.ReportMetric(0, "ns/op")
		})
	}
}
