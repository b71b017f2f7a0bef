package pool

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

type testIndex struct{ n int }

func (testIndex) indexOnly() bool { return true }

// Indexes have a part of the budget of their own: rows never evict them,
// they never take more than their part, and an index too large for it is
// kept with the rows.
func TestCacheKeepsIndexesApart(t *testing.T) {
	c := NewCache(8000) // indexes: 1000 bytes
	loads := 0
	get := func(key string, val any, size int64) {
		t.Helper()
		_, err := c.get(ctx, key, false, func(context.Context) (any, int64, error) {
			loads++
			return val, size, nil
		})
		require.NoError(t, err)
	}
	cached := func(key string) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.items[key]
		return ok
	}
	get("idx-1", testIndex{1}, 400)
	get("idx-2", testIndex{2}, 400)
	for i := range 100 { // rows: many times the budget
		get(fmt.Sprintf("rows-%d", i), []byte("x"), 900)
		require.LessOrEqual(t, c.Stats().Bytes, int64(8000))
	}
	require.True(t, cached("idx-1"), "rows evicted an index")
	require.True(t, cached("idx-2"))
	before := loads
	get("idx-1", testIndex{1}, 400)
	require.Equal(t, before, loads, "a cached index is not loaded again")

	get("idx-3", testIndex{3}, 400) // over the indexes' part: the least recently used index goes
	require.False(t, cached("idx-2"))
	require.True(t, cached("idx-1"))
	require.True(t, cached("idx-3"))
	require.LessOrEqual(t, c.ibytes, int64(1000))

	get("idx-big", testIndex{4}, 3000) // larger than the indexes' part: kept with the rows
	require.True(t, cached("idx-big"))
	require.True(t, cached("idx-1"))
	for i := range 10 {
		get(fmt.Sprintf("more-rows-%d", i), []byte("x"), 900)
	}
	require.False(t, cached("idx-big"), "an index kept with the rows is evicted as rows are")
	require.LessOrEqual(t, c.Stats().Bytes, int64(8000))
}

// indexReadStore counts the reads of publication indexes: the ranged GETs
// at the start of a publication object.
type indexReadStore struct {
	objstore.Store
	mu      sync.Mutex
	indexes map[string]int
}

func (s *indexReadStore) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b, err := s.Store.GetRange(ctx, key, off, n)
	if err == nil && off == 0 && strings.Contains(key, "/pub/") { // not the polls for the next one
		s.mu.Lock()
		s.indexes[key]++
		s.mu.Unlock()
	}
	return b, err
}

// Tables pulled one after another through one cache smaller than the
// publications' read-aheads read each publication's index once, not once
// per table: the sections each pull reads once do not evict the indexes.
// With one LRU every table read every index again, readAhead bytes each.
func TestPullsReadEachIndexOnce(t *testing.T) {
	store := objstore.NewMemory()
	tables := []int64{100, 101, 102, 103}
	m := &formatv1.Manifest{TenantId: 1, Version: 1, NextRangeId: uint64(len(tables) + 1)}
	for i := range tables {
		d := &formatv1.RangeDescriptor{RangeId: uint64(i + 1), State: formatv1.RangeDescriptor_STATE_ACTIVE, OpenedAtTs: 100}
		if i > 0 {
			d.StartKey = key(tables[i], 0)
		}
		if i < len(tables)-1 {
			d.EndKey = key(tables[i+1], 0)
		}
		m.Ranges = append(m.Ranges, d)
	}
	require.NoError(t, PublishManifest(ctx, store, m))
	rng := rand.New(rand.NewPCG(11, 11))
	noise := rand.NewChaCha8([32]byte{11})
	all := genRows(rng, 2000, tables, 100)
	for i := range all {
		all[i].Value = make([]byte, 4096) // incompressible: 2 MiB per table
		_, _ = noise.Read(all[i].Value)
	}
	g := newGroup(t, store, 1, "g", noSegments)
	ws := map[*RangeWriter][]Row{}
	var spans [][2][]byte
	var wants [][]Row
	for _, d := range m.Ranges {
		w, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: d.RangeId, Start: d.StartKey, End: d.EndKey, OpenedAt: 100}, 1)
		require.NoError(t, err)
		var rows []Row
		for _, r := range all {
			if Overlaps(d, r.Key, append(r.Key[:len(r.Key):len(r.Key)], 0)) {
				rows = append(rows, r)
			}
		}
		ws[w] = rows
		spans = append(spans, [2][]byte{d.StartKey, d.EndKey})
		wants = append(wants, rows)
	}
	const pubs = 5
	last := all[len(all)-1].CommitTs
	for i := uint64(1); i <= pubs; i++ {
		res := publishAll(t, g, 100+(last-100)*i/pubs, ws)
		require.Greater(t, res.Bytes, 3*readAhead/2, "publications larger than one read-ahead")
	}

	counted := &indexReadStore{Store: store, indexes: map[string]int{}}
	cache := NewCache(2 << 20) // less than the publications' read-aheads together
	for i, span := range spans {
		p, err := NewPullerWith(ctx, counted, 1, span[0], span[1], nil, 0, ReadOptions{Cache: cache, MaxEntriesPerPoll: 2, Releases: true})
		require.NoError(t, err)
		var got []Row
		for polls := 0; ; polls++ {
			require.Less(t, polls, 1000, "the pull of table %d never caught up", tables[i])
			rows, _, caughtUp, err := p.Poll(ctx)
			require.NoError(t, err)
			for _, r := range rows {
				r.Key, r.Value = append([]byte(nil), r.Key...), append([]byte(nil), r.Value...)
				got = append(got, r)
			}
			p.Release()
			if caughtUp {
				break
			}
		}
		requireSameRows(t, wants[i], got, "table %d", tables[i])
	}
	require.Len(t, counted.indexes, pubs)
	for k, n := range counted.indexes {
		require.Equal(t, 1, n, "index reads of %s", k)
	}
	require.Positive(t, cache.Stats().Evictions, "the cache was too small for the sections")
}

// A poll reads a range's entries until their rows pass MaxBytesPerPoll (one
// at least, however large), then returns what it has; the next polls go
// on, and the rows come whole and in order.
func TestPollBoundedByBytes(t *testing.T) {
	store := objstore.NewMemory()
	require.NoError(t, PublishManifest(ctx, store, singleRangeManifest(1)))
	all := genRows(rand.New(rand.NewPCG(12, 12)), 600, []int64{100}, 100)
	for i := range all {
		all[i].Value = make([]byte, 1000)
	}
	g := newGroup(t, store, 1, "g", noSegments)
	w, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1)
	require.NoError(t, err)
	const pubs = 6 // ~100 KB of rows each
	last := all[len(all)-1].CommitTs
	var wms []uint64
	for i := uint64(1); i <= pubs; i++ {
		wms = append(wms, 100+(last-100)*i/pubs)
	}
	publish(t, w, all, wms)
	var sizes []int // rows per publication
	for i, wm := range wms {
		lo := uint64(100)
		if i > 0 {
			lo = wms[i-1]
		}
		n := 0
		for _, r := range all {
			if r.CommitTs > lo && r.CommitTs <= wm {
				n++
			}
		}
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	most := sizes[len(sizes)-1] + sizes[len(sizes)-2] // the rows of the two largest

	for _, bound := range []int64{0, 150_000, 1} {
		p, err := NewPullerWith(ctx, store, 1, nil, nil, nil, 0, ReadOptions{MaxEntriesPerPoll: 16, MaxBytesPerPoll: bound})
		require.NoError(t, err)
		var got []Row
		polls := 0
		for ; ; polls++ {
			require.Less(t, polls, 100, "bound %d: never caught up", bound)
			rows, _, caughtUp, err := p.Poll(ctx)
			require.NoError(t, err)
			if bound == 150_000 {
				require.LessOrEqual(t, len(rows), most, "a poll bounded to 150 KB read more than two publications of ~100 KB")
			}
			got = append(got, rows...)
			if caughtUp {
				break
			}
		}
		requireSameRows(t, all, got, "bound %d", bound)
		switch bound {
		case 0:
			require.LessOrEqual(t, polls, 1, "no bound: the first poll reads every publication")
		case 150_000:
			require.GreaterOrEqual(t, polls, pubs/2)
		case 1:
			require.GreaterOrEqual(t, polls, pubs, "a bound below one entry still reads one a poll")
		}
	}
}
