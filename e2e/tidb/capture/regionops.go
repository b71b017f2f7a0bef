package capture

import (
	"bytes"
	"sort"

	"github.com/tistream/tistream/libs/formats/storeline"
)

// SplitAt splits the model's regions at the given raw keys (those not
// already a boundary): TiDB asked unistore for these splits (SPLIT TABLE,
// a new table's own region), and the streams show them as TiKV would.
func (c *Capture) SplitAt(keys [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.armed {
		return
	}
	byRegion := make(map[*region][][]byte)
	for _, k := range keys {
		if len(k) == 0 {
			continue
		}
		r := c.regions.lookup(k)
		if bytes.Equal(r.start, k) {
			continue
		}
		byRegion[r] = append(byRegion[r], k)
	}
	for r, ks := range byRegion {
		c.split(r, ks)
		c.stats.SplitsFromTiDB++
	}
}

// split ends r and starts its parts: the last keeps r's id and term (TiKV's
// right-derived split), the others get new ids at the first term; all get
// the next epoch version and stay with r's leader.
func (c *Capture) split(r *region, keys [][]byte) {
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
	uniq := keys[:0]
	for _, k := range keys {
		if len(uniq) == 0 || !bytes.Equal(uniq[len(uniq)-1], k) {
			uniq = append(uniq, k)
		}
	}
	c.end(r, storeline.ReasonSplit)
	pred := []storeline.Ref{r.ref()}
	parts := make([]*region, 0, len(uniq)+1)
	start := r.start
	for i := 0; i <= len(uniq); i++ {
		p := &region{version: r.version + 1, confVer: r.confVer, leader: r.leader, start: start}
		if i < len(uniq) {
			c.nextID++
			p.id, p.term, p.end = c.nextID, firstTerm, uniq[i]
			start = uniq[i]
		} else {
			p.id, p.term, p.end = r.id, r.term, r.end
		}
		p.floors = floorsWithin(r.floors, p.start, p.end)
		parts = append(parts, p)
	}
	i := c.regions.index(r)
	c.regions.replace(i, i+1, parts...)
	for _, p := range parts {
		c.start(p, storeline.ReasonSplit, pred)
	}
}

// merge merges r and the region after it: one is the source, the other
// the target whose id, term and leader the merged region keeps, at an
// epoch version above both.
func (c *Capture) merge(i int, sourceLeft bool) {
	left, right := c.regions.list[i], c.regions.list[i+1]
	source, target := right, left
	if sourceLeft {
		source, target = left, right
	}
	c.end(source, storeline.ReasonMerge)
	c.end(target, storeline.ReasonMerge)
	m := &region{id: target.id, version: max(left.version, right.version) + 1, confVer: target.confVer,
		term: target.term, leader: target.leader, start: left.start, end: right.end,
		floors: append(append([]floorPart(nil), left.floors...), right.floors...)}
	c.regions.replace(i, i+2, m)
	c.start(m, storeline.ReasonMerge, []storeline.Ref{source.ref(), target.ref()})
	c.stats.Merges++
}

// transfer moves r's leadership to another store at the next term.
func (c *Capture) transfer(r *region, to uint64) {
	c.end(r, storeline.ReasonLeaderTransfer)
	pred := []storeline.Ref{r.ref()}
	r.term++
	r.leader = to
	r.published = 0
	c.start(r, storeline.ReasonLeaderTransfer, pred)
	c.stats.Transfers++
}

// Chaos runs one random region operation of the model: a leader
// transfer, a merge of two neighbours or a split at a recently written key.
func (c *Capture) Chaos() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.armed {
		return
	}
	n := len(c.regions.list)
	switch op := c.rng.Intn(3); {
	case op == 0 || n < 2 && len(c.recent) == 0:
		r := c.regions.list[c.rng.Intn(n)]
		to := c.stores[c.rng.Intn(len(c.stores))]
		if to == r.leader {
			to = c.stores[(indexOf(c.stores, to)+1)%len(c.stores)]
		}
		c.transfer(r, to)
	case op == 1 && n >= 2:
		c.merge(c.rng.Intn(n-1), c.rng.Intn(2) == 0)
	default:
		if len(c.recent) == 0 {
			return
		}
		k := c.recent[c.rng.Intn(len(c.recent))]
		r := c.regions.lookup(k)
		if bytes.Equal(r.start, k) {
			return
		}
		c.split(r, [][]byte{k})
		c.stats.ChaosSplits++
	}
}

// TransferAll moves every region's leadership to the next store: one
// leader transfer per region at one instant, as when a store is drained.
func (c *Capture) TransferAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.armed {
		return
	}
	for _, r := range c.regions.list {
		c.transfer(r, c.stores[(indexOf(c.stores, r.leader)+1)%len(c.stores)])
	}
}

func indexOf(s []uint64, v uint64) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return 0
}
