package sim

import (
	"bytes"
	"fmt"

	"github.com/google/btree"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// firstTerm is the raft term a freshly created region's first leader has
// (TiKV starts raft logs at term 5, so the first election wins term 6).
const firstTerm = 6

// region is one TiKV region of a tenant and its current incarnation.
type region struct {
	id      uint64
	start   []byte // raw TiDB key, inclusive
	end     []byte // raw TiDB key, exclusive; nil = unbounded
	version uint64
	confVer uint64
	term    uint64
	leader  int   // index of the leading store
	peers   []int // store indexes holding a peer (leader included)

	locks  map[string]uint64 // locked key -> start_ts
	lockTs map[uint64]int    // start_ts -> number of locked keys, for the min

	// resolved is the floor for the next resolved ts (monotonic across
	// incarnations of the keys) and pub the last resolved ts the current
	// incarnation published (0 if none), as of the last time they were
	// set one by one: the current incarnation also has every later
	// LeaderResolvedTs ts of its leader stream st that covers it (see
	// stream.covered), so reading them takes Sim.resolvedOf and publishedOf.
	resolved, pub uint64
	st            *stream // the stream that leads the current incarnation
	// joinGen is st.gen when the incarnation started, exceptGen the gen of
	// the last LeaderResolvedTs of st that excepted it.
	joinGen, exceptGen uint64
	// upPub is what published was when st's file seq upCut-1 was cut,
	// saved when the incarnation changed after that cut (see upPublished).
	upPub, upCut uint64
	wire         *formatv1.RegionIncarnation
	pos          int        // index in regionSet.list
	set          *regionSet // the set holding the region, nil when out of it

	// What a reader of the uploaded files knows of the current
	// incarnation: the seq of the leader's file that uploaded its START (0 =
	// not uploaded yet) and its greatest uploaded resolved ts.
	startSeq    uint64
	upPublished uint64
	// While the current incarnation's START is not uploaded yet and was
	// written by a store about to crash (a split, merge or takeover), or
	// while a takeover due for this region is not uploaded yet: the
	// predecessors its START names and the incarnations a reader knows
	// whose END is not uploaded (oldest first). A takeover of the region
	// writes the same START predecessors and a takeover END of each debt.
	preds []*formatv1.IncarnationRef
	debts []*debt
	// frozenIn is the open file of a store about to crash that holds a
	// split, merge or transfer record that made or ended this region's
	// incarnation: until that file is cut or lost, the region takes part
	// in no other split, merge or transfer.
	frozenIn *stream
}

func (r *region) contains(key []byte) bool {
	return bytes.Compare(key, r.start) >= 0 && (r.end == nil || bytes.Compare(key, r.end) < 0)
}

func (r *region) ref() *formatv1.IncarnationRef {
	return &formatv1.IncarnationRef{RegionId: r.id, Version: r.version, Term: r.term}
}

// incarnation is the wire form of the current incarnation, cached until the
// region changes.
func (r *region) incarnation(peerID func(regionID uint64, store int) uint64, storeIDs []uint64) *formatv1.RegionIncarnation {
	if r.wire != nil {
		return r.wire
	}
	m := &metapb.Region{
		Id:          r.id,
		StartKey:    tidbcodec.EncodeRegionKey(r.start),
		EndKey:      tidbcodec.EncodeRegionKey(r.end),
		RegionEpoch: &metapb.RegionEpoch{ConfVer: r.confVer, Version: r.version},
	}
	for _, s := range r.peers {
		m.Peers = append(m.Peers, &metapb.Peer{Id: peerID(r.id, s), StoreId: storeIDs[s]})
	}
	w, err := storefile.Incarnation{Region: m, Term: r.term}.Encode()
	if err != nil {
		panic(fmt.Sprintf("encode region %d: %v", r.id, err)) // metapb.Region always marshals
	}
	r.wire = w
	return w
}

func (r *region) changed() { r.wire = nil }

func (r *region) addLock(key []byte, startTs uint64) {
	if r.locks == nil {
		r.locks = make(map[string]uint64)
		r.lockTs = make(map[uint64]int)
	}
	k := string(key)
	if _, ok := r.locks[k]; ok {
		return
	}
	r.locks[k] = startTs
	r.lockTs[startTs]++
	if r.set != nil {
		r.set.locked[r] = struct{}{}
	}
}

func (r *region) removeLock(key []byte) {
	k := string(key)
	ts, ok := r.locks[k]
	if !ok {
		return
	}
	delete(r.locks, k)
	if r.lockTs[ts]--; r.lockTs[ts] == 0 {
		delete(r.lockTs, ts)
	}
	if len(r.locks) == 0 && r.set != nil {
		delete(r.set.locked, r)
	}
}

// minLock is the smallest start_ts of a lock in the region, or 0.
func (r *region) minLock() uint64 {
	var min uint64
	for ts := range r.lockTs {
		if min == 0 || ts < min {
			min = ts
		}
	}
	return min
}

// regionSet is a tenant's regions, ordered by start key, plus a list for
// picking one at random.
type regionSet struct {
	tree *btree.BTreeG[*region]
	byID map[uint64]*region
	list []*region
	// locked are the regions holding locks: the only ones whose resolved
	// ts can lag the TSO, listed as exceptions (format version 2).
	locked map[*region]struct{}
}

func newRegionSet() *regionSet {
	return &regionSet{
		tree:   btree.NewG(32, func(a, b *region) bool { return bytes.Compare(a.start, b.start) < 0 }),
		byID:   make(map[uint64]*region),
		locked: make(map[*region]struct{}),
	}
}

func (s *regionSet) add(r *region) {
	s.tree.ReplaceOrInsert(r)
	s.byID[r.id] = r
	r.pos = len(s.list)
	s.list = append(s.list, r)
	r.set = s
	if len(r.locks) > 0 {
		s.locked[r] = struct{}{}
	}
}

func (s *regionSet) remove(r *region) {
	s.tree.Delete(r)
	delete(s.byID, r.id)
	delete(s.locked, r)
	r.set = nil
	last := s.list[len(s.list)-1]
	s.list[r.pos] = last
	last.pos = r.pos
	s.list = s.list[:len(s.list)-1]
}

// lookup returns the region holding key.
func (s *regionSet) lookup(key []byte) *region {
	var found *region
	s.tree.DescendLessOrEqual(&region{start: key}, func(r *region) bool {
		found = r
		return false
	})
	if found == nil || !found.contains(key) {
		panic(fmt.Sprintf("sim: no region holds key %x: regions must cover the key space", key))
	}
	return found
}

// next returns the region right after r, or nil.
func (s *regionSet) next(r *region) *region {
	if r.end == nil {
		return nil
	}
	var found *region
	s.tree.AscendGreaterOrEqual(&region{start: r.end}, func(n *region) bool {
		found = n
		return false
	})
	return found
}

// lead makes store to the region's leader at the next term; the leader is
// always peers[0].
func (r *region) lead(to int) {
	for i, p := range r.peers {
		if p == to {
			r.peers[0], r.peers[i] = r.peers[i], r.peers[0]
		}
	}
	r.leader = to
	r.term++
	r.changed()
}
