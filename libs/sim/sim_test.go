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
	seen := checkFiles(t, cfg, store, truthBytes, st)
	require.Zero(t, seen.takeoverEnds)
	require.Zero(t, seen.restarts)
}

// eachTruthLine calls fn for every line of a truth file, in order.
func eachTruthLine(t *testing.T, truthBytes []byte, fn func(*truth.Line)) {
	t.Helper()
	r := truth.NewReader(bytes.NewReader(truthBytes), "truth")
	for {
		l, err := r.Next()
		if err == io.EOF {
			return
		}
		require.NoError(t, err)
		fn(l)
	}
}

// seen counts what checkFiles found in the files.
type seen struct {
	takeoverEnds    int // takeover ENDs
	restarts        int // files that open a restarted store's stream
	refreshes       int // PREWRITEs with op PUT and an empty value
	rewrites        int // PREWRITEs repeating a (key, start_ts, generation) with its value
	orphanRollbacks int // ROLLBACKs of a (key, start_ts) with no PREWRITE in any stream
	generations     int // PREWRITEs with a generation above 1
	rollbackMerges  int // STARTs with REASON_ROLLBACK_MERGE
	duplicateCommit int // commits written more than once (full takeovers)
	// (key, start_ts) whose prewrites of different generations are in
	// different stores' streams, and whose lock refresh is in a stream
	// without its value
	generationsApart int
	refreshApart     int
}

// checkFiles checks everything the simulator wrote against the truth and
// the store-change-file spec: every file decodes with the spec'd reader;
// the committed changes (prewrites matched independently, with the
// repeated-prewrite rank rule and takeover duplicates counted once) are
// exactly the truth; and the stream rules hold (see checkStream and
// history.check).
func checkFiles(t *testing.T, cfg sim.Config, store objstore.Store, truthBytes []byte, st sim.Stats) seen {
	t.Helper()
	want := map[rowID]committed{}
	var end uint64
	eachTruthLine(t, truthBytes, func(l *truth.Line) {
		switch l.Kind {
		case truth.KindRow:
			id := rowID{l.Row.Tenant, string(l.Row.Key), l.Row.CommitTs}
			_, dup := want[id]
			require.False(t, dup, "truth has %v twice", id)
			want[id] = committed{l.Row.StartTs, l.Row.Op, string(l.Row.Value)}
		case truth.KindEnd:
			end = l.End.ResolvedTs
		}
	})
	require.Equal(t, st.FinalResolvedTs, end)
	require.Len(t, want, int(st.RowsCommitted))

	var total seen
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
			checkStream(t, store, cfg, tenant, s, end, h)
		}
		h.check(t)
		for k := range h.rollbacks {
			if len(h.prewrites[k]) == 0 {
				total.orphanRollbacks++
			}
		}
		require.Equal(t, int(st.Restarts), h.seen.restarts, "tenant %d: files opening a restarted stream", tenant)
		total.takeoverEnds += h.seen.takeoverEnds
		total.restarts += h.seen.restarts
		total.refreshes += h.seen.refreshes
		total.rewrites += h.seen.rewrites
		total.generations += h.seen.generations
		total.rollbackMerges += h.seen.rollbackMerges
		total.duplicateCommit += h.seen.duplicateCommit
		total.generationsApart += h.seen.generationsApart
		total.refreshApart += h.seen.refreshApart
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
	require.Equal(t, int(st.TakeoverEnds), total.takeoverEnds, "takeover ENDs in the files")
	return total
}

// checkStream checks one store's stream: consecutive seqs and prev_max_ts,
// headers agreeing with what the previous file's records added up to (or
// empty, for the first file after a restart, which shows as a gap of a
// flush interval or more), TiKV's resolved ts rule per incarnation, and
// END carrying the last resolved ts. It collects what history.check needs.
func checkStream(t *testing.T, store objstore.Store, cfg sim.Config, tenant, storeID, end uint64, h *history) {
	resolved := map[uint64]uint64{} // region id -> last resolved of the led incarnation
	var leaders map[uint64]storefile.Incarnation
	var prevMax, seq uint64
	// The stream's last full leader list (format version 2) and its file,
	// which delta headers name, decoded here independently of the reader.
	var fullList map[uint64]storefile.Incarnation
	var fullSeq, groupTs uint64
	var prevCreated int64
	var cur fileID
	simtest.VisitFiles(t, store, cfg.ClusterID, tenant, storeID, func(name layout.StoreFileName, rd *storefile.Reader) {
		{
			require.Equal(t, seq+1, name.Seq, "sequence gap")
			seq = name.Seq
			cur = fileID{storeID, seq}
			hd := rd.Header()
			require.NoError(t, storefile.CheckName(fmt.Sprint(name), hd, name))
			require.Equal(t, prevMax, hd.PrevMaxTs)
			require.GreaterOrEqual(t, hd.MaxTs, prevMax)
			prevMax = hd.MaxTs
			restarted := seq > 1 && hd.CreatedUnixMs-prevCreated > cfg.FlushInterval.Milliseconds()*3/2
			prevCreated = hd.CreatedUnixMs
			wantVersion := uint32(2)
			if cfg.FormatVersion == 1 {
				wantVersion = 0 // version 1 headers have no format_version
			}
			require.Equal(t, wantVersion, hd.FormatVersion, "format version")
			if restarted {
				// A restarted store leads nothing until it is elected again,
				// and its first file carries a full list.
				h.seen.restarts++
				require.Empty(t, hd.LeaderRegions, "store %d seq %d: first file after a restart", storeID, seq)
				require.Zero(t, hd.LeaderBaseSeq, "store %d seq %d: first file after a restart lists in full", storeID, seq)
				for id := range leaders {
					h.ledAtEnd[refKey(leaders[id].Ref())] = false
				}
				leaders = map[uint64]storefile.Incarnation{}
			}
			list := headerList(t, hd, fullList, fullSeq)
			if hd.FormatVersion == 2 && hd.LeaderBaseSeq == 0 {
				fullList, fullSeq = list, seq
			}
			if hd.FormatVersion == 2 {
				require.Less(t, seq-fullSeq, max(cfg.FullListEvery, 1), "seq %d: a full list at least every %d files", seq, cfg.FullListEvery)
			}
			if leaders != nil {
				require.Len(t, list, len(leaders), "seq %d: header leaders", seq)
				for id, inc := range list {
					require.Equal(t, leaders[id].Ref(), inc.Ref(), "seq %d: leader of region %d", seq, id)
				}
			}
			leaders = map[uint64]storefile.Incarnation{}
			h.mentions[cur] = map[string]bool{}
			for id, inc := range list {
				leaders[id] = inc
				h.mentions[cur][refKey(inc.Ref())] = true
			}
		}
	}, func(name layout.StoreFileName, rd *storefile.Reader, rec storefile.Record) {
		if rc := rec.RegionChange; rc != nil {
			id := rec.Incarnation.Region.Id
			ref := refKey(rec.Incarnation.Ref())
			h.mentions[cur][ref] = true
			switch {
			case rc.Kind == formatv1.RegionChange_KIND_START:
				_, dup := h.started[ref]
				require.False(t, dup, "%s started twice", ref)
				h.started[ref] = cur
				h.ledAtEnd[ref] = true
				leaders[id] = rec.Incarnation
				resolved[id] = 0
				for _, p := range rc.Predecessors {
					h.preds[ref] = append(h.preds[ref], refKey(p))
				}
				if rc.Reason == formatv1.RegionChange_REASON_ROLLBACK_MERGE {
					h.seen.rollbackMerges++
				}
			case rc.Reason == formatv1.RegionChange_REASON_TAKEOVER:
				h.seen.takeoverEnds++
				h.ends[ref] = append(h.ends[ref], endAt{file: cur, final: rc.ResolvedTs, takeover: rc.Takeover})
				h.ranges[ref] = regionSpan(t, rec.Incarnation)
			default:
				h.ends[ref] = append(h.ends[ref], endAt{file: cur, final: rc.ResolvedTs})
				h.ranges[ref] = regionSpan(t, rec.Incarnation)
				h.ledAtEnd[ref] = false
				require.Equal(t, resolved[id], rc.ResolvedTs, "END carries the last resolved ts")
				delete(leaders, id)
			}
			return
		}
		if lr := rec.LeaderResolved; lr != nil {
			require.GreaterOrEqual(t, lr.Ts, groupTs, "leader resolved ts went backwards")
			groupTs = lr.Ts
			except := map[uint64]bool{}
			for _, id := range lr.ExceptRegions {
				except[id] = true
			}
			for id, inc := range leaders {
				if except[id] {
					continue
				}
				require.GreaterOrEqual(t, lr.Ts, resolved[id], "resolved ts went backwards")
				resolved[id] = lr.Ts
				ref := refKey(inc.Ref())
				h.mentions[cur][ref] = true
				h.resolved[ref] = append(h.resolved[ref], seqTs{cur, lr.Ts})
			}
			return
		}
		ev := rec.Event
		if ev.ResolvedTs != nil {
			for _, id := range ev.ResolvedTs.Regions {
				require.GreaterOrEqual(t, ev.ResolvedTs.Ts, resolved[id], "resolved ts went backwards")
				resolved[id] = ev.ResolvedTs.Ts
				ref := refKey(leaders[id].Ref())
				h.mentions[cur][ref] = true
				h.resolved[ref] = append(h.resolved[ref], seqTs{cur, ev.ResolvedTs.Ts})
			}
		}
		for _, e := range ev.Events {
			span := regionSpan(t, leaders[e.RegionId])
			ref := refKey(leaders[e.RegionId].Ref())
			h.mentions[cur][ref] = true
			for _, row := range e.GetEntries().GetEntries() {
				require.True(t, bytes.Compare(row.Key, span[0]) >= 0 && (len(span[1]) == 0 || bytes.Compare(row.Key, span[1]) < 0),
					"row %x outside region %d", row.Key, e.RegionId)
				switch row.Type {
				case cdcpb.Event_COMMIT, cdcpb.Event_COMMITTED:
					require.Greater(t, row.CommitTs, resolved[e.RegionId], "TiKV rule: commit of %x at or below resolved ts", row.Key)
					require.LessOrEqual(t, row.CommitTs, end)
					c := commitAt{ref: ref, key: row.Key, start: row.StartTs, ts: row.CommitTs}
					h.commits = append(h.commits, c)
					ck := c.id()
					if h.commitRefs[ck] == nil {
						h.commitRefs[ck] = map[string]int{}
					} else {
						h.seen.duplicateCommit++
					}
					h.commitRefs[ck][ref]++
				case cdcpb.Event_ROLLBACK:
					h.rollbacks[fmt.Sprintf("%x|%d", row.Key, row.StartTs)] = true
				case cdcpb.Event_PREWRITE:
					k := fmt.Sprintf("%x|%d", row.Key, row.StartTs)
					if row.OpType == cdcpb.Event_Row_PUT && len(row.Value) == 0 {
						h.seen.refreshes++
						h.prewrites[k] = append(h.prewrites[k], prewriteAt{storeID, row.Generation, false})
						break
					}
					repeat := false
					for _, p := range h.prewrites[k] {
						repeat = repeat || p.content && p.gen == row.Generation
					}
					if repeat { // a lock rewritten with its value (min_commit_ts pushed)
						h.seen.rewrites++
						break
					}
					if row.Generation > 1 {
						h.seen.generations++
					}
					h.prewrites[k] = append(h.prewrites[k], prewriteAt{storeID, row.Generation, true})
				}
			}
		}
	})
	for id, inc := range leaders {
		require.Equal(t, end, resolved[id], "the last file resolves region %d (%s) at the end ts", id, refKey(inc.Ref()))
	}
}

// headerList is the leader list a header describes: its full list, or the
// stream's last full list (of file fullSeq) changed by its delta.
func headerList(t *testing.T, hd *formatv1.StoreFileHeader, full map[uint64]storefile.Incarnation, fullSeq uint64) map[uint64]storefile.Incarnation {
	decode := func(ri *formatv1.RegionIncarnation) storefile.Incarnation {
		inc, err := storefile.DecodeIncarnation(ri)
		require.NoError(t, err)
		return inc
	}
	out := map[uint64]storefile.Incarnation{}
	if hd.LeaderBaseSeq == 0 {
		for _, ri := range hd.LeaderRegions {
			inc := decode(ri)
			out[inc.Region.Id] = inc
		}
		return out
	}
	require.Equal(t, fullSeq, hd.LeaderBaseSeq, "seq %d: a delta against the last full list", hd.Seq)
	require.Empty(t, hd.LeaderRegions)
	for id, inc := range full {
		out[id] = inc
	}
	for _, id := range hd.LeaderRemoved {
		_, ok := out[id]
		require.True(t, ok, "seq %d: removes region %d, which the full list does not have", hd.Seq, id)
		delete(out, id)
	}
	for _, ri := range hd.LeaderAdded {
		inc := decode(ri)
		if old, ok := out[inc.Region.Id]; ok {
			require.NotEqual(t, old.Ref(), inc.Ref(), "seq %d: adds region %d as the full list has it", hd.Seq, inc.Region.Id)
		}
		out[inc.Region.Id] = inc
	}
	return out
}

type fileID struct{ store, seq uint64 }

type seqTs struct {
	file fileID
	ts   uint64
}

type endAt struct {
	file     fileID
	final    uint64
	takeover *formatv1.TakeoverSource
}

// history collects, across all streams of a tenant, what the cross-stream
// rules need.
type history struct {
	started  map[string]fileID // incarnation -> the file of its START
	ends     map[string][]endAt
	ledAtEnd map[string]bool // incarnations whose store still leads them after its last file
	preds    map[string][]string
	ranges   map[string][2][]byte
	resolved map[string][]seqTs         // incarnation -> its resolved ts, in stream order
	mentions map[fileID]map[string]bool // incarnations a file's header lists or its records are of
	commits  []commitAt
	// commit (key, start_ts, commit_ts) -> incarnations that wrote it
	commitRefs map[string]map[string]int
	prewrites  map[string][]prewriteAt // (key, start_ts) -> where its prewrites are
	rollbacks  map[string]bool         // (key, start_ts) of every ROLLBACK
	seen       seen
}

type prewriteAt struct {
	store, gen uint64
	content    bool
}

type commitAt struct {
	ref       string
	key       []byte
	start, ts uint64
}

func (c commitAt) id() string { return fmt.Sprintf("%x|%d|%d", c.key, c.start, c.ts) }

func newHistory() *history {
	return &history{started: map[string]fileID{}, ends: map[string][]endAt{}, ledAtEnd: map[string]bool{},
		preds: map[string][]string{}, ranges: map[string][2][]byte{}, resolved: map[string][]seqTs{},
		mentions:   map[fileID]map[string]bool{},
		commitRefs: map[string]map[string]int{},
		prewrites:  map[string][]prewriteAt{}, rollbacks: map[string]bool{}}
}

// check applies the cross-stream rules of the spec:
//   - a START never names an incarnation whose START was never uploaded, and
//     every incarnation named as a predecessor, and every one started and
//     not led at the end of its store's stream, ends exactly once (rule 3);
//   - a plain END comes from the store that started the incarnation; a
//     takeover END names that store, its through_seq file exists and lists
//     or carries the incarnation, and its resolved ts is the greatest the
//     incarnation published in that store's files through that seq;
//   - a successor never commits a key at or below the final resolved ts of
//     the predecessor that covered the key (rule 2), unless it writes again
//     a commit the predecessor's stream holds too (a full takeover).
func (h *history) check(t *testing.T) {
	for _, ps := range h.prewrites {
		apart, refreshApart := false, false
		for _, a := range ps {
			for _, b := range ps {
				apart = apart || (a.content && b.content && a.gen != b.gen && a.store != b.store)
				refreshApart = refreshApart || (!a.content && b.content && a.store != b.store)
			}
		}
		if apart {
			h.seen.generationsApart++
		}
		if refreshApart {
			h.seen.refreshApart++
		}
	}
	for ref, preds := range h.preds {
		for _, p := range preds {
			_, ok := h.started[p]
			require.True(t, ok, "%s names %s, whose START was never uploaded", ref, p)
			require.NotEmpty(t, h.ends[p], "predecessor %s of %s never ended", p, ref)
		}
	}
	for ref, f := range h.started {
		if !h.ledAtEnd[ref] {
			require.Len(t, h.ends[ref], 1, "%s (started in store %d seq %d) must end exactly once", ref, f.store, f.seq)
		} else {
			require.Empty(t, h.ends[ref], "%s ended but its store still leads it", ref)
		}
	}
	for ref, ends := range h.ends {
		f, ok := h.started[ref]
		require.True(t, ok, "END of %s, which never started", ref)
		for _, e := range ends {
			if e.takeover == nil {
				require.Equal(t, f.store, e.file.store, "plain END of %s from another store than its START", ref)
				continue
			}
			require.Equal(t, f.store, e.takeover.StoreId, "takeover END of %s names the wrong store", ref)
			n := fileID{e.takeover.StoreId, e.takeover.ThroughSeq}
			require.True(t, h.mentions[n][ref], "takeover END of %s: through_seq file %v does not mention it", ref, n)
			require.False(t, h.mentions[fileID{n.store, n.seq + 1}][ref], "takeover END of %s: through_seq %d is not the last file mentioning it", ref, n.seq)
			var want uint64
			for _, r := range h.resolved[ref] {
				if r.file.store == n.store && r.file.seq <= n.seq {
					want = max(want, r.ts)
				}
			}
			require.Equal(t, want, e.final, "takeover END of %s: resolved ts", ref)
		}
	}
	for _, c := range h.commits {
		for _, p := range h.preds[c.ref] {
			r, ok := h.ranges[p]
			require.True(t, ok, "predecessor %s of %s never ended", p, c.ref)
			if bytes.Compare(c.key, r[0]) >= 0 && (len(r[1]) == 0 || bytes.Compare(c.key, r[1]) < 0) && c.ts <= h.ends[p][0].final {
				require.Greater(t, len(h.commitRefs[c.id()]), 1,
					"%s commits %x at or below predecessor %s's final resolved ts and is no takeover duplicate", c.ref, c.key, p)
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
	chaos := sim.ChaosConfig()
	chaos.Duration = 5 * time.Second
	for _, c := range []sim.Config{cfg, chaos} {
		a, ta, sa := simtest.Run(t, c)
		b, tb, _ := simtest.Run(t, c)
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
		if c.CrashEvery > 0 {
			require.Greater(t, sa.Crashes, int64(0))
		}
		c.Seed++
		_, tc, _ := simtest.Run(t, c)
		require.NotEqual(t, ta, tc, "another seed should give another history")
	}
}

func TestConfigErrorsNameTheFlag(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Stores = 0
	cfg.RollbackRatio = 2
	err := cfg.Validate()
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "--stores") && strings.Contains(err.Error(), "--rollback-ratio"), err.Error())

	cfg = sim.DefaultConfig()
	cfg.CrashEvery = time.Second
	cfg.CrashDown = 100 * time.Millisecond
	cfg.HeartbeatEvery = time.Millisecond
	cfg.PipelinedEvery = time.Second
	cfg.PipelinedGenerations = 0
	cfg.RollbackMergeRatio = -1
	err = cfg.Validate()
	require.Error(t, err)
	for _, flag := range []string{"--crash-down", "--heartbeat-every", "--pipelined-generations", "--rollback-merge-ratio"} {
		require.Contains(t, err.Error(), flag)
	}
	cfg = sim.DefaultConfig()
	cfg.Stores, cfg.Regions, cfg.CrashEvery = 1, 4, time.Second
	require.ErrorContains(t, cfg.Validate(), "--crash-every")
	cfg = sim.DefaultConfig()
	cfg.CrashEvery = -time.Second
	require.ErrorContains(t, cfg.Validate(), "--crash-every")
	cfg = sim.DefaultConfig()
	cfg.HotTableShare = 1.5
	require.ErrorContains(t, cfg.Validate(), "--hot-table-share")
	chaos := sim.ChaosConfig()
	require.NoError(t, chaos.Validate())
}

// crashConfig is testConfig with store crashes.
func crashConfig(seed uint64) sim.Config {
	cfg := testConfig()
	cfg.Seed = seed
	cfg.Duration = 10 * time.Second
	cfg.RowsPerSec = 2000
	cfg.CrashEvery = 1500 * time.Millisecond
	cfg.CrashDown = 2 * time.Second
	return cfg
}

// TestCrashesAndTakeovers crashes stores: the new leaders take the
// crashed stores' incarnations over in every form — partial, full,
// cascaded (the new leader crashes too before uploading its takeover) and
// of a transfer whose END the crash lost — and the crashed stores restart.
// checkFiles proves on the files alone that the truth is exact (every lost
// event was written again), that every takeover END's through_seq file
// exists and mentions the incarnation and its resolved ts is the one that
// store uploaded, that no START names an incarnation whose START was never
// uploaded, that every started incarnation ends exactly once, and that a
// restarted store's first file continues its sequence and lists no leader.
func TestCrashesAndTakeovers(t *testing.T) {
	var sum sim.Stats
	for seed := uint64(1); seed <= 4; seed++ {
		cfg := crashConfig(seed)
		store, truthBytes, st := simtest.Run(t, cfg)
		seen := checkFiles(t, cfg, store, truthBytes, st)
		require.Equal(t, st.Crashes, st.Restarts, "seed %d: every crashed store restarts", seed)
		require.Equal(t, int(st.Restarts)*cfg.Tenants, seen.restarts)
		require.Greater(t, seen.duplicateCommit, 0)
		sum.Crashes += st.Crashes
		sum.Takeovers += st.Takeovers
		sum.TakeoversPartial += st.TakeoversPartial
		sum.TakeoversFull += st.TakeoversFull
		sum.TakeoversCascaded += st.TakeoversCascaded
		sum.TakeoversOfLostEnds += st.TakeoversOfLostEnds
		sum.LostSplits += st.LostSplits
		sum.LostMergeEnds += st.LostMergeEnds
		sum.LostTransfers += st.LostTransfers
	}
	t.Logf("%d crashes, %d takeovers: %d partial, %d full, %d cascaded, %d of lost ENDs; lost %d split, %d merge, %d transfer ENDs",
		sum.Crashes, sum.Takeovers, sum.TakeoversPartial, sum.TakeoversFull, sum.TakeoversCascaded, sum.TakeoversOfLostEnds,
		sum.LostSplits, sum.LostMergeEnds, sum.LostTransfers)
	require.Greater(t, sum.Crashes, int64(4))
	require.Greater(t, sum.TakeoversPartial, int64(0))
	require.Greater(t, sum.TakeoversFull, int64(0))
	require.Greater(t, sum.TakeoversCascaded, int64(0))
	require.Greater(t, sum.TakeoversOfLostEnds, int64(0))
	require.Greater(t, sum.LostSplits, int64(0))
	require.Greater(t, sum.LostMergeEnds, int64(0))
	require.Greater(t, sum.LostTransfers, int64(0))
}

// TestLockRefreshes: long-running and large transactions refresh their
// primary lock with PREWRITEs of an empty PUT value, some of them in
// another store's stream than the value; the decoder's rank rule keeps the
// value and the truth stays exact.
func TestLockRefreshes(t *testing.T) {
	cfg := testConfig()
	cfg.HeartbeatEvery = 200 * time.Millisecond
	store, truthBytes, st := simtest.Run(t, cfg)
	seen := checkFiles(t, cfg, store, truthBytes, st)
	require.Greater(t, st.Heartbeats, int64(10))
	require.Greater(t, st.LockRewrites, int64(10))
	require.Greater(t, seen.rewrites, 0, "rewrites with the value")
	require.Equal(t, int(st.Heartbeats+st.LockRewrites), seen.refreshes+seen.rewrites,
		"every lock rewrite is an empty PUT or repeats its value")
	require.Greater(t, seen.refreshApart, 0)
}

// TestOrphanRollbacks: some rolled-back transactions leave only ROLLBACK
// rows (their locks were pessimistic, or their prewrite failed), as a real
// TiDB upstream does; the truth is unaffected.
func TestOrphanRollbacks(t *testing.T) {
	cfg := testConfig()
	cfg.RollbackRatio = 0.2
	store, truthBytes, st := simtest.Run(t, cfg)
	seen := checkFiles(t, cfg, store, truthBytes, st)
	require.Greater(t, st.OrphanRollbacks, int64(10))
	require.Greater(t, st.Rollbacks, st.OrphanRollbacks, "others prewrote first")
	require.Greater(t, seen.orphanRollbacks, 10)
}

// TestPipelinedDML: pipelined transactions prewrite their keys in several
// generations, some in different stores' streams; only the highest
// generation's value is in the truth, which the files reproduce exactly.
func TestPipelinedDML(t *testing.T) {
	cfg := testConfig()
	cfg.PipelinedEvery = 200 * time.Millisecond
	cfg.PipelinedGenerations = 4
	cfg.HeartbeatEvery = 300 * time.Millisecond
	store, truthBytes, st := simtest.Run(t, cfg)
	seen := checkFiles(t, cfg, store, truthBytes, st)
	require.Greater(t, st.PipelinedTxns, int64(10))
	require.Equal(t, int(st.PipelinedPrewrites), seen.generations)
	require.Greater(t, seen.generationsApart, 0)
}

// TestRollbackMerge: rolled-back merges start the source again at
// version+2 naming the ended incarnation.
func TestRollbackMerge(t *testing.T) {
	cfg := testConfig()
	cfg.RollbackMergeRatio = 0.5
	store, truthBytes, st := simtest.Run(t, cfg)
	seen := checkFiles(t, cfg, store, truthBytes, st)
	require.Greater(t, st.RollbackMerges, int64(2))
	require.Equal(t, int(st.RollbackMerges), seen.rollbackMerges)
	require.Greater(t, st.Merges, int64(2))
}

// TestChaos runs ChaosConfig, every behaviour at once, over a few seeds.
func TestChaos(t *testing.T) {
	var sum sim.Stats
	for seed := uint64(1); seed <= 3; seed++ {
		cfg := sim.ChaosConfig()
		cfg.Seed = seed
		cfg.FullListEvery = 1 + seed // full lists between restarts too
		store, truthBytes, st := simtest.Run(t, cfg)
		checkFiles(t, cfg, store, truthBytes, st)
		sum.Crashes += st.Crashes
		sum.TakeoversPartial += st.TakeoversPartial
		sum.TakeoversFull += st.TakeoversFull
		sum.TakeoversCascaded += st.TakeoversCascaded
		sum.Heartbeats += st.Heartbeats
		sum.PipelinedTxns += st.PipelinedTxns
		sum.RollbackMerges += st.RollbackMerges
	}
	for name, v := range map[string]int64{"crashes": sum.Crashes, "partial takeovers": sum.TakeoversPartial,
		"full takeovers": sum.TakeoversFull, "cascaded takeovers": sum.TakeoversCascaded, "heartbeats": sum.Heartbeats,
		"pipelined transactions": sum.PipelinedTxns, "rolled back merges": sum.RollbackMerges} {
		require.Greater(t, v, int64(0), name)
	}
}

// TestFormatVersions: format versions 1 and 2 of one seed are one history
// (the same truth and the same files by name), and both pass checkFiles,
// which rebuilds every version 2 header's list from its delta and the last
// full list and checks it against what the records add up to.
func TestFormatVersions(t *testing.T) {
	plain, chaos := testConfig(), sim.ChaosConfig()
	plain.Duration, chaos.Duration = 4*time.Second, 6*time.Second
	for _, c := range []sim.Config{plain, chaos} {
		c.FullListEvery = 3
		v1 := c
		v1.FormatVersion = 1
		a, ta, sa := simtest.Run(t, c)
		b, tb, sb := simtest.Run(t, v1)
		require.Equal(t, ta, tb, "the truth does not depend on the format")
		require.Equal(t, keysOf(t, a), keysOf(t, b))
		checkFiles(t, c, a, ta, sa)
		checkFiles(t, v1, b, tb, sb)
		require.Less(t, sa.Bytes, sb.Bytes, "version 2 files are smaller")
	}
}

func keysOf(t *testing.T, store objstore.Store) []string {
	objs, err := objstore.ListAll(context.Background(), store, "", "")
	require.NoError(t, err)
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	return keys
}

// TestHotTable: with --hot-table-share 0.8 the tenant's first table takes
// 80% of the committed rows (counted in the truth, large transactions
// off, which pick any table), the other tables share the rest, and the
// files still reproduce the truth exactly; with DDL and region churn on,
// the truth still verifies.
func TestHotTable(t *testing.T) {
	t.Run("share", func(t *testing.T) {
		cfg := testConfig()
		cfg.HotTableShare = 0.8
		cfg.DDLEvery, cfg.LargeTxnEvery = 0, 0
		store, truthBytes, st := simtest.Run(t, cfg)
		checkFiles(t, cfg, store, truthBytes, st)
		perTable := map[uint64]map[int64]int{} // tenant -> table -> rows
		eachTruthLine(t, truthBytes, func(l *truth.Line) {
			if l.Kind == truth.KindRow {
				if perTable[l.Row.Tenant] == nil {
					perTable[l.Row.Tenant] = map[int64]int{}
				}
				perTable[l.Row.Tenant][l.Row.TableID]++
			}
		})
		require.Len(t, perTable, cfg.Tenants)
		for tenant, tables := range perTable {
			first, total := int64(0), 0
			for id, n := range tables {
				if first == 0 || id < first {
					first = id
				}
				total += n
			}
			share := float64(tables[first]) / float64(total)
			require.InDelta(t, 0.8, share, 0.03, "tenant %d: the first table's share of %d rows", tenant, total)
			require.Len(t, tables, cfg.Tables, "tenant %d: every table gets rows", tenant)
			for id, n := range tables {
				if id != first {
					require.Greater(t, float64(n)/float64(total), 0.01, "tenant %d table %d", tenant, id)
				}
			}
		}
	})
	t.Run("churn", func(t *testing.T) {
		cfg := testConfig()
		cfg.HotTableShare = 0.8
		store, truthBytes, st := simtest.Run(t, cfg)
		require.Greater(t, st.DDLs, int64(0))
		checkFiles(t, cfg, store, truthBytes, st)
	})
}
