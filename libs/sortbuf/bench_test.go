package sortbuf_test

import (
	"fmt"
	"testing"

	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/sortbuf/sortbuftest"
)

// BenchmarkStandardIngest writes the standard workload (sortbuftest) as
// committed rows, one range per table or one range for all, in batches of
// sortbuftest.BatchBytes, then scans every range in order and deletes it,
// as a flush does. Ingest and output are timed separately; e2e is both.
func BenchmarkStandardIngest(b *testing.B) {
	w := sortbuftest.NewStandardWorkload(1)
	for _, perTable := range []bool{true, false} {
		name := "ranges=1"
		if perTable {
			name = fmt.Sprintf("ranges=%d", sortbuftest.StandardTables)
		}
		b.Run(name, func(b *testing.B) {
			var ingest, output sortbuftest.Phase
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e, err := sortbuf.Open(b.TempDir(), sortbuf.DefaultConfig())
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := sortbuftest.StartPhase()
				ingestCommitted(b, e, w, perTable)
				ingest.Add(start.End())
				start = sortbuftest.StartPhase()
				sortbuftest.Drain(b, e, w, perTable)
				output.Add(start.End())
				b.StopTimer()
				if err := e.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			sortbuftest.ReportRates(b, w, ingest, output)
		})
	}
}

func ingestCommitted(b *testing.B, e *sortbuf.Engine, w *sortbuftest.Workload, perTable bool) {
	batches := map[uint64]sortbuf.Batch{}
	for _, txn := range w.Txns {
		uid := sortbuftest.RangeOf(txn.TableID, perTable)
		batch, ok := batches[uid]
		if !ok {
			batch = e.Buffer(uid).NewBatch()
			batches[uid] = batch
		}
		for _, kv := range txn.Rows {
			r := sortbuf.Row{CommitTs: txn.CommitTs, StartTs: txn.StartTs, Op: sortbuf.OpPut, Key: kv.Key, Value: kv.Value}
			if err := batch.Add(r); err != nil {
				b.Fatal(err)
			}
		}
		if batch.Bytes() >= sortbuftest.BatchBytes {
			if err := batch.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, batch := range batches {
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
}
