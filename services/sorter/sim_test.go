package sorter

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/route/routepb"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/sim/simtest"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// The simulator's files (region splits, merges, leader moves, 2PC, async
// commit, 1PC, rollbacks, DDL), routed per store with route.Router as a
// dispatcher does and sent over Ingest with the stores interleaved, are
// published by two ranges exactly as upstream committed them.
func TestSimulatedFiles(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Seed = 5
	cfg.Duration = 3 * time.Second
	cfg.RowsPerSec = 800
	cfg.SplitEvery, cfg.MergeEvery, cfg.TransferEvery = 400*time.Millisecond, 700*time.Millisecond, 300*time.Millisecond
	cfg.DDLEvery = time.Second
	cfg.FlushInterval, cfg.ResolveEvery = 200*time.Millisecond, 200*time.Millisecond
	cfg.LongTxnEvery, cfg.LongTxnHold = time.Second, time.Second
	cfg.LargeTxnRows = 500
	buffer, _, st := simtest.Run(t, cfg)
	truth := simtest.CommittedChanges(t, buffer, cfg.ClusterID, 1, cfg.Stores)

	e := newEnv(t)
	s := e.startSorter("s1")
	split := middleTable(t, truth)
	for i, span := range [][2][]byte{{nil, split}, {split, nil}} {
		task := &metav1.RangeTask{TenantId: 1, RangeId: uint64(i + 1), StartKey: span[0], EndKey: span[1], OpenedAtTs: 1,
			State: metav1.RangeTask_STATE_ACTIVE, Epoch: 1, Owner: "s1"}
		_, err := e.cli.Put(context.Background(), etcdx.RangeKey(1, task.RangeId), etcdx.Marshal(task))
		require.NoError(t, err)
	}
	waitTaken(t, s, 1, 1, 1)
	waitTaken(t, s, 1, 2, 1)
	table, err := route.NewTable([]route.Range{{ID: 1, End: split}, {ID: 2, Start: split}})
	require.NoError(t, err)

	files := map[uint64][]string{}
	routers := map[uint64]*route.Router{}
	rounds := 0
	for st := uint64(1); st <= uint64(cfg.Stores); st++ {
		objs, err := objstore.ListAll(context.Background(), buffer, layout.StorePrefix(cfg.ClusterID, 1, st), "")
		require.NoError(t, err)
		for _, o := range objs {
			files[st] = append(files[st], o.Key)
		}
		routers[st] = route.NewRouter(table)
		rounds = max(rounds, len(objs))
	}
	f := openFeeder(t, s.GRPCAddr())
	last := map[[2]uint64]uint64{} // (range, store) -> last seq sent
	for i := 0; i < rounds; i++ {
		for st := uint64(1); st <= uint64(cfg.Stores); st++ {
			if i >= len(files[st]) {
				continue
			}
			data, err := buffer.Get(context.Background(), files[st][i])
			require.NoError(t, err)
			batches, h, err := routers[st].Route(files[st][i], data)
			require.NoError(t, err)
			req := &sorterv1.IngestRequest{TenantId: 1, StoreId: st, Seq: h.Seq, MaxTs: h.MaxTs, Dispatcher: "d1"}
			for _, id := range slices.Sorted(mapsKeys(batches)) {
				req.Batches = append(req.Batches, &sorterv1.RangeBatch{RangeId: id, RangeEpoch: 1, Events: wire(batches[id].Events)})
				last[[2]uint64{id, st}] = h.Seq
			}
			if len(req.Batches) > 0 {
				require.NoError(t, f.stream.Send(req))
			}
		}
	}

	var got []simtest.Committed
	for id := uint64(1); id <= 2; id++ {
		var wm uint64
		require.Eventually(t, func() bool {
			_, wm = readRange(t, e.pool, id)
			return wm >= st.FinalResolvedTs
		}, 30*time.Second, 50*time.Millisecond, "range %d at %d, want %d", id, wm, st.FinalResolvedTs)
		rows, _ := readRange(t, e.pool, id)
		got = append(got, rows...)
	}
	for k, seq := range last {
		f.waitDurable(1, k[0], k[1], seq)
	}
	require.Empty(t, f.refusals())

	// The truth up to the final resolved ts, in commit order, once each.
	var want []simtest.Committed
	for _, c := range truth {
		if c.CommitTs <= st.FinalResolvedTs && (len(want) == 0 || !sameChange(want[len(want)-1], c)) {
			want = append(want, c)
		}
	}
	sortChanges(got)
	require.Greater(t, len(want), 500)
	require.Equal(t, len(want), len(got))
	for i := range want {
		require.True(t, sameChange(want[i], got[i]) && bytes.Equal(want[i].Value, got[i].Value) && want[i].Delete == got[i].Delete,
			"change %d: want %s, got %s", i, fmtChange(want[i]), fmtChange(got[i]))
	}
}

// middleTable is the prefix of the middle table upstream wrote to.
func middleTable(t *testing.T, cs []simtest.Committed) []byte {
	seen := map[int64]bool{}
	var ids []int64
	for _, c := range cs {
		if id, err := tidbcodec.DecodeTableID(c.Key); err == nil && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	require.GreaterOrEqual(t, len(ids), 2)
	slices.Sort(ids)
	return tidbcodec.TablePrefix(ids[len(ids)/2])
}

func mapsKeys(m map[uint64]*route.Batch) func(func(uint64) bool) {
	return func(yield func(uint64) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func readRange(t *testing.T, store objstore.Store, id uint64) ([]simtest.Committed, uint64) {
	r, err := pool.OpenRangeReader(context.Background(), store, 1, id, 0)
	require.NoError(t, err)
	var out []simtest.Committed
	for {
		c, ok, err := r.Next(context.Background())
		require.NoError(t, err)
		if !ok {
			return out, r.Watermark()
		}
		for _, row := range c.Rows {
			out = append(out, simtest.Committed{CommitTs: row.CommitTs, StartTs: row.StartTs, Delete: row.Op == formatv1.Op_OP_DELETE,
				Key: row.Key, Value: row.Value})
		}
	}
}

func sameChange(a, b simtest.Committed) bool {
	return a.CommitTs == b.CommitTs && a.StartTs == b.StartTs && bytes.Equal(a.Key, b.Key)
}

func sortChanges(cs []simtest.Committed) {
	slices.SortFunc(cs, func(a, b simtest.Committed) int {
		switch {
		case a.CommitTs != b.CommitTs:
			return cmpU(a.CommitTs, b.CommitTs)
		case a.StartTs != b.StartTs:
			return cmpU(a.StartTs, b.StartTs)
		}
		return bytes.Compare(a.Key, b.Key)
	})
}

func cmpU(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
}

func fmtChange(c simtest.Committed) string {
	return fmt.Sprintf("%x@%d/%d del=%v len=%d", c.Key, c.CommitTs, c.StartTs, c.Delete, len(c.Value))
}

// wire is the dispatcher's encoding of routed events.
func wire(evs []route.Event) []*sorterv1.Event {
	pb, _ := routepb.ToProto(evs)
	return pb
}
