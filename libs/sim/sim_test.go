package sim_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/sim"
	"github.com/tistream/tistream/libs/sim/simtest"
	"github.com/tistream/tistream/libs/tidbcodec"
	"github.com/tistream/tistream/libs/truth"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

func testConfig() sim.Config {
	cfg := sim.DefaultConfig()
	cfg.Duration = 8 * time.Second
	cfg.RowsPerSec = 3000
	cfg.SplitEvery = 300 * time.Millisecond
	cfg.MergeEvery = 500 * time.Millisecond
	cfg.TransferEvery = 200 * time.Millisecond
	cfg.DDLEvery = time.Second
	cfg.LargeTxnEvery = 4 * time.Second
	cfg.LargeTxnRows = 5000
	cfg.LongTxnEvery = 2 * time.Second
	cfg.LongTxnHold = 3 * time.Second
	cfg.Tenants = 2
	return cfg
}

type rowID struct {
	tenant   uint64
	key      string
	commitTs uint64
}

type committed struct {
	startTs uint64
	op      string
	value   string
}

// TestFilesAgreeWithTruth decodes every file the simulator wrote with the
// spec'd decoder, matches prewrites with commits independently of TiStream's
// sorter, and checks the committed rows are exactly the truth; it also checks
// the stream rules (sequence, headers, TiKV's resolved ts rule, successors
// committing above their predecessors) on the files themselves.
func TestFilesAgreeWithTruth(t *testing.T) {
	cfg := testConfig()
	store, truthBytes, st := simtest.Run(t, cfg)
	require.Greater(t, st.Splits, int64(5))
	require.Greater(t, st.Merges, int64(3))
	require.Greater(t, st.Transfers, int64(10))
	require.Greater(t, st.Rollbacks, int64(0))
	require.Greater(t, st.OnePC, int64(0))
	require.Greater(t, st.AsyncCommit, int64(0))
	require.Greater(t, st.LargeTxns, int64(0))
	require.Greater(t, st.DDLs, int64(0))

	want := map[rowID]committed{}
	r := truth.NewReader(bytes.NewReader(truthBytes), "truth")
	var end uint64
	for {
		l, err := r.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		switch l.Kind {
		case truth.KindRow:
			id := rowID{l.Row.Tenant, string(l.Row.Key), l.Row.CommitTs}
			_, dup := want[id]
			require.False(t, dup, "truth has %v twice", id)
			want[id] = committed{l.Row.StartTs, l.Row.Op, string(l.Row.Value)}
		case truth.KindEnd:
			end = l.End.ResolvedTs
		}
	}
	require.Equal(t, st.FinalResolvedTs, end)
	require.Len(t, want, int(st.RowsCommitted))

	got := map[rowID]committed{}
	for tenant := uint64(1); tenant <= uint64(cfg.Tenants); tenant++ {
		snaps, _, err := store.List(context.Background(), layout.SchemaSnapshotPrefix(cfg.ClusterID, tenant), "", 10)
		require.NoError(t, err)
		require.Len(t, snaps, 1)
		b, err := store.Get(context.Background(), snaps[0].Key)
		require.NoError(t, err)
		snap, err := schemasnap.Decode(snaps[0].Key, b)
		require.NoError(t, err)
		require.Equal(t, uint64(cfg.Tables), snap.Header.TableCount)

		h := newHistory()
		for s := uint64(1); s <= uint64(cfg.Stores); s++ {
			checkStream(t, store, cfg.ClusterID, tenant, s, end, h)
		}
		h.check(t)
		for _, c := range simtest.CommittedChanges(t, store, cfg.ClusterID, tenant, cfg.Stores) {
			if !bytes.HasPrefix(c.Key, []byte("t")) {
				continue // meta range
			}
			op := truth.OpPut
			if c.Delete {
				op = truth.OpDelete
			}
			got[rowID{tenant, string(c.Key), c.CommitTs}] = committed{c.StartTs, op, string(c.Value)}
		}
	}
	for id, w := range want {
		require.Equal(t, w, got[id], "row %x at %d", id.key, id.commitTs)
	}
	require.Equal(t, len(want), len(got), "files hold committed rows the truth does not")
}

// checkStream checks one store's stream: consecutive seqs, headers agreeing
// with what the previous file's records added up to, TiKV's resolved ts rule
// per incarnation, and END carrying the last resolved ts.
func checkStream(t *testing.T, store objstore.Store, cluster, tenant, storeID, end uint64, h *history) {
	resolved := map[uint64]uint64{} // region id -> last resolved of the led incarnation
	var leaders map[uint64]storefile.Incarnation
	var prevMax, seq uint64
	simtest.Visit(t, store, cluster, tenant, storeID, func(name layout.StoreFileName, rd *storefile.Reader, rec storefile.Record) {
		if name.Seq != seq {
			require.Equal(t, seq+1, name.Seq, "sequence gap")
			seq = name.Seq
			hd := rd.Header()
			require.NoError(t, storefile.CheckName(fmt.Sprint(name), hd, name))
			require.Equal(t, prevMax, hd.PrevMaxTs)
			prevMax = hd.MaxTs
			if leaders != nil {
				require.Len(t, hd.LeaderRegions, len(leaders), "seq %d: header leaders", seq)
				for _, ri := range hd.LeaderRegions {
					inc, err := storefile.DecodeIncarnation(ri)
					require.NoError(t, err)
					require.Equal(t, leaders[inc.Region.Id].Ref(), inc.Ref(), "seq %d: leader of region %d", seq, inc.Region.Id)
				}
			}
			leaders = map[uint64]storefile.Incarnation{}
			for _, ri := range hd.LeaderRegions {
				inc, _ := storefile.DecodeIncarnation(ri)
				leaders[inc.Region.Id] = inc
			}
		}
		if rc := rec.RegionChange; rc != nil {
			id := rec.Incarnation.Region.Id
			ref := refKey(rec.Incarnation.Ref())
			if rc.Kind == formatv1.RegionChange_KIND_START {
				leaders[id] = rec.Incarnation
				resolved[id] = 0
				for _, p := range rc.Predecessors {
					h.preds[ref] = append(h.preds[ref], refKey(p))
				}
			} else {
				h.final[ref] = rc.ResolvedTs
				h.ranges[ref] = regionSpan(t, rec.Incarnation)
				require.Equal(t, resolved[id], rc.ResolvedTs, "END carries the last resolved ts")
				delete(leaders, id)
			}
			return
		}
		ev := rec.Event
		if ev.ResolvedTs != nil {
			for _, id := range ev.ResolvedTs.Regions {
				require.GreaterOrEqual(t, ev.ResolvedTs.Ts, resolved[id], "resolved ts went backwards")
				resolved[id] = ev.ResolvedTs.Ts
			}
		}
		for _, e := range ev.Events {
			span := regionSpan(t, leaders[e.RegionId])
			for _, row := range e.GetEntries().GetEntries() {
				require.True(t, bytes.Compare(row.Key, span[0]) >= 0 && (len(span[1]) == 0 || bytes.Compare(row.Key, span[1]) < 0),
					"row %x outside region %d", row.Key, e.RegionId)
				if row.Type == cdcpb.Event_COMMIT || row.Type == cdcpb.Event_COMMITTED {
					require.Greater(t, row.CommitTs, resolved[e.RegionId], "TiKV rule: commit of %x at or below resolved ts", row.Key)
					require.LessOrEqual(t, row.CommitTs, end)
					h.commits = append(h.commits, commitAt{ref: refKey(leaders[e.RegionId].Ref()), key: row.Key, ts: row.CommitTs})
				}
			}
		}
	})
	var last uint64
	for _, v := range resolved {
		last = max(last, v)
	}
	require.Equal(t, end, last, "the last file resolves every region at the end ts")
}

// history collects, across all streams of a tenant, what is needed to check
// that a successor incarnation never commits a key at or below the final
// resolved ts of the predecessor that covered the key.
type history struct {
	preds   map[string][]string
	final   map[string]uint64
	ranges  map[string][2][]byte
	commits []commitAt
}

type commitAt struct {
	ref string
	key []byte
	ts  uint64
}

func newHistory() *history {
	return &history{preds: map[string][]string{}, final: map[string]uint64{}, ranges: map[string][2][]byte{}}
}

func (h *history) check(t *testing.T) {
	for _, c := range h.commits {
		for _, p := range h.preds[c.ref] {
			r, ok := h.ranges[p]
			require.True(t, ok, "predecessor %s of %s never ended", p, c.ref)
			if bytes.Compare(c.key, r[0]) >= 0 && (len(r[1]) == 0 || bytes.Compare(c.key, r[1]) < 0) {
				require.Greater(t, c.ts, h.final[p], "%s commits %x at or below predecessor %s's final resolved ts", c.ref, c.key, p)
			}
		}
	}
}

func refKey(r *formatv1.IncarnationRef) string {
	return fmt.Sprintf("%d/%d/%d", r.RegionId, r.Version, r.Term)
}

func regionSpan(t *testing.T, inc storefile.Incarnation) [2][]byte {
	s, err := tidbcodec.DecodeRegionKey(inc.Region.StartKey)
	require.NoError(t, err)
	e, err := tidbcodec.DecodeRegionKey(inc.Region.EndKey)
	require.NoError(t, err)
	return [2][]byte{s, e}
}

func TestDeterministic(t *testing.T) {
	cfg := testConfig()
	cfg.Duration = 3 * time.Second
	a, ta, _ := simtest.Run(t, cfg)
	b, tb, _ := simtest.Run(t, cfg)
	require.Equal(t, ta, tb, "truth differs between two runs with one seed")
	ka, err := objstore.ListAll(context.Background(), a, "", "")
	require.NoError(t, err)
	kb, err := objstore.ListAll(context.Background(), b, "", "")
	require.NoError(t, err)
	require.Equal(t, ka, kb)
	for _, k := range ka {
		x, _ := a.Get(context.Background(), k.Key)
		y, _ := b.Get(context.Background(), k.Key)
		require.True(t, bytes.Equal(x, y), "%s differs", k.Key)
	}
	cfg.Seed++
	_, tc, _ := simtest.Run(t, cfg)
	require.NotEqual(t, ta, tc, "another seed should give another history")
}

func TestConfigErrorsNameTheFlag(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Stores = 0
	cfg.RollbackRatio = 2
	err := cfg.Validate()
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "--stores") && strings.Contains(err.Error(), "--rollback-ratio"), err.Error())
}
