package route_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/route"
	"github.com/tistream/tistream/libs/sim/simtest"
	"github.com/tistream/tistream/libs/tidbcodec"
	"github.com/tistream/tistream/libs/watermark"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

func storeKeys(t testing.TB, store objstore.Store, storeID uint64) []string {
	objs, err := objstore.ListAll(context.Background(), store, layout.StorePrefix(1, 1, storeID), "")
	require.NoError(t, err)
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	return keys
}

// TestVersion1WriterUnchanged: the simulator's format version 1 output is
// byte for byte what the writer wrote before format version 2 (the
// fixture), so a producer that keeps writing version 1 for consumers not
// upgraded yet writes exactly the old files. The fixture's blocks were
// compressed by the Go zstd codec, so the files are compared as that codec
// writes them (libzstd's frames differ in bytes, not in what they decode
// to: libs/formats/container's TestCodecsAgree).
func TestVersion1WriterUnchanged(t *testing.T) {
	restore, err := container.UseCodec("go")
	require.NoError(t, err)
	defer restore()
	old, cfg := simtest.Version1Fixture(t)
	cfg.FormatVersion = 1
	now, _, _ := simtest.Run(t, cfg)
	keys, err := objstore.ListAll(context.Background(), old, "", "")
	require.NoError(t, err)
	got, err := objstore.ListAll(context.Background(), now, "", "")
	require.NoError(t, err)
	require.Equal(t, keys, got, "the simulator's history for the fixture's seed changed; regenerate libs/sim/simtest/testdata/v1history with the writer of format version 1")
	for _, k := range keys {
		a, err := old.Get(context.Background(), k.Key)
		require.NoError(t, err)
		b, err := now.Get(context.Background(), k.Key)
		require.NoError(t, err)
		require.True(t, bytes.Equal(a, b), "%s differs from the version 1 writer's", k.Key)
	}
}

// transcode rewrites a store's version 1 files into format version 2 with
// the producer's own tools, independently of the simulator: headers from
// storefile.Leaders (a full list every fullEvery files, deltas between),
// and, with group, every resolved ts record that names most of the regions
// the store leads as a LeaderResolvedTs excepting the others.
func transcode(t testing.TB, src, dst objstore.Store, storeID, fullEvery uint64, group bool) (groups int) {
	ctx := context.Background()
	leaders := storefile.NewLeaders(fullEvery)
	stream := storefile.NewStream(nil)
	var groupTs uint64
	for _, key := range storeKeys(t, src, storeID) {
		data, err := src.Get(ctx, key)
		require.NoError(t, err)
		r, err := stream.Open(key, data)
		require.NoError(t, err)
		if len(r.Dropped()) > 0 {
			leaders.Restart() // the store restarted: its first file lists in full
		}
		h := proto(r.Header())
		leaders.Header(h)
		w, err := storefile.NewWriter(h)
		require.NoError(t, err)
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			switch {
			case rec.RegionChange != nil:
				rc := rec.RegionChange
				switch {
				case rc.Kind == formatv1.RegionChange_KIND_START:
					leaders.Start(rec.Incarnation.Region.Id, rc.Incarnation)
				case rc.Reason != formatv1.RegionChange_REASON_TAKEOVER:
					leaders.End(rec.Incarnation.Region.Id)
				}
				require.NoError(t, w.AddRegionChange(rc))
			case group && rec.Event.ResolvedTs != nil && 2*len(rec.Event.ResolvedTs.Regions) > r.Leaders() && rec.Event.ResolvedTs.Ts >= groupTs:
				rt := rec.Event.ResolvedTs
				listed := map[uint64]bool{}
				for _, id := range rt.Regions {
					listed[id] = true
				}
				var except []uint64
				r.EachLeader(func(inc storefile.Incarnation) {
					if !listed[inc.Region.Id] {
						except = append(except, inc.Region.Id)
					}
				})
				slices.Sort(except)
				groupTs = rt.Ts
				groups++
				require.NoError(t, w.AddLeaderResolved(&formatv1.LeaderResolvedTs{Ts: rt.Ts, ExceptRegions: except}))
			default:
				require.NoError(t, w.AddEvent(rec.Event))
			}
		}
		b, err := w.Finish()
		require.NoError(t, err)
		leaders.Opened(h)
		require.NoError(t, dst.Put(ctx, key, b))
	}
	return groups
}

// proto copies a header's fields that are not about the leader list.
func proto(h *formatv1.StoreFileHeader) *formatv1.StoreFileHeader {
	return &formatv1.StoreFileHeader{ClusterId: h.ClusterId, TenantId: h.TenantId, StoreId: h.StoreId, Seq: h.Seq,
		PrevMaxTs: h.PrevMaxTs, MaxTs: h.MaxTs, CreatedUnixMs: h.CreatedUnixMs, Producer: h.Producer}
}

// ranges is the compatibility test's routing table: four ranges, cut at
// table boundaries.
func ranges(t testing.TB) *route.Table {
	tb, err := route.NewTable([]route.Range{
		{ID: 1, End: tidbcodec.TablePrefix(103)},
		{ID: 2, Start: tidbcodec.TablePrefix(103), End: tidbcodec.TablePrefix(106)},
		{ID: 3, Start: tidbcodec.TablePrefix(106), End: tidbcodec.TablePrefix(108)},
		{ID: 4, Start: tidbcodec.TablePrefix(108)},
	})
	require.NoError(t, err)
	return tb
}

// outcome is what routing a history produced for one range: its rows in
// order and the watermark map's state after each file.
type outcome struct {
	rows  []string
	after []string
}

// applyEvent gives a watermark map a routed event, as a sorter range does.
func applyEvent(m *watermark.Map, store uint64, ev *route.Event) {
	refs := func(rs []route.Ref) []watermark.Ref {
		out := make([]watermark.Ref, len(rs))
		for i, r := range rs {
			out[i] = watermark.Ref(r)
		}
		return out
	}
	switch ev.Kind {
	case route.KindRegionStart:
		m.StartFrom(store, watermark.Ref(ev.Inc), ev.Start, ev.End, refs(ev.Preds))
	case route.KindRegionEnd:
		var tk *watermark.Takeover
		if ev.TakeoverStore != 0 {
			tk = &watermark.Takeover{Store: ev.TakeoverStore, ThroughSeq: ev.TakeoverSeq}
		}
		m.EndFrom(store, watermark.Ref(ev.Inc), ev.Start, ev.End, ev.Ts, tk)
	case route.KindResolved:
		for _, r := range ev.Refs {
			m.ResolvedFrom(store, watermark.Ref(r), ev.Ts)
		}
	case route.KindLeaderResolved:
		m.LeaderResolvedFrom(store, ev.Ts, refs(ev.Refs))
	case route.KindLeaders:
		m.LeadersFrom(store, refs(ev.Refs))
	}
}

// routeAll routes every store's files, a file of each store in turn, with
// one Router per store, and applies them to one watermark map per range.
func routeAll(t *testing.T, store objstore.Store, tb *route.Table) map[uint64]*outcome {
	out := map[uint64]*outcome{}
	maps := map[uint64]*watermark.Map{}
	for _, r := range tb.Ranges() {
		m, err := watermark.New(r.Start, r.End)
		require.NoError(t, err)
		maps[r.ID], out[r.ID] = m, &outcome{}
	}
	keys := map[uint64][]string{}
	routers := map[uint64]*route.Router{}
	rounds := 0
	for s := uint64(1); s <= 3; s++ {
		keys[s] = storeKeys(t, store, s)
		routers[s] = route.NewRouter(tb)
		rounds = max(rounds, len(keys[s]))
	}
	for i := range rounds {
		for s := uint64(1); s <= 3; s++ {
			if i >= len(keys[s]) {
				continue
			}
			data, err := store.Get(context.Background(), keys[s][i])
			require.NoError(t, err)
			batches, h, err := routers[s].Route(keys[s][i], data)
			require.NoError(t, err)
			for id, m := range maps {
				if b := batches[id]; b != nil {
					for j := range b.Events {
						ev := &b.Events[j]
						if ev.Kind == route.KindRow {
							out[id].rows = append(out[id].rows, fmt.Sprintf("%d %x %d %d", ev.Row.Type, ev.Row.Key, ev.Row.StartTs, ev.Row.CommitTs))
						}
						applyEvent(m, s, ev)
					}
					m.Progress(s, h.Seq)
				}
				var st strings.Builder
				fmt.Fprintf(&st, "store %d file %d: watermark %d;", s, h.Seq, m.Watermark())
				for e := range m.All() {
					fmt.Fprintf(&st, " [%x,%x)%v=%d", e.Start, e.End, e.Owner, e.Ts)
				}
				out[id].after = append(out[id].after, st.String())
			}
		}
	}
	return out
}

// TestVersion2ReadsAsVersion1: the fixture's version 1 files and the same
// history in format version 2 (transcoded with the producer's tools: full
// leader lists every other file and LeaderResolvedTs records) route to the
// same rows and leave the watermark maps in the same state after every file
// of every store, restarts and takeovers included.
func TestVersion2ReadsAsVersion1(t *testing.T) {
	v1, _ := simtest.Version1Fixture(t)
	v2 := objstore.NewMemory()
	groups := 0
	for s := uint64(1); s <= 3; s++ {
		groups += transcode(t, v1, v2, s, 2, true)
	}
	var deltas, v1Bytes, v2Bytes int
	for s := uint64(1); s <= 3; s++ {
		for _, k := range storeKeys(t, v2, s) {
			b, _ := v2.Get(context.Background(), k)
			a, _ := v1.Get(context.Background(), k)
			v1Bytes, v2Bytes = v1Bytes+len(a), v2Bytes+len(b)
			h, err := storefile.ParseHeader(k, b)
			require.NoError(t, err)
			if h.LeaderBaseSeq != 0 {
				deltas++
			}
		}
	}
	require.Positive(t, deltas, "the transcoded files have delta headers")
	require.Positive(t, groups, "the transcoded files have LeaderResolvedTs records")
	tb := ranges(t)
	want, got := routeAll(t, v1, tb), routeAll(t, v2, tb)
	for _, r := range tb.Ranges() {
		require.NotEmpty(t, want[r.ID].rows, "range %d", r.ID)
		require.Equal(t, want[r.ID].rows, got[r.ID].rows, "range %d: rows", r.ID)
		require.Equal(t, want[r.ID].after, got[r.ID].after, "range %d: watermark maps", r.ID)
	}
	t.Logf("version 1: %d bytes, version 2: %d bytes, %d delta headers, %d LeaderResolvedTs", v1Bytes, v2Bytes, deltas, groups)
}
