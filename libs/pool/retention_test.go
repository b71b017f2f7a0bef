package pool

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// tsoAt is the TSO of a wall-clock time (logical 0).
func tsoAt(t time.Time) uint64 { return uint64(t.UnixMilli()) << 18 }

// oldTSOFixture is a range whose rows were committed a year ago by their
// TSOs (an upstream clock behind, a replay of old history, the simulator's
// fixed start) and published now: 20 flushes of 500 rows.
func oldTSOFixture(t *testing.T, now time.Time) (store objstore.Store, all []Row, last uint64) {
	t.Helper()
	store, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	base := tsoAt(now.AddDate(-1, 0, 0))
	require.NoError(t, PublishManifest(ctx, store, &formatv1.Manifest{TenantId: 1, Version: 1, NextRangeId: 2,
		Ranges: []*formatv1.RangeDescriptor{{RangeId: 1, State: formatv1.RangeDescriptor_STATE_ACTIVE, OpenedAtTs: base}}}))
	w, err := v1CreateRange(ctx, store, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: base}, 1, "sorter-a")
	require.NoError(t, err)
	all = genRows(rand.New(rand.NewPCG(3, 3)), 500, []int64{100, 101}, base)
	last = all[len(all)-1].CommitTs + 1
	var wms []uint64
	for i := 1; i < 20; i++ {
		wms = append(wms, base+(last-base)*uint64(i)/20)
	}
	publishV1(t, w, all, append(wms, last))
	return store, all, last
}

// Retention counts from publication, not from commit ts: rows whose TSOs
// are a year old, published just now, survive a 24 h retention — every
// one of them, readable from the tenant's start. (Before, the cutoff was
// now - 24 h as a TSO, and everything but the head was deleted at once.)
// Once the window has passed since they were published, they go, and
// readers of them get ErrCompacted as with any expired data.
func TestCompactPublishedKeepsNewDataWithOldTSOs(t *testing.T) {
	now := time.Now()
	store, all, last := oldTSOFixture(t, now)
	wantAll, err := readRange(t, store, 0)
	require.NoError(t, err)
	require.Len(t, wantAll, len(all))

	st, err := CompactPublished(ctx, store, 1, 1, now.Add(-24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, CompactStats{Floor: 1}, st, "nothing published now has expired")
	require.Empty(t, keysUnder(t, store, floorPrefix(1, 1)))
	require.Len(t, keysUnder(t, store, layout.RangeLogPrefix(1, 1)), 21)
	require.Len(t, keysUnder(t, store, layout.DataPrefix(1, 1)), 20)
	got, err := readRange(t, store, 0)
	require.NoError(t, err)
	require.Equal(t, wantAll, got)
	rows, resolved := pullAll(t, store, 1, nil, 0)
	require.Equal(t, last, resolved)
	require.Equal(t, wantAll, rows)

	// The same log by commit ts (what retention did before): all of it
	// but the head is older than 24 h.
	byTS, _, _ := oldTSOFixture(t, now)
	st, err = Compact(ctx, byTS, 1, 1, tsoAt(now.Add(-24*time.Hour)))
	require.NoError(t, err)
	require.Equal(t, 19, st.Entries, "the fixture is the one the commit-ts rule empties")

	// 25 h later the window has passed: all but the head (and the OPEN
	// entry) goes, and readers from before it get ErrCompacted.
	st, err = CompactPublished(ctx, store, 1, 1, time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, 19, st.Entries)
	require.Equal(t, 19, st.Files)
	head, first, err := FindHead(ctx, store, 1, 1)
	require.NoError(t, err)
	require.Equal(t, head.Seq, first)
	for _, from := range []uint64{0, all[0].CommitTs, head.PrevWatermark} {
		_, err = readRange(t, store, from)
		require.ErrorIs(t, err, ErrCompacted, "from %d", from)
		_, err = NewPuller(ctx, store, 1, nil, nil, nil, from)
		require.ErrorIs(t, err, ErrCompacted, "from %d", from)
	}
	oldest, err := OldestStart(ctx, store, 1, nil, nil)
	require.NoError(t, err)
	require.Equal(t, head.PrevWatermark+1, oldest)
	got, err = readRange(t, store, oldest)
	require.NoError(t, err)
	var want []Row
	for _, r := range wantAll {
		if r.CommitTs >= oldest {
			want = append(want, r)
		}
	}
	require.NotEmpty(t, want)
	require.Equal(t, want, got, "the head's rows stay")
}

// clockedFixture publishes one flush per entry of published: entry seq i+2
// is published at published[i] (the zero time: an entry without
// created_unix_ms, as a writer that does not record it leaves). Commit ts
// are small and play no part.
func clockedFixture(t *testing.T, published []time.Time) (objstore.Store, []Row, []uint64) {
	t.Helper()
	store, err := objstore.NewLocalFS(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	w, err := v1CreateRange(ctx, store, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1, "sorter-a")
	require.NoError(t, err)
	all := genRows(rand.New(rand.NewPCG(5, 5)), 10*len(published)+10, []int64{100}, 100)
	var wms []uint64
	for i, at := range published {
		wm := all[10*i+9].CommitTs
		if at.IsZero() {
			w.now = func() time.Time { return time.UnixMilli(0) }
		} else {
			w.now = func() time.Time { return at }
		}
		_, err := w.Flush(ctx, wm, rowsIn(all, w.Watermark(), wm))
		require.NoError(t, err)
		e, err := GetEntry(ctx, store, 1, 1, uint64(i+2))
		require.NoError(t, err)
		_, ok := PublishedAt(e)
		require.Equal(t, !at.IsZero(), ok)
		wms = append(wms, wm)
	}
	return store, all, wms
}

// Which entries expire: in log order, those published before the cutoff,
// stopping at the first one that was not (even if later ones look older:
// an owner whose clock ran ahead delays retention, never hastens it). An
// entry that does not say when it was published goes with the next one
// that does (log order is publication order), never on its own.
func TestCompactPublishedByPublicationTime(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	var unknown time.Time
	for _, tc := range []struct {
		name      string
		published []time.Time
		cutoff    time.Time
		floor     uint64 // first retained seq after the call (1: none dropped)
	}{
		{name: "none expired", published: []time.Time{at(10), at(11), at(12)}, cutoff: at(5), floor: 1},
		{name: "the older ones", published: []time.Time{at(1), at(2), at(3), at(4), at(5)}, cutoff: at(3), floor: 4},
		{name: "all but the head", published: []time.Time{at(1), at(2), at(3)}, cutoff: at(60), floor: 4},
		{name: "a clock ahead stops the walk", published: []time.Time{at(1), at(90), at(2), at(3)}, cutoff: at(60), floor: 3},
		{name: "unknown ones go with a later expired one", published: []time.Time{unknown, unknown, at(2), at(30)}, cutoff: at(10), floor: 5},
		{name: "unknown ones stay before a fresh one", published: []time.Time{at(1), unknown, unknown, at(30)}, cutoff: at(10), floor: 3},
		{name: "unknown ones before an expired head", published: []time.Time{at(1), unknown, unknown, at(3)}, cutoff: at(10), floor: 5},
		{name: "unknown up to an unknown head", published: []time.Time{at(1), unknown, unknown}, cutoff: at(10), floor: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, all, wms := clockedFixture(t, tc.published)
			st, err := CompactPublished(ctx, store, 1, 1, tc.cutoff)
			require.NoError(t, err)
			require.Equal(t, tc.floor, st.Floor)
			dropped := int(max(tc.floor, 2) - 2)
			require.Equal(t, dropped, st.Entries)
			require.Equal(t, dropped, st.Files)
			// Readers: from above the last dropped watermark, every row;
			// at or below it, ErrCompacted.
			if dropped > 0 {
				_, err = readRange(t, store, wms[dropped-1])
				require.ErrorIs(t, err, ErrCompacted)
			}
			var from uint64
			if dropped > 0 {
				from = wms[dropped-1] + 1
			}
			got, err := readRange(t, store, from)
			require.NoError(t, err)
			var want []Row
			for _, r := range all {
				if r.CommitTs >= from && r.CommitTs <= wms[len(wms)-1] {
					want = append(want, r)
				}
			}
			require.Equal(t, want, got)
			for _, k := range keysUnder(t, store, layout.DataPrefix(1, 1)) {
				_, seq, err := layout.ParseDataFileKey(k)
				require.NoError(t, err)
				require.GreaterOrEqual(t, seq, max(tc.floor, 2), k)
			}
			// Idempotent.
			again, err := CompactPublished(ctx, store, 1, 1, tc.cutoff)
			require.NoError(t, err)
			require.Equal(t, CompactStats{Floor: st.Floor}, again)
		})
	}
}

// Bounded calls of CompactPublished converge to what one call does.
func TestCompactPublishedBounded(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	published := make([]time.Time, 60)
	for i := range published {
		if i%4 != 1 { // a quarter do not say
			published[i] = t0.Add(time.Duration(i) * time.Minute)
		}
	}
	cutoff := t0.Add(40 * time.Minute) // entries 0..39 (seq 2..41) expire
	ref, _, _ := clockedFixture(t, published)
	st, err := CompactPublished(ctx, ref, 1, 1, cutoff)
	require.NoError(t, err)
	require.Equal(t, uint64(42), st.Floor)
	want := keysUnder(t, ref, layout.RangePrefix(1, 1))

	store, _, _ := clockedFixture(t, published)
	for calls := 1; ; calls++ {
		require.Less(t, calls, 100)
		st, err := CompactPublished(ctx, store, 1, 1, cutoff, CompactOptions{MaxDeletes: 7})
		require.NoError(t, err)
		require.LessOrEqual(t, st.Entries+st.Files, 14)
		if !st.More {
			require.Greater(t, calls, 2)
			break
		}
	}
	require.Equal(t, want, keysUnder(t, store, layout.RangePrefix(1, 1)))
}
