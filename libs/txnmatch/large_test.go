package txnmatch

import (
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
)

// heapPeak samples HeapInuse; sampling every few thousand events is enough
// to see a leak of rows, which would grow by hundreds of MiB.
type heapPeak struct{ base, peak uint64 }

func newHeapPeak() *heapPeak {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &heapPeak{base: ms.HeapInuse, peak: ms.HeapInuse}
}

func (h *heapPeak) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.peak = max(h.peak, ms.HeapInuse)
}

func (h *heapPeak) growth() uint64 { return h.peak - h.base }

// TestLargeTransactionBoundedHeap pushes one transaction of 1,000,000 rows
// of 256 bytes (about 256 MiB of values) through a matcher with an 8 MiB
// budget and a Pebble spill store: the heap must stay flat (the rows go to
// Pebble, whose memtables live outside the Go heap) and every row must come
// out once, with its value.
func TestLargeTransactionBoundedHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 256 MiB through Pebble")
	}
	const (
		rows      = 1_000_000
		valueSize = 256
		startTs   = 100
		commitTs  = 200
	)
	e, err := sortbuf.Open(t.TempDir(), sortbuf.DefaultConfig())
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Close()) }()

	key := make([]byte, 19) // the size of a TiDB record key
	value := make([]byte, valueSize)
	fill := func(i uint64) {
		binary.BigEndian.PutUint64(key[11:], i)
		for j := 0; j < valueSize; j += 8 {
			binary.LittleEndian.PutUint64(value[j:], i*31+uint64(j))
		}
	}
	emitted := 0
	emit := func(r sortbuf.Row) error {
		i := binary.BigEndian.Uint64(r.Key[11:])
		if r.CommitTs != commitTs || len(r.Value) != valueSize ||
			binary.LittleEndian.Uint64(r.Value[valueSize-8:]) != i*31+valueSize-8 {
			t.Fatalf("row %d came out wrong", i)
		}
		emitted++
		return nil
	}
	budget := NewBudget(8 << 20)
	m := New(e.Buffer(1).Spill(), budget, emit)
	heap := newHeapPeak()
	for i := uint64(0); i < rows; i++ {
		fill(i)
		require.NoError(t, m.Prewrite(key, sortbuf.OpPut, value, nil, startTs, 0))
		if i%8192 == 0 {
			heap.sample()
		}
	}
	st := m.Stats()
	require.Equal(t, 1, st.SpilledTxns)
	m.Settle()
	require.LessOrEqual(t, budget.Used(), budget.Limit())
	for i := uint64(0); i < rows; i++ {
		fill(i)
		require.NoError(t, m.Commit(key, 0, startTs, commitTs))
		if i%8192 == 0 {
			heap.sample()
		}
	}
	heap.sample()
	require.Equal(t, rows, emitted)
	require.Equal(t, Stats{Emitted: rows, Spills: 1}, m.Stats())
	n := 0
	require.NoError(t, e.Buffer(1).Spill().ForEach(func(uint64, []byte, []byte) error { n++; return nil }))
	require.Zero(t, n, "the spilled transaction is gone once matched")
	t.Logf("heap growth over baseline: peak %.1f MiB while %d MiB of rows passed", float64(heap.growth())/(1<<20), rows*(valueSize+19)>>20)
	require.Less(t, heap.growth(), uint64(64<<20))
}
