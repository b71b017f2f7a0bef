package sortbuftest

import (
	"math/rand/v2"

	"github.com/tistream/tistream/libs/tidbcodec"
)

// The standard sorter workload, shared by the benchmarks of sortbuf and
// txnmatch so their figures compare with each other and with TiCDC's sorter
// benchmark: 1,000,000 rows over 64 tables (ids 100-163); transactions of
// exactly 10 rows, all in one table picked at random; transaction k commits
// at 1,000,000 + 10(k+1) and starts 5 earlier; keys are TiDB record keys
// t{table}_r{random int handle} (19 bytes), values 256 random bytes: 275
// bytes a row, all puts.
const (
	StandardRows       = 1_000_000
	StandardTables     = 64
	StandardFirstTable = 100
	StandardTxnRows    = 10
	StandardValueSize  = 256
	standardBaseTs     = 1_000_000
)

// Workload is a generated list of transactions in commit order.
type Workload struct {
	Txns []Txn
	// Rows and Bytes (key + value) in total.
	Rows, Bytes int
}

// Txn is one transaction of a single table.
type Txn struct {
	StartTs, CommitTs uint64
	TableID           int64
	Rows              []KV
}

// KV is one row's key and value.
type KV struct{ Key, Value []byte }

// NewStandardWorkload generates the standard workload from seed. It holds
// about 300 MB: generate it once per benchmark, outside the timer.
func NewStandardWorkload(seed uint64) *Workload {
	return NewWorkload(seed, StandardRows/StandardTxnRows)
}

// NewWorkload generates txns transactions of the standard shape.
func NewWorkload(seed uint64, txns int) *Workload {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	values := make([]byte, txns*StandardTxnRows*StandardValueSize)
	chacha := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1})
	_, _ = chacha.Read(values) // ChaCha8.Read never fails
	kvs := make([]KV, txns*StandardTxnRows)
	w := &Workload{Txns: make([]Txn, txns)}
	for k := range w.Txns {
		commit := uint64(standardBaseTs + StandardTxnRows*(k+1))
		table := int64(StandardFirstTable + rng.IntN(StandardTables))
		rows := kvs[k*StandardTxnRows : (k+1)*StandardTxnRows : (k+1)*StandardTxnRows]
		for i := range rows {
			n := k*StandardTxnRows + i
			rows[i].Key = tidbcodec.EncodeRecordKey(table, rng.Int64())
			rows[i].Value = values[n*StandardValueSize : (n+1)*StandardValueSize : (n+1)*StandardValueSize]
			w.Bytes += len(rows[i].Key) + len(rows[i].Value)
		}
		w.Txns[k] = Txn{StartTs: commit - 5, CommitTs: commit, TableID: table, Rows: rows}
		w.Rows += len(rows)
	}
	return w
}

// MaxCommitTs is the commit ts of the last transaction.
func (w *Workload) MaxCommitTs() uint64 {
	if len(w.Txns) == 0 {
		return 0
	}
	return w.Txns[len(w.Txns)-1].CommitTs
}
