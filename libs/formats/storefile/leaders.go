package storefile

import (
	"bytes"
	"slices"

	"github.com/pingcap/kvproto/pkg/metapb"

	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// leaderSet is what a store stream leads at one point, by region id, and
// how that differs from the stream's last full leader list: for every
// region id changed since that list, what the list had. The producer
// (Leaders) and the reader (Stream) both keep one, so that a delta header
// costs what changed since the full list, not what the store leads.
type leaderSet[V any] struct {
	led   map[uint64]V
	since map[uint64]prior[V]
	same  func(a, b V) bool
}

// prior is what the last full list had for a region id.
type prior[V any] struct {
	had bool
	v   V
}

func newLeaderSet[V any](same func(a, b V) bool) leaderSet[V] {
	return leaderSet[V]{led: map[uint64]V{}, since: map[uint64]prior[V]{}, same: same}
}

func (s *leaderSet[V]) get(id uint64) (V, bool) {
	v, ok := s.led[id]
	return v, ok
}

func (s *leaderSet[V]) touch(id uint64) {
	if _, ok := s.since[id]; !ok {
		v, had := s.led[id]
		s.since[id] = prior[V]{had: had, v: v}
	}
}

func (s *leaderSet[V]) set(id uint64, v V) {
	s.touch(id)
	s.led[id] = v
}

func (s *leaderSet[V]) remove(id uint64) {
	s.touch(id)
	delete(s.led, id)
}

// rebase makes the current list the full list deltas are taken against.
func (s *leaderSet[V]) rebase() {
	if len(s.since) > 1024 {
		s.since = map[uint64]prior[V]{} // a map never shrinks: let a large one go
		return
	}
	clear(s.since)
}

// reset empties the set and its history (a new start).
func (s *leaderSet[V]) reset() {
	clear(s.led)
	clear(s.since)
}

// delta is how the current list differs from the full list: the region ids
// led now by an incarnation the full list does not have, and the region ids
// the full list had that nothing leads now, both ascending.
func (s *leaderSet[V]) delta() (added, removed []uint64) {
	for id, p := range s.since {
		v, ok := s.led[id]
		switch {
		case ok && (!p.had || !s.same(v, p.v)):
			added = append(added, id)
		case !ok && p.had:
			removed = append(removed, id)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed
}

// led is what a Stream keeps of an incarnation its store leads, for as
// long as it leads it: the name and the region's encoded keys, in one
// small allocation (peers and conf_ver route and order nothing).
type led struct {
	ref   Ref
	keys  []byte // start key, then end key
	split uint32 // len(start key)
}

func leanOf(inc Incarnation) led {
	r := inc.Region
	keys := make([]byte, 0, len(r.StartKey)+len(r.EndKey))
	keys = append(append(keys, r.StartKey...), r.EndKey...)
	return led{ref: inc.ref(), keys: keys, split: uint32(len(r.StartKey))}
}

// incarnation rebuilds the incarnation (without peers and conf_ver).
func (l led) incarnation() Incarnation {
	start, end := l.bounds()
	return Incarnation{Region: &metapb.Region{Id: l.ref.RegionID, StartKey: start, EndKey: end,
		RegionEpoch: &metapb.RegionEpoch{Version: l.ref.Version}}, Term: l.ref.Term}
}

// bounds are the region's encoded start and end keys (nil when empty).
func (l led) bounds() (start, end []byte) {
	if l.split > 0 {
		start = l.keys[:l.split:l.split]
	}
	if int(l.split) < len(l.keys) {
		end = l.keys[l.split:]
	}
	return start, end
}

// DefaultFullListEvery is how many files a producer writes between two full
// leader lists (Leaders.FullEvery): a reader that starts at any file reads at
// most that file's header and one earlier one, and the full list costs
// 1/DefaultFullListEvery of its size per file.
const DefaultFullListEvery = 60

// Leaders is a producer's record of the incarnations its store leads, from
// which it writes each file's header leader list in format version 2: the
// full list in the stream's first file, in the first file after a restart,
// every FullEvery files and whenever the delta would be larger than half
// the list; otherwise the delta against the last full list. The header of
// a file describes the list when the file opens, so a producer calls Header
// when it cuts a file and Opened after uploading it. Not safe for concurrent
// use.
type Leaders struct {
	// FullEvery is the most files between two full lists
	// (DefaultFullListEvery if 0; 1 writes every list in full).
	FullEvery uint64
	// Version1 writes format version 1 headers, for consumers not upgraded
	// yet: the full list in every file and no format_version.
	Version1 bool

	set        leaderSet[*formatv1.RegionIncarnation]
	open       listFields // the leader fields of the open file's header
	full       bool       // the open file's list is full
	base, bmax uint64     // the last uploaded file with a full list
}

// listFields are a header's leader list fields.
type listFields struct {
	regions, added []*formatv1.RegionIncarnation
	removed        []uint64
	base, baseMax  uint64
}

// NewLeaders returns the record of a stream that leads nothing yet, whose
// next file (seq 1, or the first after a restart) carries a full list.
func NewLeaders(fullEvery uint64) *Leaders {
	return &Leaders{FullEvery: fullEvery, set: newLeaderSet(sameIncarnation), full: true}
}

func sameIncarnation(a, b *formatv1.RegionIncarnation) bool {
	return a == b || (a.Term == b.Term && bytes.Equal(a.Region, b.Region))
}

// Start records that the store leads inc of region id from now on.
func (l *Leaders) Start(id uint64, inc *formatv1.RegionIncarnation) { l.set.set(id, inc) }

// End records that the store no longer leads region id.
func (l *Leaders) End(id uint64) { l.set.remove(id) }

// Led returns the incarnation of region id the store leads.
func (l *Leaders) Led(id uint64) (*formatv1.RegionIncarnation, bool) { return l.set.get(id) }

// Len is the number of regions the store leads.
func (l *Leaders) Len() int { return len(l.set.led) }

// Restart forgets everything the store led (it restarted after a crash and
// leads nothing until elected again); the next file opened carries a full
// list. Call it before the next Opened.
func (l *Leaders) Restart() {
	l.set.reset()
	l.full = true
	l.open = listFields{}
	l.base, l.bmax = 0, 0
}

// Header sets h's leader list fields and format version for the open file:
// the list as it was when the file opened.
func (l *Leaders) Header(h *formatv1.StoreFileHeader) {
	h.FormatVersion = FormatVersion
	if l.Version1 {
		h.FormatVersion = 0
	}
	h.LeaderRegions, h.LeaderAdded, h.LeaderRemoved = l.open.regions, l.open.added, l.open.removed
	h.LeaderBaseSeq, h.LeaderBaseMaxTs = l.open.base, l.open.baseMax
}

// Opened records that the file of h (whose header Header filled) is
// uploaded and the next one opens now, with the list as it is now.
func (l *Leaders) Opened(h *formatv1.StoreFileHeader) {
	if l.full {
		l.base, l.bmax = h.Seq, h.MaxTs
	}
	next := h.Seq + 1
	every := l.FullEvery
	if every == 0 {
		every = DefaultFullListEvery
	}
	added, removed := l.set.delta()
	l.full = l.Version1 || l.base == 0 || next-l.base >= every || 2*(len(added)+len(removed)) > len(l.set.led)
	if l.full {
		ids := make([]uint64, 0, len(l.set.led))
		for id := range l.set.led {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		l.open = listFields{regions: make([]*formatv1.RegionIncarnation, len(ids))}
		for i, id := range ids {
			l.open.regions[i] = l.set.led[id]
		}
		l.set.rebase()
		return
	}
	l.open = listFields{base: l.base, baseMax: l.bmax, removed: removed, added: make([]*formatv1.RegionIncarnation, len(added))}
	for i, id := range added {
		l.open.added[i] = l.set.led[id]
	}
}
