package capture

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tistream/tistream/libs/formats/storeline"
	"github.com/tistream/tistream/libs/tidbcodec"
)

// maxRowsPerLine bounds a rows line (TiKV batches rows into events the
// same way).
const maxRowsPerLine = 256

// storeBuf is the open file of one store: its lines since the last cut.
type storeBuf struct {
	id    uint64
	lines []storeline.Line
}

func (b *storeBuf) addRow(regionID uint64, r storeline.Row) {
	if n := len(b.lines); n > 0 {
		l := &b.lines[n-1]
		if l.T == storeline.TypeRows && l.RegionID == regionID && len(l.Rows) < maxRowsPerLine {
			l.Rows = append(l.Rows, r)
			return
		}
	}
	b.lines = append(b.lines, storeline.Line{T: storeline.TypeRows, Store: b.id, RegionID: regionID, Rows: []storeline.Row{r}})
}

// Region is a region of the mock cluster: its id, epoch and raw bounds.
type Region struct {
	ID, Version, ConfVer uint64
	Start, End           []byte // memcomparable-encoded, as unistore keeps them
}

// Arm starts the stream: the model takes the mock cluster's regions,
// spreads their leaders over the stores, and each store's first file
// starts with the START (bootstrap) of every region it leads, then a
// PREWRITE of every lock that is already there, so that a commit of a
// transaction that began before the stream finds its prewrite. Every
// commit whose ts is taken after Arm returns is in the stream.
func (c *Capture) Arm(stores []uint64, regions []Region) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed {
		return fmt.Errorf("capture: already armed")
	}
	if len(stores) == 0 || len(regions) == 0 {
		return fmt.Errorf("capture: no stores or regions to start from")
	}
	c.stores = append([]uint64(nil), stores...)
	sort.Slice(c.stores, func(i, j int) bool { return c.stores[i] < c.stores[j] })
	for _, s := range c.stores {
		c.bufs[s] = &storeBuf{id: s}
	}
	var list []*region
	for _, r := range regions {
		start, err := tidbcodec.DecodeRegionKey(r.Start)
		if err != nil {
			return fmt.Errorf("capture: region %d start key: %w", r.ID, err)
		}
		var end []byte
		if len(r.End) > 0 {
			if end, err = tidbcodec.DecodeRegionKey(r.End); err != nil {
				return fmt.Errorf("capture: region %d end key: %w", r.ID, err)
			}
		}
		list = append(list, &region{id: r.ID, version: r.Version, confVer: r.ConfVer, term: firstTerm, start: start, end: end,
			floors: []floorPart{{start: start}}})
		c.nextID = max(c.nextID, r.ID)
	}
	sort.Slice(list, func(i, j int) bool { return bytes.Compare(list[i].start, list[j].start) < 0 })
	for i, r := range list {
		if (i == 0 && len(r.start) != 0) || (i > 0 && !bytes.Equal(list[i-1].end, r.start)) || (i == len(list)-1 && r.end != nil) {
			return fmt.Errorf("capture: the mock cluster's regions do not tile the key space at region %d", r.id)
		}
		r.leader = c.stores[i%len(c.stores)]
	}
	c.regions.list = list
	// Model regions get ids far above unistore's, which keeps allocating
	// its own for the splits it serves.
	c.nextID = max(c.nextID, 1<<32)
	c.armed = true
	for _, r := range list {
		c.start(r, storeline.ReasonBootstrap, nil)
	}
	keys := make([]string, 0, len(c.locks))
	for k, l := range c.locks {
		if real(l.op) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		l := c.locks[k]
		c.emit([]byte(k), storeline.Row{Type: storeline.RowPrewrite, Op: opName(l.op), StartTs: l.startTs, Key: []byte(k), Value: l.value})
	}
	c.stats.LocksAtStart = len(keys)
	return nil
}

func (c *Capture) start(r *region, reason string, preds []storeline.Ref) {
	c.bufs[r.leader].lines = append(c.bufs[r.leader].lines, storeline.Line{T: storeline.TypeStart, Store: r.leader,
		Region: r.wire(c.stores), Term: r.term, Reason: reason, Preds: preds})
}

func (c *Capture) end(r *region, reason string) {
	c.bufs[r.leader].lines = append(c.bufs[r.leader].lines, storeline.Line{T: storeline.TypeEnd, Store: r.leader,
		RegionID: r.id, Resolved: r.published, Reason: reason})
}

// Cut ends every store's open file: the resolved ts of every region it
// leads, by TiKV's rule, then the cut with a fresh max_ts. The lines go to
// Batches.
func (c *Capture) Cut() error {
	now := tso() // taken before the locks are read, as TiKV's resolver does
	c.mu.Lock()
	if !c.armed {
		c.mu.Unlock()
		return errNotArmed
	}
	if c.failed != nil {
		err := c.failed
		c.mu.Unlock()
		return err
	}
	// The oldest lock of each region, and the oldest async-commit or 1PC
	// prewrite in flight anywhere.
	minLock := make(map[*region]uint64)
	for k, l := range c.locks {
		if l.op == kvrpcpb.Op_PessimisticLock {
			continue // TiKV's resolver does not track pessimistic locks
		}
		r := c.regions.lookup([]byte(k))
		if m, ok := minLock[r]; !ok || l.startTs < m {
			minLock[r] = l.startTs
		}
	}
	floor := now
	for t := range c.mem {
		floor = min(floor, t.startTs)
	}
	byStore := make(map[uint64]map[uint64][]uint64)
	for _, r := range c.regions.list {
		ts := floor
		if m, ok := minLock[r]; ok {
			ts = min(ts, m)
		}
		ts = max(ts, r.published) // never backwards within an incarnation
		r.published = ts
		r.raiseFloor(ts)
		if byStore[r.leader] == nil {
			byStore[r.leader] = make(map[uint64][]uint64)
		}
		byStore[r.leader][ts] = append(byStore[r.leader][ts], r.id)
	}
	maxTs, unixMs := tso(), time.Now().UnixMilli()
	var batch []storeline.Line
	for _, s := range c.sortedStores() {
		b := c.bufs[s]
		batch = append(batch, b.lines...)
		tss := make([]uint64, 0, len(byStore[s]))
		for ts := range byStore[s] {
			tss = append(tss, ts)
		}
		sort.Slice(tss, func(i, j int) bool { return tss[i] < tss[j] })
		for _, ts := range tss {
			ids := byStore[s][ts]
			sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
			batch = append(batch, storeline.Line{T: storeline.TypeResolved, Store: s, Ts: ts, Regions: ids})
		}
		batch = append(batch, storeline.Line{T: storeline.TypeCut, Store: s, MaxTs: maxTs, UnixMs: unixMs})
		b.lines = nil
	}
	c.stats.Cuts++
	c.stats.LastResolvedMin = floor
	for _, r := range c.regions.list {
		c.stats.LastResolvedMin = min(c.stats.LastResolvedMin, r.published)
	}
	c.mu.Unlock()
	c.out <- batch
	return nil
}

// CloseBatches ends Batches; call it after the last Cut.
func (c *Capture) CloseBatches() { close(c.out) }
