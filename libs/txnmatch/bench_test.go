package txnmatch_test

import (
	"fmt"
	"testing"

	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/sortbuf/sortbuftest"
	"github.com/tistream/tistream/libs/txnmatch"
)

// rangeSink is one range: its matcher emitting into its sorter buffer's
// batch, committed every sortbuftest.BatchBytes.
type rangeSink struct {
	m     *txnmatch.Matcher
	batch sortbuf.Batch
}

func (r *rangeSink) emit(row sortbuf.Row) error {
	if err := r.batch.Add(row); err != nil {
		return err
	}
	if r.batch.Bytes() >= sortbuftest.BatchBytes {
		return r.batch.Commit()
	}
	return nil
}

// BenchmarkMatcherPairs feeds the standard workload (sortbuftest) as
// PREWRITE + COMMIT pairs, each transaction's ten prewrites then its ten
// commits, through one matcher per range into the Pebble sorter buffer,
// then scans every range in order and deletes it. Figures compare with
// sortbuf's BenchmarkStandardIngest (committed rows written directly).
func BenchmarkMatcherPairs(b *testing.B) {
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
				feedPairs(b, e, w, perTable)
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

func feedPairs(b *testing.B, e *sortbuf.Engine, w *sortbuftest.Workload, perTable bool) {
	budget := txnmatch.NewBudget(256 << 20)
	ranges := map[uint64]*rangeSink{}
	for _, txn := range w.Txns {
		uid := sortbuftest.RangeOf(txn.TableID, perTable)
		r := ranges[uid]
		if r == nil {
			buf := e.Buffer(uid)
			r = &rangeSink{batch: buf.NewBatch()}
			r.m = txnmatch.New(buf.Spill(), budget, r.emit)
			ranges[uid] = r
		}
		for _, kv := range txn.Rows {
			if err := r.m.Prewrite(kv.Key, sortbuf.OpPut, kv.Value, nil, txn.StartTs, 0); err != nil {
				b.Fatal(err)
			}
		}
		for _, kv := range txn.Rows {
			if err := r.m.Commit(kv.Key, sortbuf.OpPut, txn.StartTs, txn.CommitTs); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, r := range ranges {
		if err := r.batch.Commit(); err != nil {
			b.Fatal(err)
		}
		r.batch.Close()
		if st := r.m.Stats(); st.Prewrites != 0 || st.PendingCommits != 0 {
			b.Fatalf("matcher left %+v", st)
		}
	}
}
