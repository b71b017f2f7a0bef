package pool

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// The tests of format 2 check every read against the rows generated for
// each range (the independent record): exactly those at or after the start
// ts, once, in order.

func twoRangeManifest(tenant uint64, split []byte) *formatv1.Manifest {
	return &formatv1.Manifest{TenantId: tenant, Version: 1, NextRangeId: 3, Ranges: []*formatv1.RangeDescriptor{
		{RangeId: 1, State: formatv1.RangeDescriptor_STATE_ACTIVE, EndKey: split, OpenedAtTs: 100},
		{RangeId: 2, State: formatv1.RangeDescriptor_STATE_ACTIVE, StartKey: split, OpenedAtTs: 100}}}
}

// since returns the rows of all at or after from.
func since(all []Row, from uint64) []Row {
	var out []Row
	for _, r := range all {
		if r.CommitTs >= from {
			out = append(out, r)
		}
	}
	return out
}

// readRangeFrom reads a range from ts from as far as it is published.
func readRangeFrom(t *testing.T, store objstore.Store, id, from uint64) ([]Row, uint64, error) {
	t.Helper()
	r, err := OpenRangeReader(ctx, store, 1, id, from)
	if err != nil {
		return nil, 0, err
	}
	return drain(t, r)
}

// drain reads what r can read now.
func drain(t *testing.T, r *RangeReader) ([]Row, uint64, error) {
	t.Helper()
	var out []Row
	for range 100000 {
		c, ok, err := r.Next(ctx)
		if err != nil {
			return out, r.Watermark(), err
		}
		if !ok {
			return out, r.Watermark(), nil
		}
		out = append(out, c.Rows...)
	}
	t.Fatal("the reader never caught up")
	return nil, 0, nil
}

func requireSameRows(t *testing.T, want, got []Row, msg string, args ...any) {
	t.Helper()
	require.Equal(t, len(want), len(got), "%s: row count", fmt.Sprintf(msg, args...))
	for i := range want {
		require.Equal(t, 0, Compare(&want[i], &got[i]), "%s: row %d", fmt.Sprintf(msg, args...), i)
		require.Equal(t, want[i].Value, got[i].Value)
	}
}

// publishAll flushes every writer to wm in one publication of g.
func publishAll(t *testing.T, g *GroupWriter, wm uint64, ws map[*RangeWriter][]Row) PubResult {
	t.Helper()
	var staged []*Staged
	for w, all := range ws {
		if wm <= w.Watermark() {
			continue
		}
		s, err := w.Stage(wm, rowsIn(all, w.Watermark(), wm))
		require.NoError(t, err)
		staged = append(staged, s)
	}
	res, err := g.Publish(ctx, staged)
	require.NoError(t, err)
	return res
}

// pubsOf lists the publications of a group, read from the pool.
func pubsOf(t *testing.T, store objstore.Store, group string) []*Pub {
	t.Helper()
	all, err := objstore.ListAll(ctx, store, layout.GroupPubPrefix(1, group), "")
	require.NoError(t, err)
	var out []*Pub
	for _, o := range all {
		seq, err := layout.ParseGroupSeqKey(o.Key)
		require.NoError(t, err)
		p, err := readPubObject(ctx, store, 1, group, seq)
		require.NoError(t, err)
		out = append(out, p)
	}
	return out
}

// An owner that is alive and publishing when a new owner takes one of its
// ranges over: its next publication finds the FENCE at its seq, drops the
// range (the staged rows of that range are not published, its other ranges
// are, one seq later) and can never publish the range again; readers get
// every row once.
func TestGroupFencesLiveOldOwner(t *testing.T) {
	store := objstore.NewMemory()
	split := key(102, 0)
	require.NoError(t, PublishManifest(ctx, store, twoRangeManifest(1, split)))
	rng := rand.New(rand.NewPCG(11, 11))
	all := genRows(rng, 1200, []int64{100, 101, 102, 103}, 100)
	rows1, rows2 := splitRows(all, split)
	last := all[len(all)-1].CommitTs + 1
	type fenceNote struct {
		group string
		seq   uint64
	}
	var fences []fenceNote
	newOpts := noSegments
	newOpts.OnFence = func(group string, seq uint64) { fences = append(fences, fenceNote{group, seq}) }
	gOld, gNew := newGroup(t, store, 1, "old", noSegments), newGroup(t, store, 1, "new", newOpts)
	r1, err := CreateRange(ctx, gOld, RangeSpec{Tenant: 1, RangeID: 1, End: split, OpenedAt: 100}, 1)
	require.NoError(t, err)
	r2, err := CreateRange(ctx, gOld, RangeSpec{Tenant: 1, RangeID: 2, Start: split, OpenedAt: 100}, 1)
	require.NoError(t, err)
	third := all[len(all)/3].CommitTs
	for wm := uint64(150); wm < third; wm += 97 {
		publishAll(t, gOld, wm, map[*RangeWriter][]Row{r1: rows1, r2: rows2})
	}
	before := r1.Watermark()

	// Range 1 moves while its old owner keeps running: the old owner's
	// check finds the new owner's TAKEOVER (nothing before it).
	require.NoError(t, r1.CheckTaken(ctx))
	nw, err := OpenRange(ctx, gNew, 1, 1, 2)
	require.NoError(t, err)
	require.ErrorIs(t, r1.CheckTaken(ctx), ErrFenced)
	require.NoError(t, r2.CheckTaken(ctx), "range 2 did not move")
	require.NoError(t, nw.CheckTaken(ctx), "the new owner's own entry")
	require.Equal(t, before, nw.Watermark())
	// The new owner is told where it wrote the FENCE (a sorter announces
	// it, so that readers of the old group need not wait for a poll).
	require.Len(t, fences, 1)
	require.Equal(t, "old", fences[0].group)
	fp, err := readPubObject(ctx, store, 1, "old", fences[0].seq)
	require.NoError(t, err)
	require.True(t, fp.IsFence(), "the announced seq of the old group is the FENCE")
	s1, err := r1.Stage(third, rowsIn(rows1, before, third))
	require.NoError(t, err)
	s2, err := r2.Stage(third, rowsIn(rows2, r2.Watermark(), third))
	require.NoError(t, err)
	res, err := gOld.Publish(ctx, []*Staged{s1, s2})
	require.NoError(t, err)
	require.Equal(t, 1, res.Conflicts, "the FENCE took the seq")
	require.Equal(t, []uint64{1}, res.Fenced)
	require.True(t, s1.Fenced())
	require.True(t, s2.Done(), "its other range is published")
	require.True(t, r1.Fenced())
	_, err = r1.Stage(third+10, nil)
	require.ErrorIs(t, err, ErrFenced)
	require.Equal(t, before, r1.Watermark(), "nothing more of range 1 was published by the old owner")

	// The old owner goes on with range 2; the new one publishes range 1.
	for wm := third + 50; wm < last; wm += 113 {
		publishAll(t, gOld, wm, map[*RangeWriter][]Row{r2: rows2})
		publishAll(t, gNew, wm, map[*RangeWriter][]Row{nw: rows1})
	}
	publishAll(t, gOld, last, map[*RangeWriter][]Row{r2: rows2})
	publishAll(t, gNew, last, map[*RangeWriter][]Row{nw: rows1})

	// From the FENCE on, no publication of the old group lists range 1.
	fenced := false
	for _, p := range pubsOf(t, store, gOld.ID()) {
		if p.IsFence() {
			_, ok := p.FencedBy(1)
			require.True(t, ok)
			fenced = true
			continue
		}
		require.False(t, fenced && p.Member(1), "publication %d lists range 1 after the FENCE", p.Seq)
	}
	require.True(t, fenced)
	for _, from := range []uint64{0, before - 1, before, before + 1, third, last} {
		got, wm, err := readRangeFrom(t, store, 1, from)
		require.NoError(t, err)
		require.Equal(t, last, wm)
		requireSameRows(t, since(rows1, from), got, "range 1 from %d", from)
	}
	got, resolved := pullAll(t, store, 1, nil, 0)
	require.Equal(t, last, resolved)
	requireSameRows(t, all, got, "the tenant")
}

// Two new owners take one range over at the same time: whichever way the
// race goes, the log's epochs never go down, the greater epoch owns the
// range in the end, the other publishes nothing readers follow, and every
// row is read once.
func TestTwoCompetingNewOwners(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		store := objstore.NewMemory()
		require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
		all := genRows(rand.New(rand.NewPCG(seed, 3)), 300, []int64{100}, 100)
		last := all[len(all)-1].CommitTs + 1
		mid := all[len(all)/2].CommitTs
		g0 := newGroup(t, store, 1, fmt.Sprintf("old-%d", seed), noSegments)
		w0, err := CreateRange(ctx, g0, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1)
		require.NoError(t, err)
		publish(t, w0, all, []uint64{mid / 2, mid})

		g2, g3 := newGroup(t, store, 1, fmt.Sprintf("n2-%d", seed), noSegments), newGroup(t, store, 1, fmt.Sprintf("n3-%d", seed), noSegments)
		var wg sync.WaitGroup
		var n2, n3 *RangeWriter
		var err2, err3 error
		wg.Go(func() { n2, err2 = OpenRange(ctx, g2, 1, 1, 2) })
		wg.Go(func() { n3, err3 = OpenRange(ctx, g3, 1, 1, 3) })
		wg.Wait()
		require.NoError(t, err3, "seed %d: the greater epoch always takes it", seed)
		if err2 != nil {
			require.ErrorIs(t, err2, ErrFenced, "seed %d", seed)
		} else {
			// Epoch 2 took it first and epoch 3 from it: epoch 2 is fenced.
			_, err := n2.Flush(ctx, mid+1, rowsIn(all, n2.Watermark(), mid+1))
			require.ErrorIs(t, err, ErrFenced, "seed %d", seed)
		}
		_, err = w0.Flush(ctx, mid+2, rowsIn(all, w0.Watermark(), mid+2))
		require.ErrorIs(t, err, ErrFenced, "seed %d: the first owner is fenced", seed)
		require.Equal(t, mid, n3.Watermark())
		publish(t, n3, all, []uint64{mid + 5, last})

		var epoch uint64
		head, _, err := FindHead(ctx, store, 1, 1)
		require.NoError(t, err)
		for seq := uint64(1); seq <= head.Seq; seq++ {
			e, err := GetEntry(ctx, store, 1, 1, seq)
			require.NoError(t, err)
			require.GreaterOrEqual(t, e.OwnerEpoch, epoch, "seed %d entry %d", seed, seq)
			epoch = e.OwnerEpoch
		}
		require.Equal(t, uint64(3), epoch)
		for _, from := range []uint64{0, mid, mid + 1, last} {
			got, wm, err := readRangeFrom(t, store, 1, from)
			require.NoError(t, err, "seed %d from %d", seed, from)
			require.Equal(t, last, wm, "seed %d from %d", seed, from)
			requireSameRows(t, since(all, from), got, "seed %d from %d", seed, from)
		}
	}
}

// A new owner that crashes between its FENCE and its TAKEOVER: the old
// owner drops the range, a reader following it waits at the end of the old
// segment, and the next owner (who fences again) continues from the same
// watermark.
func TestCrashBetweenFenceAndTakeover(t *testing.T) {
	store := objstore.NewMemory()
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	all := genRows(rand.New(rand.NewPCG(21, 21)), 300, []int64{100}, 100)
	last := all[len(all)-1].CommitTs + 1
	mid := all[len(all)/2].CommitTs
	gOld := newGroup(t, store, 1, "old", noSegments)
	w, err := CreateRange(ctx, gOld, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1)
	require.NoError(t, err)
	publish(t, w, all, []uint64{mid / 2, mid})
	reader, err := OpenRangeReader(ctx, store, 1, 1, 0)
	require.NoError(t, err)
	got, _, err := drain(t, reader)
	require.NoError(t, err)

	// The crashed new owner wrote only its FENCE.
	head, _, err := FindHead(ctx, store, 1, 1)
	require.NoError(t, err)
	_, err = FenceRange(ctx, store, 1, gOld.ID(), 1, 2, head.GroupSeq, "crashed")
	require.NoError(t, err)
	_, err = w.Flush(ctx, mid+5, rowsIn(all, mid, mid+5))
	require.ErrorIs(t, err, ErrFenced)
	more, wm, err := drain(t, reader)
	require.NoError(t, err)
	require.Empty(t, more)
	require.Equal(t, mid, wm, "the reader waits at the end of the old segment")

	nw, err := OpenRange(ctx, newGroup(t, store, 1, "next", noSegments), 1, 1, 3)
	require.NoError(t, err)
	require.Equal(t, mid, nw.Watermark())
	publish(t, nw, all, []uint64{last})
	more, wm, err = drain(t, reader)
	require.NoError(t, err)
	require.Equal(t, last, wm)
	requireSameRows(t, all, append(got, more...), "the follower")
	for _, from := range []uint64{0, mid, mid + 1} {
		got, _, err := readRangeFrom(t, store, 1, from)
		require.NoError(t, err)
		requireSameRows(t, since(all, from), got, "from %d", from)
	}
}

// A new owner that crashes between its TAKEOVER and its group's first
// publication: readers wait in its empty segment; the next owner fences
// the range there (an empty segment: the watermark is the TAKEOVER's) and
// continues.
func TestCrashBetweenTakeoverAndFirstPublication(t *testing.T) {
	store := objstore.NewMemory()
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	all := genRows(rand.New(rand.NewPCG(22, 22)), 300, []int64{100}, 100)
	last := all[len(all)-1].CommitTs + 1
	mid := all[len(all)/2].CommitTs
	gOld := newGroup(t, store, 1, "old", noSegments)
	w, err := CreateRange(ctx, gOld, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1)
	require.NoError(t, err)
	publish(t, w, all, []uint64{mid})
	gCrash := newGroup(t, store, 1, "crash", noSegments)
	_, err = OpenRange(ctx, gCrash, 1, 1, 2)
	require.NoError(t, err)
	gCrash.Close() // crashed before publishing anything
	reader, err := OpenRangeReader(ctx, store, 1, 1, 0)
	require.NoError(t, err)
	got, wm, err := drain(t, reader)
	require.NoError(t, err)
	require.Equal(t, mid, wm)
	requireSameRows(t, since(all, 0)[:len(rowsUpTo(all, mid))], got, "up to the takeover")

	nw, err := OpenRange(ctx, newGroup(t, store, 1, "next", noSegments), 1, 1, 3)
	require.NoError(t, err)
	require.Equal(t, mid, nw.Watermark())
	head, _, err := FindHead(ctx, store, 1, 1)
	require.NoError(t, err)
	require.Equal(t, gCrash.ID(), head.PrevGroup)
	require.Less(t, head.PrevGroupSeq, uint64(1), "the crashed owner's segment is empty")
	publish(t, nw, all, []uint64{last})
	more, wm, err := drain(t, reader)
	require.NoError(t, err)
	require.Equal(t, last, wm)
	requireSameRows(t, all, append(got, more...), "the follower")
	got, _, err = readRangeFrom(t, store, 1, mid+1)
	require.NoError(t, err)
	requireSameRows(t, since(all, mid+1), got, "from after the takeover")
}

// splitRows splits rows at key split.
func splitRows(all []Row, split []byte) (below, above []Row) {
	for _, r := range all {
		if string(r.Key) < string(split) {
			below = append(below, r)
		} else {
			above = append(above, r)
		}
	}
	return below, above
}

func rowsUpTo(all []Row, wm uint64) []Row {
	var out []Row
	for _, r := range all {
		if r.CommitTs <= wm {
			out = append(out, r)
		}
	}
	return out
}

// A range published in three groups in turn (segments whose publications
// were deleted, publications only, segments beside their publications),
// with a second range in the same groups: a reader starting at any ts,
// in any segment, reads exactly the rows from there.
func TestReaderStartsAtAnyTsInAnySegment(t *testing.T) {
	shortChecks(t)
	store := objstore.NewMemory()
	split := key(102, 0)
	require.NoError(t, PublishManifest(ctx, store, twoRangeManifest(1, split)))
	rng := rand.New(rand.NewPCG(31, 31))
	all := genRows(rng, 3000, []int64{100, 101, 102, 103}, 100)
	rows1, rows2 := splitRows(all, split)
	last := all[len(all)-1].CommitTs + 1
	cuts := []uint64{all[len(all)/3].CommitTs, all[2*len(all)/3].CommitTs, last}
	modes := []GroupOptions{groupModes["segments-only"], groupModes["pubs"], groupModes["segments"]}
	var w1, w2 *RangeWriter
	wm := uint64(100)
	var bounds []uint64
	for i, o := range modes {
		g := newGroup(t, store, 1, fmt.Sprintf("g%d", i), o)
		var err error
		if i == 0 {
			w1, err = CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 1, End: split, OpenedAt: 100}, 1)
			require.NoError(t, err)
			w2, err = CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 2, Start: split, OpenedAt: 100}, 1)
			require.NoError(t, err)
		} else {
			w1, err = OpenRange(ctx, g, 1, 1, uint64(i+1))
			require.NoError(t, err)
			w2, err = OpenRange(ctx, g, 1, 2, uint64(i+1))
			require.NoError(t, err)
		}
		bounds = append(bounds, wm)
		for wm < cuts[i] {
			wm = min(wm+uint64(20+rng.IntN(150)), cuts[i])
			ws := map[*RangeWriter][]Row{w1: rows1}
			if rng.IntN(3) > 0 { // range 2 sometimes lags: watermark exceptions
				ws[w2] = rows2
			}
			publishAll(t, g, wm, ws)
		}
		publishAll(t, g, wm, map[*RangeWriter][]Row{w2: rows2})
		g.WaitSegments()
	}
	froms := []uint64{0, 100, 101, last, last + 1}
	for _, b := range bounds {
		froms = append(froms, b-1, b, b+1)
	}
	for i := 0; i < len(rows1); i += 41 {
		froms = append(froms, rows1[i].CommitTs, rows1[i].CommitTs+1)
	}
	for _, from := range froms {
		got, wm, err := readRangeFrom(t, store, 1, from)
		require.NoError(t, err, "from %d", from)
		require.Equal(t, last, wm, "from %d", from)
		requireSameRows(t, since(rows1, from), got, "range 1 from %d", from)
	}
	for _, from := range []uint64{0, cuts[0], cuts[1] + 1, last} {
		got, resolved := pullAll(t, store, 1, nil, from)
		require.Equal(t, last, resolved)
		requireSameRows(t, since(all, from), got, "the tenant from %d", from)
	}
}

// shortChecks makes readers look for segments and floors at every poll.
func shortChecks(t *testing.T) {
	f, b, ba := floorCheckEvery, behindCheckEvery, behindAfter
	floorCheckEvery, behindCheckEvery, behindAfter = 0, 0, 0
	t.Cleanup(func() { floorCheckEvery, behindCheckEvery, behindAfter = f, b, ba })
}

// A reader that lags while the group segments its publications and deletes
// them: it finds the segment covering the one it waits for and goes on,
// reading every row once.
func TestPubDeletedAfterSegmentingWhileFollowing(t *testing.T) {
	shortChecks(t)
	store := objstore.NewMemory()
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	all := genRows(rand.New(rand.NewPCG(41, 41)), 800, []int64{100, 101}, 100)
	last := all[len(all)-1].CommitTs + 1
	g := newGroup(t, store, 1, "g", GroupOptions{SegmentPubs: 5, SegmentBytes: 1 << 40, SegmentAge: 1 << 62, Grace: time.Nanosecond})
	w, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1)
	require.NoError(t, err)
	publish(t, w, all, []uint64{150, 160})
	reader, err := OpenRangeReader(ctx, store, 1, 1, 0)
	require.NoError(t, err)
	got, _, err := drain(t, reader)
	require.NoError(t, err)
	var wms []uint64
	for wm := uint64(200); wm < last; wm += 37 {
		wms = append(wms, wm)
	}
	publish(t, w, all, append(wms, last))
	g.WaitSegments()
	publish(t, w, all, []uint64{last + 1, last + 2}) // one more segment: the earlier ones' publications go
	g.WaitSegments()
	pubs, err := objstore.ListAll(ctx, store, layout.GroupPubPrefix(1, g.ID()), "")
	require.NoError(t, err)
	require.Less(t, len(pubs), 20, "most publications were deleted after segmenting")
	more, wm, err := drain(t, reader)
	require.NoError(t, err)
	require.Equal(t, last+2, wm)
	requireSameRows(t, all, append(got, more...), "the lagging follower")
}

// A pool written in format 1 (FLUSH entries and data files) is read by the
// format 2 reader, taken over by a format 2 owner (a TAKEOVER after the
// FLUSH entries, the range then published in its group) and read across
// the switch from any ts; the format 1 front of its log is compacted as
// before, and compaction stops at the format 2 entries.
func TestV1PoolReadAndTakenOver(t *testing.T) {
	store := objstore.NewMemory()
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	all := genRows(rand.New(rand.NewPCG(51, 51)), 1500, []int64{100, 101}, 100)
	last := all[len(all)-1].CommitTs + 1
	mid := all[len(all)/2].CommitTs
	old, err := v1CreateRange(ctx, store, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1, "v1-sorter")
	require.NoError(t, err)
	var wms []uint64
	for wm := uint64(150); wm < mid; wm += 61 {
		wms = append(wms, wm)
	}
	publishV1(t, old, all, append(wms, mid))
	for _, from := range []uint64{0, mid / 2, mid} {
		got, wm, err := readRangeFrom(t, store, 1, from)
		require.NoError(t, err)
		require.Equal(t, mid, wm)
		requireSameRows(t, since(rowsUpTo(all, mid), from), got, "format 1 from %d", from)
	}
	follower, err := OpenRangeReader(ctx, store, 1, 1, 0)
	require.NoError(t, err)
	seen, _, err := drain(t, follower)
	require.NoError(t, err)

	g := newGroup(t, store, 1, "v2", groupModes["segments"])
	w, err := OpenRange(ctx, g, 1, 1, 2)
	require.NoError(t, err)
	require.Equal(t, mid, w.Watermark())
	require.True(t, w.HasV1Flushes())
	head, _, err := FindHead(ctx, store, 1, 1)
	require.NoError(t, err)
	require.Equal(t, formatv1.RangeLogEntry_KIND_TAKEOVER, head.Kind)
	require.Equal(t, g.ID(), head.Group)
	require.Empty(t, head.PrevGroup)
	wms = wms[:0]
	for wm := mid + 13; wm < last; wm += 71 {
		wms = append(wms, wm)
	}
	publish(t, w, all, append(wms, last))
	g.WaitSegments()
	_, err = old.Flush(ctx, mid+1, nil)
	require.ErrorIs(t, err, ErrFenced, "the format 1 owner is fenced by the TAKEOVER")
	more, wm, err := drain(t, follower)
	require.NoError(t, err)
	require.Equal(t, last, wm)
	requireSameRows(t, all, append(seen, more...), "the follower across formats")
	for _, from := range []uint64{0, mid / 2, mid, mid + 1, mid + 14, last} {
		got, wm, err := readRangeFrom(t, store, 1, from)
		require.NoError(t, err, "from %d", from)
		require.Equal(t, last, wm)
		requireSameRows(t, since(all, from), got, "from %d", from)
	}
	// Format 1 retention: everything up to the takeover may go, the
	// TAKEOVER (and what follows) stays.
	st, err := Compact(ctx, store, 1, 1, last+100)
	require.NoError(t, err)
	require.Positive(t, st.Entries)
	_, err = GetEntry(ctx, store, 1, 1, head.Seq)
	require.NoError(t, err, "the TAKEOVER entry stays")
	_, _, err = readRangeFrom(t, store, 1, mid/2)
	require.ErrorIs(t, err, ErrCompacted)
	got, _, err := readRangeFrom(t, store, 1, mid+1)
	require.NoError(t, err)
	requireSameRows(t, since(all, mid+1), got, "after format 1 retention")
}

// Group retention by publication time: what was published before the
// cutoff goes (readers from there get ErrCompacted, a reader positioned
// there gets ErrCompacted too: never a silent gap), the rest reads exactly.
func TestGroupRetention(t *testing.T) {
	shortChecks(t)
	store := objstore.NewMemory()
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	all := genRows(rand.New(rand.NewPCG(61, 61)), 600, []int64{100}, 100)
	last := all[len(all)-1].CommitTs + 1
	var clock time.Time
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	tick := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	clock = time.Unix(1_700_000_000, 0)
	g := newGroup(t, store, 1, "g", GroupOptions{SegmentPubs: 4, SegmentBytes: 1 << 40, SegmentAge: 1 << 62, Grace: -1, Now: now})
	w, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1)
	require.NoError(t, err)
	lagging, err := OpenRangeReader(ctx, store, 1, 1, 0)
	require.NoError(t, err)
	var wms []uint64
	for wm := uint64(150); wm < last; wm += 29 {
		wms = append(wms, wm)
	}
	wms = append(wms, last)
	var cutAt time.Time
	var cutWm uint64
	for i, wm := range wms {
		if i == len(wms)/2 {
			cutAt, cutWm = now(), w.Watermark()
		}
		publish(t, w, all, []uint64{wm})
		tick(time.Minute)
	}
	g.WaitSegments()
	st, err := CompactGroup(ctx, store, 1, g.ID(), cutAt)
	require.NoError(t, err)
	require.Positive(t, st.Pubs)
	require.Positive(t, st.Segments)
	floor, err := GroupFloor(ctx, store, 1, g.ID())
	require.NoError(t, err)
	require.Equal(t, st.Floor, floor)
	_, _, err = readRangeFrom(t, store, 1, 0)
	require.ErrorIs(t, err, ErrCompacted)
	_, _, err = readRangeFrom(t, store, 1, cutWm-5)
	require.ErrorIs(t, err, ErrCompacted)
	got, wm, err := readRangeFrom(t, store, 1, cutWm+1)
	require.NoError(t, err)
	require.Equal(t, last, wm)
	requireSameRows(t, since(all, cutWm+1), got, "after the cutoff")
	oldest, err := OldestStart(ctx, store, 1, nil, nil)
	require.NoError(t, err)
	require.Equal(t, cutWm+1, oldest)
	_, _, err = drain(t, lagging)
	require.ErrorIs(t, err, ErrCompacted, "the reader positioned before the floor")

	// Again: nothing more to do; then everything but the newest goes.
	again, err := CompactGroup(ctx, store, 1, g.ID(), cutAt)
	require.NoError(t, err)
	require.Equal(t, st.Floor, again.Floor)
	require.Zero(t, again.Pubs+again.Segments)
	_, err = CompactGroup(ctx, store, 1, g.ID(), now().Add(time.Hour))
	require.NoError(t, err)
	head, err := GroupHead(ctx, store, 1, g.ID())
	require.NoError(t, err)
	floor, err = GroupFloor(ctx, store, 1, g.ID())
	require.NoError(t, err)
	require.Equal(t, head, floor, "only the newest publication stays")
	_, wm, err = readRangeFrom(t, store, 1, last+1)
	require.NoError(t, err)
	require.Equal(t, last, wm)

	// A deleted group reads as compacted, never as empty.
	_, err = DeleteGroup(ctx, store, 1, g.ID())
	require.NoError(t, err)
	require.Empty(t, keysUnder(t, store, layout.GroupPrefix(1, g.ID())))
}

// A publication's size follows the ranges whose interval differs from the
// others' or that have rows, not the ranges attached: a thousand idle
// ranges at one watermark cost a few bytes.
func TestPublicationSizeFollowsChangesNotRanges(t *testing.T) {
	size := func(n, exceptions int) int {
		store := objstore.NewMemory()
		g := newGroup(t, store, 1, fmt.Sprintf("size-%d-%d", n, exceptions), noSegments)
		var ws []*RangeWriter
		for id := 1; id <= n; id++ {
			w, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: uint64(id), OpenedAt: 100}, 1)
			require.NoError(t, err)
			ws = append(ws, w)
		}
		var staged []*Staged
		for i, w := range ws {
			wm := uint64(200)
			if i < exceptions {
				wm = 150 + uint64(i)
			}
			s, err := w.Stage(wm, nil)
			require.NoError(t, err)
			staged = append(staged, s)
		}
		res, err := g.Publish(ctx, staged)
		require.NoError(t, err)
		p, err := readPubObject(ctx, store, 1, g.ID(), res.Seq)
		require.NoError(t, err)
		require.Equal(t, n, p.MemberCount())
		for i, w := range ws {
			st, ok := p.State(w.ID())
			require.True(t, ok)
			require.Equal(t, staged[i].Watermark, st.Watermark)
			require.Equal(t, uint64(100), st.Prev)
		}
		return res.Bytes
	}
	small, big := size(10, 0), size(1000, 0)
	require.Less(t, big-small, 16, "1000 idle ranges vs 10: %d vs %d bytes", big, small)
	withExceptions := size(1000, 100)
	require.Greater(t, withExceptions, big+100*3, "exceptions are listed")
}

// Membership runs round-trip for any set of ids.
func TestMemberRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 71))
	for range 200 {
		set := map[uint64]bool{}
		for range rng.IntN(50) {
			base := uint64(1 + rng.IntN(1000))
			for j := range uint64(rng.IntN(8)) {
				set[base+j] = true
			}
		}
		ids := sortedIDs(set)
		runs, err := decodeRuns(encodeRuns(ids))
		require.NoError(t, err)
		p := &Pub{runs: runs}
		require.Equal(t, len(ids), len(p.Members()))
		if len(ids) > 0 {
			require.Equal(t, ids, p.Members())
		}
		for id := uint64(0); id < 1100; id++ {
			require.Equal(t, set[id], p.Member(id), "id %d", id)
		}
	}
}

// countingStore counts the reads of publications and segments.
type countingStore struct {
	objstore.Store
	mu         sync.Mutex
	pubs, segs int
	pubKeys    []string // the publications read, in order
}

func (s *countingStore) count(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case strings.Contains(key, "/pub/"):
		s.pubs++
		s.pubKeys = append(s.pubKeys, key)
	case strings.Contains(key, "/seg/"):
		s.segs++
	}
}

func (s *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.count(key)
	return s.Store.Get(ctx, key)
}

func (s *countingStore) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	s.count(key)
	return s.Store.GetRange(ctx, key, off, n)
}

// A reader catching up reads the segments, not the publications they
// cover: a few GETs for hundreds of publications.
func TestCatchingUpReadsSegments(t *testing.T) {
	store := objstore.NewMemory()
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	all := genRows(rand.New(rand.NewPCG(81, 81)), 4000, []int64{100, 101}, 100)
	last := all[len(all)-1].CommitTs + 1
	g := newGroup(t, store, 1, "g", GroupOptions{SegmentPubs: 100, SegmentBytes: 1 << 40, SegmentAge: 1 << 62, Grace: -1})
	w, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1)
	require.NoError(t, err)
	var wms []uint64
	for i := 1; i < 400; i++ {
		wms = append(wms, 100+(last-100)*uint64(i)/400)
	}
	wms = append(wms, last)
	for i := 0; i < len(wms); i += 100 {
		// A segment cut while two are still being written is skipped (the
		// writer never holds publications for them): wait for each, or on
		// one busy core the test finds publications where it wants segments.
		publish(t, w, all, wms[i:i+100])
		g.WaitSegments()
	}
	counted := &countingStore{Store: store}
	r, err := OpenRangeReaderWith(ctx, counted, 1, 1, 0, ReadOptions{Cache: NewCache(64 << 20)})
	require.NoError(t, err)
	got, wm, err := drain(t, r)
	require.NoError(t, err)
	require.Equal(t, last, wm)
	requireSameRows(t, all, got, "the catching-up reader")
	t.Logf("400 publications (4 segments of 100) read with %d GETs of publications and %d of segments", counted.pubs, counted.segs)
	require.LessOrEqual(t, counted.segs, 2*4, "one GET of each segment's index and one of the range's span (or none)")
	require.Less(t, counted.pubs, 20, "publications are read only where no segment covers them")
}
