package route

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/offheap"
	"github.com/tistream/tistream/libs/recycle"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// Router routes the files of one store stream, read in order. It carries
// what the store leads from one file to the next (a storefile.Stream, and
// how many led incarnations overlap each range), so a file costs what
// changed in it: a format version 2 header lists the leaders in full only
// periodically, and a LeaderResolvedTs resolves every led region in one
// record. Key ranges are decoded when a record needs them, so the Router
// keeps nothing per region beyond the Stream. Not safe for concurrent use.
type Router struct {
	table  *Table
	stream *storefile.Stream
	count  map[uint64]int // range id -> led incarnations overlapping it
	tr     *Tracker
	own    bool // tr is the Router's own: commit it after each file
	check  func(name string, h *formatv1.StoreFileHeader) error

	resolved map[uint64][]Ref // scratch, per range
	// sizes is how many events each range's batch of the last file had
	// (and a little more): the next file's batch starts with that room, as
	// a store's files are much alike, instead of growing an event (160
	// bytes) at a time — 40 % of the bytes routing allocated.
	sizes map[uint64]int
	// spans are the led regions' spans rows were routed with (ledSpan).
	spans map[uint64]ledSpanCache
	// free holds the event arrays of batches given back (Recycle), for the
	// next files' batches.
	free [][]Event
}

// NewRouter routes into table. A stream it starts at a delta header (not
// the stream's first file) needs WithBase.
func NewRouter(table *Table) *Router {
	rt := newRouter(table, NewTracker())
	rt.own = true
	return rt
}

// NewTrackedRouter routes into table, checking the files against tr, which
// outlives the Router (a stream restarting from its checkpoint makes a new
// Router but keeps its Tracker). The caller calls tr.Commit after each file
// it accepts.
func NewTrackedRouter(table *Table, tr *Tracker) *Router { return newRouter(table, tr) }

func newRouter(table *Table, tr *Tracker) *Router {
	return &Router{table: table, stream: storefile.NewStream(nil), count: map[uint64]int{}, tr: tr,
		resolved: map[uint64][]Ref{}, sizes: map[uint64]int{}, spans: map[uint64]ledSpanCache{}}
}

// WithBase sets how the Router reads the header of an earlier file of the
// stream when it starts at a delta header (storefile.BaseFromStore).
func (rt *Router) WithBase(base storefile.BaseLoader) *Router {
	rt.stream = storefile.NewStream(base)
	rt.stream.SetCheck(rt.check)
	return rt
}

// WithCheck makes Route call check with each file's name and header before
// anything else is read (see storefile.Stream.SetCheck).
func (rt *Router) WithCheck(check func(name string, h *formatv1.StoreFileHeader) error) *Router {
	rt.check = check
	rt.stream.SetCheck(check)
	return rt
}

// Base is the seq of the stream's last format version 2 file with a full
// leader list, as far as routed (see storefile.Stream.Base).
func (rt *Router) Base() uint64 { return rt.stream.Base() }

// Route decodes one store change file with a fresh router.
func Route(name string, data []byte, table *Table) (map[uint64]*Batch, *formatv1.StoreFileHeader, error) {
	return NewRouter(table).Route(name, data)
}

// span is an incarnation's raw key range and the ranges it overlaps.
type span struct {
	ref        Ref
	start, end []byte
	ranges     []uint64
}

func (s *span) contains(key []byte) bool {
	return string(key) >= string(s.start) && (len(s.end) == 0 || string(key) < string(s.end))
}

func (rt *Router) spanOf(name string, inc storefile.Incarnation) (*span, error) {
	return rt.spanOfKeys(name, refOf(inc), inc.Region.StartKey, inc.Region.EndKey)
}

// spanOfKeys is spanOf of an incarnation's ref and encoded keys.
func (rt *Router) spanOfKeys(name string, ref Ref, rawStart, rawEnd []byte) (*span, error) {
	start, err := tidbcodec.DecodeRegionKey(rawStart)
	if err != nil {
		return nil, fmt.Errorf("%s: region %d start key: %w", name, ref.RegionID, err)
	}
	end, err := tidbcodec.DecodeRegionKey(rawEnd)
	if err != nil {
		return nil, fmt.Errorf("%s: region %d end key: %w", name, ref.RegionID, err)
	}
	s := &span{ref: ref, start: start, end: end}
	rt.table.Overlapping(start, end, func(r *Range) { s.ranges = append(s.ranges, r.ID) })
	return s, nil
}

// lead and unlead count the ranges a led incarnation overlaps.
func (rt *Router) lead(s *span) {
	for _, id := range s.ranges {
		rt.count[id]++
	}
}

func (rt *Router) unlead(s *span) {
	for _, id := range s.ranges {
		if rt.count[id]--; rt.count[id] <= 0 {
			delete(rt.count, id)
		}
	}
}

// Route decodes one store change file and splits its events per range, in
// stream order. Rows go to the range owning their key; region changes and
// resolved ts go to every range the region overlaps; a LeaderResolvedTs
// goes to every range a led region overlaps, with the exceptions there.
// Every range overlapped by a region the store leads gets a batch, empty or
// not, so it records the file's position; a version 2 file with a full
// leader list gives every range of the table a batch starting with that
// list (KindLeaders).
func (rt *Router) Route(name string, data []byte) (_ map[uint64]*Batch, _ *formatv1.StoreFileHeader, err error) {
	r, err := rt.stream.Open(name, data)
	if err != nil {
		var mm *storefile.LeaderMismatchError
		if errors.As(err, &mm) && mm.Listed.RegionID != 0 && mm.Led.RegionID != 0 &&
			older(Ref(mm.Listed), Ref(mm.Led)) {
			return nil, nil, fmt.Errorf("%w (%w)", err, ErrEpochRegressed)
		}
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			rt.stream.Reset() // the next file starts afresh, and so does rt.led
		}
	}()
	h := r.Header()
	rt.tr.begin(h.Seq)
	if rt.own {
		defer func() {
			if err == nil {
				rt.tr.Commit()
			}
		}()
	}
	if err := rt.begin(name, r); err != nil {
		return nil, nil, err
	}
	out := map[uint64]*Batch{}
	batch := func(id uint64) *Batch {
		b := out[id]
		if b == nil {
			b = &Batch{RangeID: id, Pos: Position{Store: h.StoreId, Seq: h.Seq}, MaxTs: h.MaxTs}
			if n := rt.sizes[id]; n > 0 {
				if a, ok := recycle.Smallest(&rt.free, n, 0); ok {
					b.Events = a
				} else {
					// Every page written now: the collector scans
					// the array to its capacity while it fills
					// (offheap.WritePages).
					b.Events = offheap.WritePages(make([]Event, 0, n))
				}
			}
			out[id] = b
		}
		return b
	}
	for id := range rt.count {
		batch(id)
	}
	if r.FullList() {
		if err := rt.leaders(name, r, batch); err != nil {
			return nil, nil, err
		}
	}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		switch {
		case rec.RegionChange != nil:
			err = rt.regionChange(name, rec, batch)
		case rec.LeaderResolved != nil:
			err = rt.leaderResolved(name, r, rec.LeaderResolved, batch)
		default:
			err = rt.event(name, r, rec.Event, batch)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	clear(rt.sizes)
	for id, b := range out {
		if n := len(b.Events); n > 0 {
			rt.sizes[id] = n + n/8
		}
	}
	return out, h, nil
}

// begin brings the led incarnations up to the start of r's file: all of
// them when the stream started afresh, else without those a restarted
// store's full list dropped.
func (rt *Router) begin(name string, r *storefile.Reader) error {
	if !r.Fresh() {
		for _, inc := range r.Dropped() {
			s, err := rt.spanOf(name, inc)
			if err != nil {
				return err
			}
			rt.unlead(s)
		}
		return nil
	}
	clear(rt.count)
	return rt.eachLed(name, r, func(s *span) error {
		if err := rt.tr.lead(name, s.ref, false); err != nil {
			return err
		}
		rt.lead(s)
		return nil
	})
}

// eachLed calls fn with the span of every incarnation the store leads at
// this point of r, until fn fails.
func (rt *Router) eachLed(name string, r *storefile.Reader, fn func(*span) error) error {
	var err error
	r.EachLeader(func(inc storefile.Incarnation) {
		var s *span
		if err == nil {
			if s, err = rt.spanOf(name, inc); err == nil {
				err = fn(s)
			}
		}
	})
	return err
}

// leaders starts every range's batch with the incarnations the store leads
// over it (in region id order).
func (rt *Router) leaders(name string, r *storefile.Reader, batch func(uint64) *Batch) error {
	byRange := map[uint64][]Ref{}
	err := rt.eachLed(name, r, func(s *span) error {
		for _, id := range s.ranges {
			byRange[id] = append(byRange[id], s.ref)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range rt.table.Ranges() {
		refs := byRange[r.ID]
		slices.SortFunc(refs, func(a, b Ref) int { return cmp.Compare(a.RegionID, b.RegionID) })
		b := batch(r.ID)
		b.Events = append(b.Events, Event{Kind: KindLeaders, Refs: refs})
	}
	return nil
}

func (rt *Router) toOverlapping(s *span, ev Event, batch func(uint64) *Batch) {
	for _, id := range s.ranges {
		b := batch(id)
		b.Events = append(b.Events, ev)
	}
}

func (rt *Router) regionChange(name string, rec storefile.Record, batch func(uint64) *Batch) error {
	rc := rec.RegionChange
	s, err := rt.spanOf(name, rec.Incarnation)
	if err != nil {
		return err
	}
	ev := Event{Inc: s.ref, Start: s.start, End: s.end}
	switch {
	case rc.Kind == formatv1.RegionChange_KIND_START:
		if err := rt.tr.lead(name, s.ref, true); err != nil {
			return err
		}
		rt.lead(s)
		ev.Kind = KindRegionStart
		for _, p := range rc.Predecessors {
			ev.Preds = append(ev.Preds, Ref{RegionID: p.RegionId, Version: p.Version, Term: p.Term})
		}
	case rc.Reason == formatv1.RegionChange_REASON_TAKEOVER:
		// On behalf of another store's incarnation: nothing this stream
		// led ends.
		ev.Kind, ev.Ts = KindRegionEnd, rc.ResolvedTs
		ev.TakeoverStore, ev.TakeoverSeq = rc.Takeover.GetStoreId(), rc.Takeover.GetThroughSeq()
	default:
		if err := rt.tr.resolve(name, s.ref, rc.ResolvedTs, true); err != nil {
			return err
		}
		rt.unlead(s)
		ev.Kind, ev.Ts = KindRegionEnd, rc.ResolvedTs
	}
	rt.toOverlapping(s, ev, batch)
	return nil
}

// maxFreeArrays bounds the event arrays a Router holds for its next files
// (a file makes one batch per range it touches).
const maxFreeArrays = 256

// Recycle gives the event arrays of batches Route returned back to the
// Router, and the arrays the file's records were decoded into (the rows
// the events point to) to its stream, for the files after: call it once
// nothing reads the batches any more (a dispatcher does once their events
// are encoded), before the next Route. The batches are emptied.
func (rt *Router) Recycle(batches map[uint64]*Batch) {
	rt.stream.Recycle()
	for _, b := range batches {
		if cap(b.Events) > 0 && len(rt.free) < maxFreeArrays {
			clear(b.Events)
			rt.free = append(rt.free, b.Events[:0])
		}
		b.Events = nil
	}
}

// ledSpan is the span of the incarnation the stream leads for regionID
// (the reader checked that it leads one).
func (rt *Router) ledSpan(name string, r *storefile.Reader, regionID uint64) (*span, error) {
	sref, start, end, ok := r.LeaderKeys(regionID)
	if !ok {
		return nil, fmt.Errorf("%s: region %d is not led here", name, regionID)
	}
	ref := Ref(sref)
	// A store's files name the same led regions over and over (a row
	// event per run of rows): their spans are kept, each checked against
	// the incarnation and keys the store leads now.
	if c, ok := rt.spans[regionID]; ok && c.s.ref == ref && bytes.Equal(c.rawStart, start) && bytes.Equal(c.rawEnd, end) {
		return c.s, nil
	}
	s, err := rt.spanOfKeys(name, ref, start, end)
	if err != nil {
		return nil, err
	}
	if len(rt.spans) >= 2*r.Leaders()+1024 {
		clear(rt.spans) // regions no longer led: start over
	}
	rt.spans[regionID] = ledSpanCache{s: s, rawStart: start, rawEnd: end}
	return s, nil
}

// ledSpanCache is a led region's span and the encoded keys it was made of
// (the reader's, unchanged while the incarnation is led).
type ledSpanCache struct {
	s                *span
	rawStart, rawEnd []byte
}

func (rt *Router) event(name string, r *storefile.Reader, ev *cdcpb.ChangeDataEvent, batch func(uint64) *Batch) error {
	for _, e := range ev.Events {
		switch x := e.Event.(type) {
		case *cdcpb.Event_Entries_:
			s, err := rt.ledSpan(name, r, e.RegionId)
			if err != nil {
				return err
			}
			for _, row := range x.Entries.GetEntries() {
				if !s.contains(row.Key) {
					return fmt.Errorf("%s: row %x of region %d lies outside the region [%x, %x)", name, row.Key, e.RegionId, s.start, s.end)
				}
				b := batch(rt.table.Lookup(row.Key).ID)
				b.Events = append(b.Events, Event{Kind: KindRow, Row: row, Inc: s.ref})
			}
		case *cdcpb.Event_ResolvedTs:
			s, err := rt.ledSpan(name, r, e.RegionId)
			if err != nil {
				return err
			}
			if err := rt.tr.resolve(name, s.ref, x.ResolvedTs, false); err != nil {
				return err
			}
			rt.toOverlapping(s, Event{Kind: KindResolved, Refs: []Ref{s.ref}, Ts: x.ResolvedTs}, batch)
		}
	}
	rts := ev.ResolvedTs
	if rts == nil {
		return nil
	}
	clear(rt.resolved)
	for _, id := range rts.Regions {
		s, err := rt.ledSpan(name, r, id)
		if err != nil {
			return err
		}
		if err := rt.tr.resolve(name, s.ref, rts.Ts, false); err != nil {
			return err
		}
		for _, rid := range s.ranges {
			rt.resolved[rid] = append(rt.resolved[rid], s.ref)
		}
	}
	for rid, refs := range rt.resolved {
		b := batch(rid)
		b.Events = append(b.Events, Event{Kind: KindResolved, Refs: refs, Ts: rts.Ts})
	}
	return nil
}

// leaderResolved routes a LeaderResolvedTs to every range a led incarnation
// overlaps, each with the excepted incarnations that overlap it: O(ranges +
// exceptions), however many regions the store leads.
func (rt *Router) leaderResolved(name string, r *storefile.Reader, lr *formatv1.LeaderResolvedTs, batch func(uint64) *Batch) error {
	if err := rt.tr.leaderResolved(name, lr.Ts); err != nil {
		return err
	}
	clear(rt.resolved)
	for _, id := range lr.ExceptRegions {
		s, err := rt.ledSpan(name, r, id)
		if err != nil {
			return err
		}
		for _, rid := range s.ranges {
			rt.resolved[rid] = append(rt.resolved[rid], s.ref)
		}
	}
	for rid := range rt.count {
		b := batch(rid)
		b.Events = append(b.Events, Event{Kind: KindLeaderResolved, Refs: rt.resolved[rid], Ts: lr.Ts})
	}
	return nil
}

func refOf(inc storefile.Incarnation) Ref {
	return Ref{RegionID: inc.Region.Id, Version: inc.Region.GetRegionEpoch().GetVersion(), Term: inc.Term}
}
