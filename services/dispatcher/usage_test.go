package dispatcher

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
)

// The ingest counters in the checkpoints count every file once across
// refusals (a run restarts and re-reads files from the checkpoint) and a
// takeover by another dispatcher (which continues from the checkpoint's
// totals and re-reads what the first one had read past it): their sum is
// what the simulator says it wrote, row events and store file bytes.
func TestIngestTotalsCountEachFileOnce(t *testing.T) {
	v := newEnv(t)
	seqs := map[uint64][]uint64{}
	for store := uint64(1); store <= testStores; store++ {
		seqs[store] = seqsOf(t, v, store)
		v.feed(store, 1, seqs[store][len(seqs[store])/2])
		v.assign(store, "d1", 1)
	}
	v.sorters[1].set(func(f *fakeSorter) { f.refuseN[2] = 3 }) // re-reads
	v.dispatcher("d1", nil)
	for store := uint64(1); store <= testStores; store++ {
		half := seqs[store][len(seqs[store])/2]
		eventually(t, func() bool { return v.checkpointSeq(store) == half }, "store %d checkpoint reaches %d", store, half)
	}
	// Takeover: d2 at epoch 2, while d1 may have read past its checkpoint.
	v.dispatcher("d2", nil)
	for store := uint64(1); store <= testStores; store++ {
		v.assign(store, "d2", 2)
		last := seqs[store][len(seqs[store])-1]
		v.feed(store, 1, last)
		eventually(t, func() bool { return v.checkpointSeq(store) == last }, "store %d checkpoint reaches %d", store, last)
	}
	var rows, bytes uint64
	for store := uint64(1); store <= testStores; store++ {
		cp := v.checkpoint(store)
		require.Equal(t, uint64(2), cp.Epoch)
		rows += cp.IngestedRows
		bytes += cp.IngestedBytes
	}
	// The simulator's Bytes include its schema snapshots, which are not
	// store change files.
	snaps, err := objstore.ListAll(context.Background(), v.src, layout.SchemaSnapshotPrefix(testCluster, testTenant), "")
	require.NoError(t, err)
	snapBytes := uint64(0)
	for _, o := range snaps {
		snapBytes += uint64(o.Size)
	}
	require.Equal(t, uint64(simStats.RowEvents), rows, "row events")
	require.Equal(t, uint64(simStats.Bytes)-snapBytes, bytes, "store file bytes")
}
