package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

var ctx = context.Background()

func key(table, handle int64) []byte { return tidbcodec.EncodeRecordKey(table, handle) }

// rowsIn returns a RowSource over the rows of all with prev < commit_ts <= wm.
func rowsIn(all []Row, prev, wm uint64) RowSource {
	return func(yield func(*Row) error) error {
		for i := range all {
			if all[i].CommitTs > prev && all[i].CommitTs <= wm {
				if err := yield(&all[i]); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

func genRows(rng *rand.Rand, n int, tables []int64, fromTs uint64) []Row {
	rows := make([]Row, 0, n)
	ts := fromTs
	for len(rows) < n {
		ts += uint64(1 + rng.IntN(5))
		txn := 1 + rng.IntN(4)
		start := ts - 1
		for j := 0; j < txn && len(rows) < n; j++ {
			rows = append(rows, Row{CommitTs: ts, StartTs: start, Op: formatv1.Op_OP_PUT,
				Key: key(tables[rng.IntN(len(tables))], rng.Int64N(1<<30)), Value: []byte(fmt.Sprintf("v%d", len(rows)))})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return Compare(&rows[i], &rows[j]) < 0 })
	// drop exact duplicates of (commit, start, key)
	out := rows[:0]
	for i := range rows {
		if i == 0 || Compare(&rows[i-1], &rows[i]) != 0 {
			out = append(out, rows[i])
		}
	}
	return out
}

func singleRangeManifest(tenant uint64) *formatv1.Manifest {
	return &formatv1.Manifest{TenantId: tenant, Version: 1, NextRangeId: 2, Ranges: []*formatv1.RangeDescriptor{
		{RangeId: 1, State: formatv1.RangeDescriptor_STATE_ACTIVE, OpenedAtTs: 100}}}
}

// publish flushes rows in chunks at the given watermarks, each in its own
// publication of the range's group.
func publish(t *testing.T, w *RangeWriter, all []Row, wms []uint64) {
	t.Helper()
	for _, wm := range wms {
		_, err := w.Flush(ctx, wm, rowsIn(all, w.Watermark(), wm))
		require.NoError(t, err)
	}
}

// newGroup starts a group writer (closed at the end of the test).
func newGroup(t *testing.T, store objstore.Store, tenant uint64, id string, o ...GroupOptions) *GroupWriter {
	t.Helper()
	var opts GroupOptions
	if len(o) > 0 {
		opts = o[0]
	}
	if opts.Grace > 0 && opts.Grace < time.Second {
		// Publications are deleted at once, not after a grace readers are
		// behind by: readers look for the segment covering a missing one
		// at every poll, not after floorCheckEvery (30 s).
		shortChecks(t)
	}
	g, err := NewGroupWriter(store, tenant, id, "sorter-"+id, opts)
	require.NoError(t, err)
	t.Cleanup(g.Close)
	return g
}

// noSegments never cuts a segment.
var noSegments = GroupOptions{SegmentBytes: 1 << 40, SegmentAge: 1 << 62, SegmentPubs: 1 << 30}

// groupModes are the ways a group's publications can be found: as
// publications only, in segments as well, and in segments only (the
// publications they cover deleted at once).
var groupModes = map[string]GroupOptions{
	"pubs":          noSegments,
	"segments":      {SegmentPubs: 4, SegmentBytes: 1 << 40, SegmentAge: 1 << 62, Grace: -1},
	"segments-only": {SegmentPubs: 3, SegmentBytes: 1 << 40, SegmentAge: 1 << 62, Grace: time.Nanosecond},
}

func pullAll(t *testing.T, store objstore.Store, tenant uint64, filter Filter, from uint64) ([]Row, uint64) {
	p, err := NewPuller(ctx, store, tenant, nil, nil, filter, from)
	require.NoError(t, err)
	var out []Row
	var resolved uint64
	for i := 0; i < 10000; i++ {
		rows, r, caughtUp, err := p.Poll(ctx)
		require.NoError(t, err)
		out = append(out, rows...)
		require.GreaterOrEqual(t, r, resolved)
		resolved = r
		if caughtUp {
			return out, resolved
		}
	}
	t.Fatal("puller never caught up")
	return nil, 0
}

func TestFlushAndPullFromAnyTs(t *testing.T) {
	for name, o := range groupModes {
		t.Run(name, func(t *testing.T) { testFlushAndPullFromAnyTs(t, o) })
	}
}

func testFlushAndPullFromAnyTs(t *testing.T, o GroupOptions) {
	store := objstore.NewMemory()
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	g := newGroup(t, store, 1, "a", o)
	w, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 1))
	all := genRows(rng, 3000, []int64{100, 101, 102}, 100)
	last := all[len(all)-1].CommitTs
	var wms []uint64
	for wm := uint64(150); wm < last+50; wm += uint64(20 + rng.IntN(200)) {
		wms = append(wms, wm)
	}
	wms = append(wms, last+50)
	// Some flushes publish no rows: they must still move the watermark.
	publish(t, w, all, wms)
	g.WaitSegments()

	for _, from := range []uint64{0, 100, 101, all[0].CommitTs, all[len(all)/2].CommitTs, all[len(all)/2].CommitTs + 1, last, last + 1, last + 100} {
		got, resolved := pullAll(t, store, 1, nil, from)
		var want []Row
		for _, r := range all {
			if r.CommitTs >= from {
				want = append(want, r)
			}
		}
		require.Equal(t, last+50, resolved, "from %d", from)
		require.Equal(t, len(want), len(got), "from %d", from)
		for i := range want {
			require.Equal(t, 0, Compare(&want[i], &got[i]), "from %d row %d", from, i)
			require.Equal(t, want[i].Value, got[i].Value)
		}
	}
	// A table filter returns that table's rows only.
	span := tidbcodec.TableSpan(101)
	got, _ := pullAll(t, store, 1, span.Contains, 0)
	for _, r := range got {
		id, err := tidbcodec.DecodeTableID(r.Key)
		require.NoError(t, err)
		require.Equal(t, int64(101), id)
	}
	require.NotEmpty(t, got)
}

func TestFollowSeesNewEntries(t *testing.T) {
	store := objstore.NewMemory()
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	w, err := CreateRange(ctx, newGroup(t, store, 1, "a"), RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1)
	require.NoError(t, err)
	all := genRows(rand.New(rand.NewPCG(2, 2)), 200, []int64{100}, 100)
	p, err := NewPuller(ctx, store, 1, nil, nil, nil, 0)
	require.NoError(t, err)
	rows, resolved, caughtUp, err := p.Poll(ctx)
	require.NoError(t, err)
	require.Empty(t, rows)
	require.True(t, caughtUp)
	var got []Row
	for i, wm := range []uint64{all[50].CommitTs, all[120].CommitTs, all[199].CommitTs} {
		_, err := w.Flush(ctx, wm, rowsIn(all, w.Watermark(), wm))
		require.NoError(t, err)
		rows, resolved, _, err = p.Poll(ctx)
		require.NoError(t, err)
		require.Equal(t, wm, resolved, "poll %d", i)
		got = append(got, rows...)
	}
	require.Len(t, got, 200)
}

// A stale owner that lost the range cannot publish anything readers see.
func TestStaleOwnerIsFenced(t *testing.T) {
	store := objstore.NewMemory()
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	all := genRows(rand.New(rand.NewPCG(3, 3)), 100, []int64{100}, 100)
	gOld, gNew := newGroup(t, store, 1, "old"), newGroup(t, store, 1, "new")
	old, err := CreateRange(ctx, gOld, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1)
	require.NoError(t, err)
	_, err = old.Flush(ctx, all[30].CommitTs, rowsIn(all, 100, all[30].CommitTs))
	require.NoError(t, err)

	// The range moves: the new owner takes it over with a greater epoch.
	nw, err := OpenRange(ctx, gNew, 1, 1, 2)
	require.NoError(t, err)
	require.Equal(t, all[30].CommitTs, nw.Watermark())

	// The paused old owner resumes and tries to publish: refused.
	_, err = old.Flush(ctx, all[60].CommitTs, rowsIn(all, all[30].CommitTs, all[60].CommitTs))
	require.ErrorIs(t, err, ErrFenced)
	require.True(t, old.Fenced())
	// An owner with a lower epoch cannot take it back either.
	_, err = OpenRange(ctx, newGroup(t, store, 1, "older"), 1, 1, 1)
	require.ErrorIs(t, err, ErrFenced)

	_, err = nw.Flush(ctx, all[99].CommitTs+1, rowsIn(all, nw.Watermark(), all[99].CommitTs+1))
	require.NoError(t, err)
	got, resolved := pullAll(t, store, 1, nil, 0)
	require.Equal(t, all[99].CommitTs+1, resolved)
	require.Len(t, got, 100, "exactly once: the fenced owner published nothing more")
}

func TestStartOlderThanRetentionIsAnErrorV1(t *testing.T) {
	store := objstore.NewMemory()
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	w, err := v1CreateRange(ctx, store, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1, "a")
	require.NoError(t, err)
	for wm := uint64(200); wm <= 1000; wm += 100 {
		_, err := w.Flush(ctx, wm, nil)
		require.NoError(t, err)
	}
	// Expire entries 1..4 (watermarks up to 400).
	for seq := uint64(1); seq <= 4; seq++ {
		require.NoError(t, store.Delete(ctx, fmt.Sprintf("committed_data_pool/tenant-1/range-1/log/%020d", seq)))
	}
	_, err = OpenRangeReader(ctx, store, 1, 1, 300)
	require.ErrorIs(t, err, ErrCompacted)
	r, err := OpenRangeReader(ctx, store, 1, 1, 401)
	require.NoError(t, err)
	require.Equal(t, uint64(1000), r.Watermark())
}

func TestCorruptFileIsAnErrorV1(t *testing.T) {
	store := objstore.NewMemory()
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	w, err := v1CreateRange(ctx, store, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1, "a")
	require.NoError(t, err)
	all := genRows(rand.New(rand.NewPCG(4, 4)), 50, []int64{100}, 100)
	e, err := w.Flush(ctx, all[49].CommitTs, rowsIn(all, 100, all[49].CommitTs))
	require.NoError(t, err)
	b, err := store.Get(ctx, e.File.Key)
	require.NoError(t, err)
	b[len(b)/2] ^= 0x40
	require.NoError(t, store.Put(ctx, e.File.Key, b))
	p, err := NewPuller(ctx, store, 1, nil, nil, nil, 0)
	require.NoError(t, err)
	_, _, _, err = p.Poll(ctx)
	require.Error(t, err)
	require.Contains(t, err.Error(), e.File.Key)
}

// Split then merge through the manifest: a puller from the start follows
// seals into successors and returns every row once, in order.
func TestPullAcrossSplitAndMerge(t *testing.T) {
	store := objstore.NewMemory()
	tables := []int64{100, 101, 102, 103}
	all := genRows(rand.New(rand.NewPCG(5, 5)), 2000, tables, 100)
	third := all[len(all)/3].CommitTs
	twoThirds := all[2*len(all)/3].CommitTs
	last := all[len(all)-1].CommitTs
	mid := tidbcodec.TablePrefix(102)

	// v1: one range. It flushes to `third` and is split at table 102.
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	ga, gb := newGroup(t, store, 1, "a"), newGroup(t, store, 1, "b")
	r1, err := CreateRange(ctx, ga, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1)
	require.NoError(t, err)
	publish(t, r1, all, []uint64{third / 2, third})
	left := func(k []byte) bool { return string(k) < string(mid) }
	part := func(keep func([]byte) bool) []Row {
		var out []Row
		for _, r := range all {
			if keep(r.Key) {
				out = append(out, r)
			}
		}
		return out
	}
	require.NoError(t, PublishManifest(ctx, store, splitManifest(third, mid)))
	r2, r3 := createChildren(t, ga, gb, third, mid)
	require.NoError(t, r1.Seal(ctx, []uint64{2, 3}))
	lrows, rrows := part(left), part(func(k []byte) bool { return !left(k) })
	publish(t, r2, lrows, []uint64{twoThirds - 7, twoThirds})
	publish(t, r3, rrows, []uint64{twoThirds})
	// v3: 2 and 3 merge into 4 at twoThirds.
	require.NoError(t, PublishManifest(ctx, store, &formatv1.Manifest{TenantId: 1, Version: 3, NextRangeId: 5, Ranges: []*formatv1.RangeDescriptor{
		{RangeId: 1, State: formatv1.RangeDescriptor_STATE_RETIRED, OpenedAtTs: 100, RetiredAtTs: third, SuccessorRangeIds: []uint64{2, 3}},
		{RangeId: 2, State: formatv1.RangeDescriptor_STATE_RETIRED, EndKey: mid, OpenedAtTs: third, RetiredAtTs: twoThirds, ParentRangeIds: []uint64{1}, SuccessorRangeIds: []uint64{4}},
		{RangeId: 3, State: formatv1.RangeDescriptor_STATE_RETIRED, StartKey: mid, OpenedAtTs: third, RetiredAtTs: twoThirds, ParentRangeIds: []uint64{1}, SuccessorRangeIds: []uint64{4}},
		{RangeId: 4, State: formatv1.RangeDescriptor_STATE_ACTIVE, OpenedAtTs: twoThirds, ParentRangeIds: []uint64{2, 3}},
	}}))
	r4, err := CreateRange(ctx, gb, RangeSpec{Tenant: 1, RangeID: 4, OpenedAt: twoThirds, Parents: []uint64{2, 3}}, 1)
	require.NoError(t, err)
	require.NoError(t, r2.Seal(ctx, []uint64{4}))
	require.NoError(t, r3.Seal(ctx, []uint64{4}))
	publish(t, r4, all, []uint64{last + 10})

	for _, from := range []uint64{0, third - 3, third, third + 1, twoThirds, last} {
		got, resolved := pullAll(t, store, 1, nil, from)
		require.Equal(t, last+10, resolved)
		var want []Row
		for _, r := range all {
			if r.CommitTs >= from {
				want = append(want, r)
			}
		}
		require.Equal(t, len(want), len(got), "from %d", from)
		for i := range want {
			require.Equal(t, 0, Compare(&want[i], &got[i]), "from %d row %d", from, i)
		}
	}
}

func TestManifestRules(t *testing.T) {
	bad := &formatv1.Manifest{TenantId: 1, Version: 1, NextRangeId: 3, Ranges: []*formatv1.RangeDescriptor{
		{RangeId: 1, State: formatv1.RangeDescriptor_STATE_ACTIVE, EndKey: []byte("m")},
		{RangeId: 2, State: formatv1.RangeDescriptor_STATE_ACTIVE, StartKey: []byte("n")},
	}}
	_, err := EncodeManifest(bad)
	require.ErrorContains(t, err, "gap or overlap")
	store := objstore.NewMemory()
	m := singleRangeManifest(1)
	require.NoError(t, PublishManifest(ctx, store, m))
	require.True(t, errors.Is(PublishManifest(ctx, store, m), ErrFenced), "a version is written once")
}

// A split's SEAL is published before the manifest that names the
// successors (the meta-server writes the manifest once the seal is done):
// a puller that reads the SEAL first keeps the sealed range, its resolved
// ts at the seal, and opens the successors once the manifest names them —
// neither an error that ends the pull nor a follow that forgets them.
func TestPullSealBeforeManifest(t *testing.T) {
	f := newSplitFixture(t, 7)
	for i := 0; i < 10; i++ {
		f.poll(t)
	}

	// The children exist and the parent is sealed; the manifest is not
	// published yet.
	r2, r3 := createChildren(t, f.g, f.g, f.half, f.mid)
	require.NoError(t, f.r1.Seal(ctx, []uint64{2, 3}))
	f.publishChildren(t, r2, r3)
	for i := 0; i < 10; i++ {
		resolved, caughtUp := f.poll(t)
		require.Equal(t, f.half, resolved, "held at the seal until the successors open")
		require.False(t, caughtUp, "successors are pending")
	}

	require.NoError(t, PublishManifest(ctx, f.store, splitManifest(f.half, f.mid)))
	f.pullToEnd(t)
}
