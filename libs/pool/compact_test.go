package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// compactFixture is one range (tenant 1, range 1) with many flushes in a
// file store, and every row it holds.
type compactFixture struct {
	store objstore.Store
	all   []Row
	wms   []uint64 // watermark of each flush, in log order (entry seq i+2)
	last  uint64   // the head's watermark
}

func newCompactFixture(t *testing.T) *compactFixture {
	t.Helper()
	store, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	w, err := v1CreateRange(ctx, store, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1, "sorter-a")
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(7, 7))
	all := genRows(rng, 2000, []int64{100, 101}, 100)
	last := all[len(all)-1].CommitTs + 10
	var wms []uint64
	for wm := uint64(120); wm < last; wm += uint64(3 + rng.IntN(20)) {
		wms = append(wms, wm)
	}
	wms = append(wms, last)
	publishV1(t, w, all, wms) // > hintEvery entries, some without rows
	require.Greater(t, len(wms), 2*hintEvery)
	return &compactFixture{store: store, all: all, wms: wms, last: last}
}

// readRange reads every row of range 1 from ts from until its head.
func readRange(t *testing.T, store objstore.Store, from uint64) ([]Row, error) {
	t.Helper()
	r, err := OpenRangeReader(ctx, store, 1, 1, from)
	if err != nil {
		return nil, err
	}
	var out []Row
	for {
		c, ok, err := r.Next(ctx)
		if err != nil {
			return out, err
		}
		if !ok {
			return out, nil
		}
		out = append(out, c.Rows...)
	}
}

func keysUnder(t *testing.T, store objstore.Store, prefix string) []string {
	t.Helper()
	all, err := objstore.ListAll(ctx, store, prefix, "")
	require.NoError(t, err)
	var keys []string
	for _, o := range all {
		keys = append(keys, o.Key)
	}
	return keys
}

func TestCompactKeepsWhatIsRetained(t *testing.T) {
	f := newCompactFixture(t)
	before := f.wms[len(f.wms)/2]
	// The independent record: rows read before compacting.
	from := before + 1
	want, err := readRange(t, f.store, from)
	require.NoError(t, err)
	require.NotEmpty(t, want)
	wantAll, err := readRange(t, f.store, 0)
	require.NoError(t, err)
	require.Len(t, wantAll, len(f.all))

	st, err := Compact(ctx, f.store, 1, 1, before)
	require.NoError(t, err)
	dropped := len(f.wms)/2 + 1 // entries 2 .. dropped+1 have watermark <= before
	require.Equal(t, dropped, st.Entries)
	require.Equal(t, uint64(dropped+2), st.Floor)
	require.False(t, st.More)
	require.Positive(t, st.Files)
	require.Positive(t, st.Bytes)

	// What stays: the OPEN entry and the entries from the floor on; the
	// data files of those entries only.
	logKeys := keysUnder(t, f.store, layout.RangeLogPrefix(1, 1))
	require.Equal(t, layout.RangeLogKey(1, 1, 1), logKeys[0])
	require.Equal(t, layout.RangeLogKey(1, 1, st.Floor), logKeys[1])
	require.Len(t, logKeys, len(f.wms)+1-dropped)
	for _, k := range keysUnder(t, f.store, layout.DataPrefix(1, 1)) {
		wm, seq, err := layout.ParseDataFileKey(k)
		require.NoError(t, err)
		require.GreaterOrEqual(t, seq, st.Floor, k)
		require.Greater(t, wm, before, k)
	}

	// A reader after before gets exactly the same rows.
	got, err := readRange(t, f.store, from)
	require.NoError(t, err)
	require.Equal(t, want, got)
	// A reader at or below before gets ErrCompacted naming the oldest ts.
	for _, from := range []uint64{0, 100, f.wms[0], before} {
		_, err = readRange(t, f.store, from)
		require.ErrorIs(t, err, ErrCompacted, "from %d", from)
		require.Contains(t, err.Error(), "the oldest start ts is")
	}
	oldest, err := OldestStart(ctx, f.store, 1, nil, nil)
	require.NoError(t, err)
	require.Equal(t, before+1, oldest)
	// The puller too.
	_, err = NewPuller(ctx, f.store, 1, nil, nil, nil, before)
	require.ErrorIs(t, err, ErrCompacted)
	rows, resolved := pullAll(t, f.store, 1, nil, from)
	require.Equal(t, f.last, resolved)
	require.Equal(t, want, rows)

	// FindHead still works, and the owner can go on (and a new one take
	// over: OpenRange needs the OPEN entry, which stays).
	head, first, err := FindHead(ctx, f.store, 1, 1)
	require.NoError(t, err)
	require.Equal(t, f.last, head.Watermark)
	require.Equal(t, st.Floor, first)
	w, err := v1OpenRange(ctx, f.store, 1, 1, 2, "sorter-b")
	require.NoError(t, err)
	require.Equal(t, f.last, w.Watermark())
	_, err = w.Flush(ctx, f.last+5, nil)
	require.NoError(t, err)

	// Again with the same before: nothing more to do.
	again, err := Compact(ctx, f.store, 1, 1, before)
	require.NoError(t, err)
	require.Equal(t, CompactStats{Floor: st.Floor}, again)

	// Everything: the head (and the OPEN entry) stays.
	st, err = Compact(ctx, f.store, 1, 1, f.last+100)
	require.NoError(t, err)
	head, first, err = FindHead(ctx, f.store, 1, 1)
	require.NoError(t, err)
	require.Equal(t, head.Seq, first)
	require.Equal(t, []string{layout.RangeLogKey(1, 1, 1), layout.RangeLogKey(1, 1, head.Seq)},
		keysUnder(t, f.store, layout.RangeLogPrefix(1, 1)))
	require.Empty(t, keysUnder(t, f.store, layout.DataPrefix(1, 1)))
	require.Len(t, keysUnder(t, f.store, floorPrefix(1, 1)), 1)
	got, err = readRange(t, f.store, f.last+1)
	require.NoError(t, err)
	require.Empty(t, got)
	_, err = readRange(t, f.store, f.last)
	require.ErrorIs(t, err, ErrCompacted)
}

// A compaction bounded by MaxDeletes, or one that crashed midway (simulated
// by deleting only some of what it would), converges to the same state.
func TestCompactResumesAndConverges(t *testing.T) {
	ref := newCompactFixture(t)
	before := ref.wms[2*len(ref.wms)/3]
	from := before + 1
	want, err := readRange(t, ref.store, from)
	require.NoError(t, err)
	_, err = Compact(ctx, ref.store, 1, 1, before)
	require.NoError(t, err)
	wantLog := keysUnder(t, ref.store, layout.RangePrefix(1, 1))

	// Bounded calls.
	f := newCompactFixture(t)
	calls := 0
	for {
		calls++
		st, err := Compact(ctx, f.store, 1, 1, before, CompactOptions{MaxDeletes: 25})
		require.NoError(t, err)
		require.LessOrEqual(t, st.Entries+st.Files, 50)
		got, err := readRange(t, f.store, from)
		require.NoError(t, err, "call %d", calls)
		require.Equal(t, want, got, "call %d", calls)
		if !st.More {
			break
		}
		require.Less(t, calls, 1000)
	}
	require.Greater(t, calls, 2)
	require.Equal(t, wantLog, keysUnder(t, f.store, layout.RangePrefix(1, 1)))

	// A crash after the floor moved: only some entries and files deleted, a
	// stale owner's entry re-created below the floor.
	f = newCompactFixture(t)
	floor := uint64(2*len(f.wms)/3 + 3) // the first entry above before
	require.NoError(t, f.store.Put(ctx, floorKey(1, 1, floor), []byte(layout.Pad(floor))))
	for i, k := range keysUnder(t, f.store, layout.RangeLogPrefix(1, 1)) {
		if seq, _ := seqOf(k); seq > 1 && seq < floor && i%3 == 0 {
			require.NoError(t, f.store.Delete(ctx, k))
		}
	}
	for i, k := range keysUnder(t, f.store, layout.DataPrefix(1, 1)) {
		if _, seq, _ := layout.ParseDataFileKey(k); seq < floor && i%2 == 0 {
			require.NoError(t, f.store.Delete(ctx, k))
		}
	}
	// Readers already see the floor, whatever is left below it.
	got, err := readRange(t, f.store, from)
	require.NoError(t, err)
	require.Equal(t, want, got)
	_, err = readRange(t, f.store, before)
	require.ErrorIs(t, err, ErrCompacted)
	st, err := Compact(ctx, f.store, 1, 1, before)
	require.NoError(t, err)
	require.Equal(t, floor, st.Floor)
	require.Equal(t, wantLog, keysUnder(t, f.store, layout.RangePrefix(1, 1)))
	got, err = readRange(t, f.store, from)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// A stale owner that re-creates a compacted seq publishes nothing readers
// see, and is fenced once it reaches a retained entry.
func TestCompactFencesStaleOwner(t *testing.T) {
	store, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	old, err := v1CreateRange(ctx, store, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1, "old")
	require.NoError(t, err)
	all := genRows(rand.New(rand.NewPCG(9, 9)), 300, []int64{100}, 100)
	_, err = old.Flush(ctx, 150, rowsIn(all, 100, 150))
	require.NoError(t, err)
	nw, err := v1OpenRange(ctx, store, 1, 1, 2, "new") // TAKEOVER at seq 3
	require.NoError(t, err)
	top := all[len(all)-1].CommitTs + 1
	var wms []uint64
	for wm := uint64(200); wm < top; wm += 50 {
		wms = append(wms, wm)
	}
	publishV1(t, nw, all, append(wms, top))
	want, err := readRange(t, store, 401)
	require.NoError(t, err)
	st, err := Compact(ctx, store, 1, 1, 400)
	require.NoError(t, err)
	require.Greater(t, st.Floor, uint64(4))

	// The old owner wakes up: seq 3 is free again.
	_, err = old.Flush(ctx, 1000, rowsIn(all, 150, 1000))
	require.NoError(t, err, "the compacted seq is re-created below the floor")
	got, err := readRange(t, store, 401)
	require.NoError(t, err)
	require.Equal(t, want, got, "the stale entry is invisible")
	for {
		_, err = old.Flush(ctx, old.Watermark()+1, nil)
		if err != nil {
			break
		}
	}
	require.ErrorIs(t, err, ErrFenced)
	_, err = Compact(ctx, store, 1, 1, 400)
	require.NoError(t, err)
	for _, k := range keysUnder(t, store, layout.RangeLogPrefix(1, 1)) {
		seq, _ := seqOf(k)
		require.True(t, seq == 1 || seq >= st.Floor, "garbage %s left", k)
	}
	got, err = readRange(t, store, 401)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// A reader positioned before a compaction that deletes what it still has to
// read fails with ErrCompacted instead of skipping rows.
func TestReaderOvertakenByCompaction(t *testing.T) {
	f := newCompactFixture(t)
	r, err := OpenRangeReader(ctx, f.store, 1, 1, 0)
	require.NoError(t, err)
	c, ok, err := r.Next(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	n := len(c.Rows)
	_, err = Compact(ctx, f.store, 1, 1, f.wms[len(f.wms)/2])
	require.NoError(t, err)
	// Its next entry is gone: it sees no new entry (never a later one),
	// until it next looks at the floor.
	_, ok, err = r.Next(ctx)
	require.NoError(t, err)
	require.False(t, ok)
	r.floorChecked = r.floorChecked.Add(-floorCheckEvery)
	for {
		c, ok, err = r.Next(ctx)
		if err != nil || !ok {
			break
		}
		n += len(c.Rows)
	}
	require.ErrorIs(t, err, ErrCompacted)
	require.True(t, strings.Contains(err.Error(), "expired"), err.Error())
	require.Less(t, n, len(f.all))

	// A reader that had fetched its entry but not yet the data file.
	f = newCompactFixture(t)
	r, err = OpenRangeReader(ctx, f.store, 1, 1, 0)
	require.NoError(t, err)
	require.NotNil(t, r.next)
	_, err = Compact(ctx, f.store, 1, 1, f.wms[len(f.wms)/2])
	require.NoError(t, err)
	_, _, err = r.Next(ctx)
	require.ErrorIs(t, err, ErrCompacted)
	require.Contains(t, err.Error(), "expired while being read")

	// A follower whose next entry is gone (it found no file to read) finds
	// out when it polls.
	r, err = OpenRangeReader(ctx, f.store, 1, 1, f.last+1) // at the head
	require.NoError(t, err)
	r.seq = 1 // as if it had stopped long ago
	r.floorChecked = r.floorChecked.Add(-floorCheckEvery)
	_, _, err = r.Next(ctx)
	require.True(t, errors.Is(err, ErrCompacted), "%v", err)
}

// compactingStore runs a compaction just before the reader lists the data
// files: the reader has read the floor, the listing misses files.
type compactingStore struct {
	objstore.Store
	before uint64
	done   bool
}

func (s *compactingStore) List(c context.Context, prefix, startAfter string, limit int) ([]objstore.ObjectInfo, bool, error) {
	if !s.done && prefix == layout.DataPrefix(1, 1) && startAfter != "" {
		s.done = true
		if _, err := Compact(c, s.Store, 1, 1, s.before); err != nil {
			return nil, false, err
		}
	}
	return s.Store.List(c, prefix, startAfter, limit)
}

func TestOpenRacingCompaction(t *testing.T) {
	f := newCompactFixture(t)
	before := f.wms[len(f.wms)/2]
	mid := f.wms[len(f.wms)/4]
	want, err := readRange(t, f.store, before+1)
	require.NoError(t, err)
	// Asked from mid: retained when the reader looked first, gone while it
	// listed. It must not start at the first file left.
	_, err = readRange(t, &compactingStore{Store: f.store, before: before}, mid)
	require.ErrorIs(t, err, ErrCompacted)
	f = newCompactFixture(t)
	got, err := readRange(t, &compactingStore{Store: f.store, before: before}, before+1)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// A retired range whose data expired as a whole: the manifest drops it,
// DeleteRange removes its objects; readers from before its successor
// opened get ErrCompacted, later ones read the successor.
func TestDeleteRetiredRange(t *testing.T) {
	store, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	all := genRows(rand.New(rand.NewPCG(11, 11)), 500, []int64{100}, 100)
	w := all[250].CommitTs
	last := all[len(all)-1].CommitTs + 1
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	r1, err := v1CreateRange(ctx, store, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1, "a")
	require.NoError(t, err)
	publishV1(t, r1, all, []uint64{w / 2, w})
	r2, err := v1CreateRange(ctx, store, RangeSpec{Tenant: 1, RangeID: 2, OpenedAt: w, Parents: []uint64{1}}, 1, "a")
	require.NoError(t, err)
	require.NoError(t, r1.Seal(ctx, []uint64{2}))
	require.NoError(t, PublishManifest(ctx, store, &formatv1.Manifest{TenantId: 1, Version: 2, NextRangeId: 3, Ranges: []*formatv1.RangeDescriptor{
		{RangeId: 1, State: formatv1.RangeDescriptor_STATE_RETIRED, OpenedAtTs: 100, RetiredAtTs: w, SuccessorRangeIds: []uint64{2}},
		{RangeId: 2, State: formatv1.RangeDescriptor_STATE_ACTIVE, OpenedAtTs: w, ParentRangeIds: []uint64{1}},
	}}))
	publishV1(t, r2, all, []uint64{last})
	want, _ := pullAll(t, store, 1, nil, w+1)

	require.NoError(t, PublishManifest(ctx, store, &formatv1.Manifest{TenantId: 1, Version: 3, NextRangeId: 3, Ranges: []*formatv1.RangeDescriptor{
		{RangeId: 2, State: formatv1.RangeDescriptor_STATE_ACTIVE, OpenedAtTs: w, ParentRangeIds: []uint64{1}},
	}}))
	st, err := DeleteRange(ctx, store, 1, 1)
	require.NoError(t, err)
	require.Equal(t, 4, st.Entries) // OPEN, two flushes, SEAL
	require.Equal(t, 2, st.Files)
	require.Empty(t, keysUnder(t, store, layout.RangePrefix(1, 1)))
	again, err := DeleteRange(ctx, store, 1, 1)
	require.NoError(t, err)
	require.Equal(t, CompactStats{}, again)

	for _, from := range []uint64{0, 100, w} {
		_, err = NewPuller(ctx, store, 1, nil, nil, nil, from)
		require.ErrorIs(t, err, ErrCompacted, "from %d", from)
		require.ErrorContains(t, err, fmt.Sprintf("the oldest start ts is %d", w+1))
	}
	oldest, err := OldestStart(ctx, store, 1, nil, nil)
	require.NoError(t, err)
	require.Equal(t, w+1, oldest)
	got, resolved := pullAll(t, store, 1, nil, w+1)
	require.Equal(t, last, resolved)
	require.Equal(t, want, got)
}

// A reader holding the manifest that still lists a range DeleteRange is
// deleting gets ErrCompacted from the range, not a partial log.
func TestDeleteRangeMidwayReadsAsCompacted(t *testing.T) {
	f := newCompactFixture(t)
	head, _, err := FindHead(ctx, f.store, 1, 1)
	require.NoError(t, err)
	// The first step of DeleteRange only: the floor past the head.
	require.NoError(t, f.store.Put(ctx, floorKey(1, 1, head.Seq+1), []byte(layout.Pad(head.Seq+1))))
	require.NoError(t, f.store.Delete(ctx, layout.RangeLogKey(1, 1, head.Seq)))
	_, err = OpenRangeReader(ctx, f.store, 1, 1, 0)
	require.ErrorIs(t, err, ErrCompacted)
	_, err = OldestStart(ctx, f.store, 1, nil, nil)
	require.NoError(t, err)
	// A DeleteRange that crashed there is finished by the next one.
	_, err = DeleteRange(ctx, f.store, 1, 1)
	require.NoError(t, err)
	require.Empty(t, keysUnder(t, f.store, layout.RangePrefix(1, 1)))
}
