package pool

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
)

// The tests of Heads check that a reader told by the publication notices
// what each group's newest publication is never GETs one above it, that
// one whose notice never came is still read once the announcement is
// stale, and that the rows pulled are exactly those written (the rows
// generated for each range are the independent record), in order.

// takePubs returns the publications read since the last call, by group.
func (s *countingStore) takePubs() map[string][]uint64 {
	s.mu.Lock()
	keys := s.pubKeys
	s.pubKeys = nil
	s.mu.Unlock()
	out := map[string][]uint64{}
	for _, k := range keys {
		group, _, _ := strings.Cut(strings.TrimPrefix(k, layout.GroupsPrefix(1)), "/")
		seq, err := layout.ParseGroupSeqKey(k)
		if err == nil {
			out[group] = append(out[group], seq)
		}
	}
	return out
}

// newest is the seq of a group's last publication.
func newest(g *GroupWriter) uint64 { return g.Next() - 1 }

// pollUntilCaughtUp polls p until it is caught up and returns the rows.
func pollUntilCaughtUp(t *testing.T, p *Puller) ([]Row, uint64) {
	t.Helper()
	var out []Row
	for range 10000 {
		rows, resolved, caughtUp, err := p.Poll(ctx)
		require.NoError(t, err)
		out = append(out, rows...)
		if caughtUp {
			return out, resolved
		}
	}
	t.Fatal("the puller never caught up")
	return nil, 0
}

func TestHeads(t *testing.T) {
	now := time.Unix(1000, 0)
	h := NewHeads(time.Second, func() time.Time { return now })
	notYet := func(group string, seq uint64) bool { return h.notYet(1, group, seq) != nil }

	require.False(t, notYet("g", 1), "nothing announced: poll")
	h.Announce(1, "g", 5)
	require.False(t, notYet("g", 5), "the announced one exists")
	require.True(t, notYet("g", 6), "above the announced one: not yet")
	require.ErrorIs(t, h.notYet(1, "g", 6), objstore.ErrNotFound)
	require.False(t, notYet("h", 6), "another group")
	require.False(t, h.notYet(2, "g", 6) != nil, "another tenant")
	h.Announce(1, "g", 3)
	require.True(t, notYet("g", 5) == false && notYet("g", 6), "a lower seq lowers nothing")
	require.Equal(t, int64(3), h.Skipped())

	now = now.Add(999 * time.Millisecond)
	require.True(t, notYet("g", 6), "fresh")
	now = now.Add(time.Millisecond)
	require.False(t, notYet("g", 6), "stale after the freshness bound: poll")
	h.Announce(1, "g", 6)
	require.False(t, notYet("g", 6))
	require.True(t, notYet("g", 7), "a new notice is fresh again")

	h.Reset()
	require.False(t, notYet("g", 7), "the watch ended: nothing is believed")

	// Stale entries are pruned as notices come.
	h.Announce(1, "old", 1)
	now = now.Add(2 * time.Second)
	h.Announce(1, "g", 8)
	h.mu.Lock()
	_, kept := h.m[headKey{1, "old"}]
	h.mu.Unlock()
	require.False(t, kept)

	var none *Heads
	require.NoError(t, none.notYet(1, "g", 1))
	none.Announce(1, "g", 1)
	none.Reset()
	require.Zero(t, none.Skipped())
}

// TestNoticesStopProbing: two ranges of one tenant in two groups (two
// sorters), published one publication at a time, each announced. A puller
// with the notices reads every publication announced and never one above
// it; without them it probes the next seq of each group after every
// publication. Both pull exactly the rows written, in order.
func TestNoticesStopProbing(t *testing.T) {
	for _, notices := range []bool{true, false} {
		base := objstore.NewMemory()
		split := key(102, 0)
		require.NoError(t, PublishManifest(ctx, base, twoRangeManifest(1, split)))
		all := genRows(rand.New(rand.NewPCG(5, 5)), 900, []int64{100, 101, 102, 103}, 100)
		rows1, rows2 := splitRows(all, split)
		last := all[len(all)-1].CommitTs + 1
		ga, gb := newGroup(t, base, 1, "a", noSegments), newGroup(t, base, 1, "b", noSegments)
		w1, err := CreateRange(ctx, ga, RangeSpec{Tenant: 1, RangeID: 1, End: split, OpenedAt: 100}, 1)
		require.NoError(t, err)
		w2, err := CreateRange(ctx, gb, RangeSpec{Tenant: 1, RangeID: 2, Start: split, OpenedAt: 100}, 1)
		require.NoError(t, err)

		heads := NewHeads(time.Hour, nil) // never stale here
		announce := func() {
			if notices {
				heads.Announce(1, ga.ID(), newest(ga))
				heads.Announce(1, gb.ID(), newest(gb))
			}
		}
		// Each group has published (and announced) once before the pull.
		publish(t, w1, rows1, []uint64{120})
		publish(t, w2, rows2, []uint64{120})
		announce()
		store := &countingStore{Store: base}
		o := ReadOptions{Cache: NewCache(64 << 20), MaxEntriesPerPoll: 4}
		if notices {
			o.Heads = heads
		}
		p, err := NewPullerWith(ctx, store, 1, nil, nil, nil, 0, o)
		require.NoError(t, err)
		var got []Row
		probes := 0
		for wm := uint64(150); ; wm += 97 {
			wm = min(wm, last)
			// One sorter publishes at a time; the other one is idle.
			if wm%2 == 0 {
				publish(t, w1, rows1, []uint64{wm})
			} else {
				publish(t, w2, rows2, []uint64{wm})
			}
			announce()
			rows, _ := pollUntilCaughtUp(t, p)
			got = append(got, rows...)
			for group, seqs := range store.takePubs() {
				top := map[string]uint64{ga.ID(): newest(ga), gb.ID(): newest(gb)}[group]
				for _, seq := range seqs {
					if seq > top {
						probes++
						require.False(t, notices, "group %s: publication %d read, %d is the newest announced", group, seq, top)
					}
				}
			}
			if wm == last {
				break
			}
		}
		// Both ranges at last.
		publish(t, w1, rows1, []uint64{last + 1})
		publish(t, w2, rows2, []uint64{last + 1})
		announce()
		rows, resolved := pollUntilCaughtUp(t, p)
		got = append(got, rows...)
		require.Equal(t, last+1, resolved)
		requireSameRows(t, all, got, "notices %v", notices)
		if notices {
			require.Positive(t, heads.Skipped())
			t.Logf("with notices: %d polls answered without a GET", heads.Skipped())
		} else {
			require.Positive(t, probes, "without notices the reader probes the next seq (else this test proves nothing)")
			t.Logf("without notices: %d GETs of a publication not written yet", probes)
		}
	}
}

// headsFixture is one range in one group, its rows generated from seed,
// read through a store that records the publications read, with notices on
// a clock the test moves.
type headsFixture struct {
	all       []Row
	last, mid uint64
	g         *GroupWriter
	w         *RangeWriter
	now       time.Time // the notices' clock
	heads     *Heads
	store     *countingStore
}

func newHeadsFixture(t *testing.T, seed uint64, group string) *headsFixture {
	base := objstore.NewMemory()
	require.NoError(t, PublishManifest(ctx, base, singleRangeManifest(1)))
	all := genRows(rand.New(rand.NewPCG(seed, seed)), 400, []int64{100}, 100)
	g := newGroup(t, base, 1, group, noSegments)
	w, err := CreateRange(ctx, g, RangeSpec{Tenant: 1, RangeID: 1, OpenedAt: 100}, 1)
	require.NoError(t, err)
	x := &headsFixture{all: all, last: all[len(all)-1].CommitTs + 1, mid: all[len(all)/2].CommitTs, g: g, w: w,
		now: time.Unix(1000, 0), store: &countingStore{Store: base}}
	x.heads = NewHeads(time.Second, func() time.Time { return x.now })
	return x
}

// puller opens a pull of the tenant from ts 0 with the notices.
func (x *headsFixture) puller(t *testing.T) *Puller {
	p, err := NewPullerWith(ctx, x.store, 1, nil, nil, nil, 0, ReadOptions{Cache: NewCache(64 << 20), Heads: x.heads})
	require.NoError(t, err)
	return p
}

// TestLostNoticeCostsLagOnly: a publication whose notice never came is not
// read while the previous announcement is fresh, and is read once it is
// stale (the fallback poll) — or at once when the watch ended (Reset). A
// reader opened meanwhile reads it at once: positioning lists what exists.
func TestLostNoticeCostsLagOnly(t *testing.T) {
	x := newHeadsFixture(t, 6, "g")
	all, last, mid, g, w, heads, store := x.all, x.last, x.mid, x.g, x.w, x.heads, x.store
	open := func() *Puller { return x.puller(t) }

	publish(t, w, all, []uint64{mid / 2})
	heads.Announce(1, g.ID(), newest(g))
	p := open()
	got, resolved := pollUntilCaughtUp(t, p)
	require.Equal(t, mid/2, resolved)

	// Published, its notice lost.
	publish(t, w, all, []uint64{mid})
	store.takePubs()
	rows, resolved := pollUntilCaughtUp(t, p)
	require.Empty(t, rows)
	require.Equal(t, mid/2, resolved, "not read while the announcement is fresh")
	require.Empty(t, store.takePubs(), "and not even looked for")

	// A reader opened now positions itself by listing: it sees it.
	early, r2 := pollUntilCaughtUp(t, open())
	require.Equal(t, mid, r2)
	requireSameRows(t, rowsUpTo(all, mid), early, "a reader opened after the lost notice")

	x.now = x.now.Add(time.Second) // the fallback poll interval passed
	rows, resolved = pollUntilCaughtUp(t, p)
	require.Equal(t, mid, resolved, "read once the announcement is stale")
	got = append(got, rows...)

	// Lost again; the watch then ends: nothing is believed any more.
	heads.Announce(1, g.ID(), newest(g))
	publish(t, w, all, []uint64{last})
	rows, resolved = pollUntilCaughtUp(t, p)
	require.Empty(t, rows)
	require.Equal(t, mid, resolved)
	heads.Reset()
	rows, resolved = pollUntilCaughtUp(t, p)
	require.Equal(t, last, resolved)
	got = append(got, rows...)
	requireSameRows(t, all, got, "the follower")
}

// TestNoticesAndTakeover: a range moves to a new owner (another group)
// while readers follow it with notices. The new owner's FENCE in the old
// group is never announced (the notices name the old owner's group and
// seq): a reader waiting at that seq finds it once the old group's
// announcement is stale, follows the TAKEOVER into the new group and reads
// every row once, in order.
func TestNoticesAndTakeover(t *testing.T) {
	x := newHeadsFixture(t, 7, "old")
	all, last, mid, gOld, w, heads, store := x.all, x.last, x.mid, x.g, x.w, x.heads, x.store
	publish(t, w, all, []uint64{mid / 2, mid})
	heads.Announce(1, gOld.ID(), newest(gOld))
	p := x.puller(t)
	got, resolved := pollUntilCaughtUp(t, p)
	require.Equal(t, mid, resolved)

	gNew := newGroup(t, store.Store, 1, "new", noSegments)
	nw, err := OpenRange(ctx, gNew, 1, 1, 2) // FENCE in "old", TAKEOVER
	require.NoError(t, err)
	publish(t, nw, all, []uint64{last})
	heads.Announce(1, gNew.ID(), newest(gNew))
	rows, resolved := pollUntilCaughtUp(t, p)
	require.Empty(t, rows)
	require.Equal(t, mid, resolved, "the FENCE is above the old group's fresh announcement")

	x.now = x.now.Add(time.Second)
	heads.Announce(1, gNew.ID(), newest(gNew)) // the new owner's notices go on
	rows, resolved = pollUntilCaughtUp(t, p)
	require.Equal(t, last, resolved)
	got = append(got, rows...)
	requireSameRows(t, all, got, "the follower across the takeover")
	for group, seqs := range store.takePubs() {
		if group == gNew.ID() {
			for _, seq := range seqs {
				require.LessOrEqual(t, seq, newest(gNew), "the new group read above its announcement")
			}
		}
	}
}
