package sortbuf_test

import (
	"testing"

	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/sortbuf/sortbuftest"
)

// BenchmarkStandardIngest writes the standard workload (sortbuftest) as
// committed rows, one range per table or one range for all, in batches of
// sortbuftest.BatchBytes, then scans every range in order and deletes it,
// as a flush does, into the Pebble engine alone and into the memory-first
// store. Ingest and output are timed separately; e2e is both; x_pebble
// compares with the plain-Pebble baseline of the same process.
func BenchmarkStandardIngest(b *testing.B) {
	sortbuftest.RunStandard(b, sortbuftest.NewStandardWorkload(1), ingestCommitted)
}

func ingestCommitted(b *testing.B, e sortbuf.Store, w *sortbuftest.Workload, perTable bool) {
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
