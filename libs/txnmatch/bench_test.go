package txnmatch_test

import (
	"encoding/binary"
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
// commits, through one matcher per range into the sorter buffers (the
// Pebble engine alone and the memory-first store), then scans every range
// in order and deletes it. Figures compare with sortbuf's
// BenchmarkStandardIngest (committed rows written directly) and with plain
// Pebble (x_pebble).
func BenchmarkMatcherPairs(b *testing.B) {
	sortbuftest.RunStandard(b, sortbuftest.NewStandardWorkload(1), feedPairs)
}

func feedPairs(b *testing.B, e sortbuf.Store, w *sortbuftest.Workload, perTable bool) {
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

// BenchmarkMatcherAlone is the matcher's own cost: transactions of ten
// 19-byte keys with 256-byte values, each prewritten and then committed,
// through one matcher whose emit does nothing; ns/op is per transaction
// (ten rows).
func BenchmarkMatcherAlone(b *testing.B) {
	emitted := 0
	m := txnmatch.New(nil, txnmatch.NewBudget(256<<20), func(r sortbuf.Row) error { emitted += len(r.Value); return nil })
	keys := make([][]byte, 10)
	for i := range keys {
		keys[i] = make([]byte, 19)
	}
	val := make([]byte, 256)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		startTs := uint64(1000 + 2*i)
		for j, k := range keys {
			binary.BigEndian.PutUint64(k[11:], uint64(i*131+j*7))
			if err := m.Prewrite(k, sortbuf.OpPut, val, nil, startTs, 0); err != nil {
				b.Fatal(err)
			}
		}
		for _, k := range keys {
			if err := m.Commit(k, sortbuf.OpPut, startTs, startTs+1); err != nil {
				b.Fatal(err)
			}
		}
		m.Settle()
	}
	if emitted != b.N*len(keys)*len(val) {
		b.Fatalf("emitted %d value bytes, want %d", emitted, b.N*len(keys)*len(val))
	}
}
