package capture

import (
	"bytes"
	"sort"

	"github.com/tistream/tistream/libs/formats/storeline"
)

// firstTerm is a new region's first leader's raft term (TiKV starts raft
// logs at term 5, so the first election wins term 6).
const firstTerm = 6

// region is one region of the capture's model and its current
// incarnation. Unistore has regions and epochs but no raft: no leaders
// (every request is served by the first peer's store), no terms, no merges.
// The model takes every split TiDB asks unistore for, and adds what
// unistore cannot do — leaders spread over the stores, leader transfers,
// merges — so the stores' streams carry every kind of region change.
type region struct {
	id, version, confVer, term uint64
	start, end                 []byte // raw keys; end nil = unbounded
	leader                     uint64 // store id
	// published is the last resolved ts this incarnation published.
	published uint64
	// floors are, for the parts of its range, the greatest resolved ts it or
	// a predecessor over those keys published (the spec's rule 2: no commit
	// at or below it may follow): per part, because a merge joins parts
	// whose predecessors published different ts.
	floors []floorPart
}

// floorPart is the floor of the keys from start to the next part's start.
type floorPart struct {
	start []byte
	ts    uint64
}

// floorAt is the floor of key.
func (r *region) floorAt(key []byte) uint64 {
	var ts uint64
	for _, p := range r.floors {
		if bytes.Compare(p.start, key) > 0 {
			break
		}
		ts = p.ts
	}
	return ts
}

// raiseFloor raises every part's floor to at least ts; parts that end up
// equal are joined.
func (r *region) raiseFloor(ts uint64) {
	out := r.floors[:0]
	for _, p := range r.floors {
		p.ts = max(p.ts, ts)
		if n := len(out); n > 0 && out[n-1].ts == p.ts {
			continue
		}
		out = append(out, p)
	}
	r.floors = out
}

// floorsWithin are the parts of floors clipped to [start, end).
func floorsWithin(floors []floorPart, start, end []byte) []floorPart {
	var out []floorPart
	for i, p := range floors {
		if end != nil && bytes.Compare(p.start, end) >= 0 {
			break
		}
		if i+1 < len(floors) && bytes.Compare(floors[i+1].start, start) <= 0 {
			continue
		}
		if bytes.Compare(p.start, start) < 0 {
			p.start = start
		}
		out = append(out, p)
	}
	return out
}

func (r *region) contains(key []byte) bool {
	return bytes.Compare(key, r.start) >= 0 && (r.end == nil || bytes.Compare(key, r.end) < 0)
}

func (r *region) ref() storeline.Ref {
	return storeline.Ref{ID: r.id, Version: r.version, Term: r.term}
}

func (r *region) wire(stores []uint64) *storeline.Region {
	w := &storeline.Region{ID: r.id, Start: r.start, End: r.end, Version: r.version, ConfVer: r.confVer}
	for i, s := range stores {
		w.Peers = append(w.Peers, storeline.Peer{ID: r.id<<3 | uint64(i+1), Store: s})
	}
	return w
}

// regionSet is the model's regions, sorted by start key, tiling the key
// space.
type regionSet struct {
	list []*region
}

func (s *regionSet) lookup(key []byte) *region {
	i := sort.Search(len(s.list), func(i int) bool { return bytes.Compare(s.list[i].start, key) > 0 })
	return s.list[i-1] // list[0].start is "", so i >= 1
}

func (s *regionSet) index(r *region) int {
	i := sort.Search(len(s.list), func(i int) bool { return bytes.Compare(s.list[i].start, r.start) >= 0 })
	return i
}

// replace puts parts in place of the regions from index i to j (exclusive).
func (s *regionSet) replace(i, j int, parts ...*region) {
	rest := append([]*region(nil), s.list[j:]...)
	s.list = append(append(s.list[:i], parts...), rest...)
}
