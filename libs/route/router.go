package route

import (
	"errors"
	"fmt"
	"io"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// Router routes the files of one store stream, read in order. It keeps the
// decoded incarnations and their key ranges between files, so a large
// store's header (every region it leads) costs a lookup per region rather
// than a decode. Not safe for concurrent use.
type Router struct {
	table *Table
	incs  *storefile.IncarnationCache
	spans map[Ref]*span
	gen   uint64
	tr    *Tracker
	own   bool // tr is the Router's own: commit it after each file
}

// NewRouter routes into table.
func NewRouter(table *Table) *Router {
	return &Router{table: table, incs: storefile.NewIncarnationCache(), spans: map[Ref]*span{}, tr: NewTracker(), own: true}
}

// NewTrackedRouter routes into table, checking the files against tr, which
// outlives the Router (a stream restarting from its checkpoint makes a new
// Router but keeps its Tracker). The caller calls tr.Commit after each file
// it accepts.
func NewTrackedRouter(table *Table, tr *Tracker) *Router {
	return &Router{table: table, incs: storefile.NewIncarnationCache(), spans: map[Ref]*span{}, tr: tr}
}

// Route decodes one store change file with a fresh router (no cache).
func Route(name string, data []byte, table *Table) (map[uint64]*Batch, *formatv1.StoreFileHeader, error) {
	return NewRouter(table).Route(name, data)
}

// span is an incarnation's raw key range and the ranges it overlaps.
type span struct {
	ref        Ref
	start, end []byte
	ranges     []uint64
	gen        uint64
}

func (s *span) contains(key []byte) bool {
	return string(key) >= string(s.start) && (len(s.end) == 0 || string(key) < string(s.end))
}

func (rt *Router) spanOf(inc storefile.Incarnation) (*span, error) {
	ref := refOf(inc)
	if s, ok := rt.spans[ref]; ok {
		s.gen = rt.gen
		return s, nil
	}
	start, err := tidbcodec.DecodeRegionKey(inc.Region.StartKey)
	if err != nil {
		return nil, fmt.Errorf("region %d start key: %w", ref.RegionID, err)
	}
	end, err := tidbcodec.DecodeRegionKey(inc.Region.EndKey)
	if err != nil {
		return nil, fmt.Errorf("region %d end key: %w", ref.RegionID, err)
	}
	s := &span{ref: ref, start: start, end: end, gen: rt.gen}
	rt.table.Overlapping(start, end, func(r *Range) { s.ranges = append(s.ranges, r.ID) })
	rt.spans[ref] = s
	return s, nil
}

// sweep forgets spans no file used recently.
func (rt *Router) sweep() {
	rt.gen++
	if rt.gen%16 != 0 {
		return
	}
	for k, s := range rt.spans {
		if rt.gen-s.gen > 16 {
			delete(rt.spans, k)
		}
	}
}

// Route decodes one store change file and splits its events per range, in
// stream order. Rows go to the range owning their key; region changes and
// resolved ts go to every range the region overlaps. Every range overlapped
// by a region the store leads gets a batch, empty or not, so it records the
// file's position.
func (rt *Router) Route(name string, data []byte) (_ map[uint64]*Batch, _ *formatv1.StoreFileHeader, err error) {
	rt.sweep()
	r, err := storefile.OpenCached(name, data, rt.incs)
	if err != nil {
		return nil, nil, err
	}
	h := r.Header()
	rt.tr.begin(h.Seq)
	if rt.own {
		defer func() {
			if err == nil {
				rt.tr.Commit()
			}
		}()
	}
	out := map[uint64]*Batch{}
	batch := func(id uint64) *Batch {
		b := out[id]
		if b == nil {
			b = &Batch{RangeID: id, Pos: Position{Store: h.StoreId, Seq: h.Seq}, MaxTs: h.MaxTs}
			out[id] = b
		}
		return b
	}
	spanOf := func(inc storefile.Incarnation) (*span, error) {
		s, err := rt.spanOf(inc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return s, nil
	}
	toOverlapping := func(s *span, ev Event) {
		for _, id := range s.ranges {
			b := batch(id)
			b.Events = append(b.Events, ev)
		}
	}
	for _, ri := range h.LeaderRegions {
		inc, err := storefile.DecodeIncarnationCached(ri, rt.incs)
		if err != nil {
			return nil, nil, err
		}
		s, err := spanOf(inc)
		if err != nil {
			return nil, nil, err
		}
		if err := rt.tr.lead(name, s.ref, false); err != nil {
			return nil, nil, err
		}
		for _, id := range s.ranges {
			batch(id)
		}
	}
	resolved := map[uint64][]Ref{} // per range, for the current ResolvedTs record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if rc := rec.RegionChange; rc != nil {
			s, err := spanOf(rec.Incarnation)
			if err != nil {
				return nil, nil, err
			}
			ev := Event{Inc: s.ref, Start: s.start, End: s.end}
			if rc.Kind == formatv1.RegionChange_KIND_START {
				if err := rt.tr.lead(name, s.ref, true); err != nil {
					return nil, nil, err
				}
				ev.Kind = KindRegionStart
				for _, p := range rc.Predecessors {
					ev.Preds = append(ev.Preds, Ref{RegionID: p.RegionId, Version: p.Version, Term: p.Term})
				}
			} else {
				ev.Kind, ev.Ts = KindRegionEnd, rc.ResolvedTs
				if rc.Reason == formatv1.RegionChange_REASON_TAKEOVER {
					// On behalf of another store's incarnation: nothing
					// this stream led ends.
					ev.TakeoverStore, ev.TakeoverSeq = rc.Takeover.GetStoreId(), rc.Takeover.GetThroughSeq()
				} else if err := rt.tr.resolve(name, s.ref, rc.ResolvedTs, true); err != nil {
					return nil, nil, err
				}
			}
			toOverlapping(s, ev)
			continue
		}
		for _, e := range rec.Event.Events {
			inc, _ := r.Leader(e.RegionId) // the reader checked the region is led
			switch x := e.Event.(type) {
			case *cdcpb.Event_Entries_:
				s, err := spanOf(inc)
				if err != nil {
					return nil, nil, err
				}
				for _, row := range x.Entries.GetEntries() {
					if !s.contains(row.Key) {
						return nil, nil, fmt.Errorf("%s: row %x of region %d lies outside the region [%x, %x)", name, row.Key, e.RegionId, s.start, s.end)
					}
					b := batch(rt.table.Lookup(row.Key).ID)
					b.Events = append(b.Events, Event{Kind: KindRow, Row: row, Inc: s.ref})
				}
			case *cdcpb.Event_ResolvedTs:
				s, err := spanOf(inc)
				if err != nil {
					return nil, nil, err
				}
				if err := rt.tr.resolve(name, s.ref, x.ResolvedTs, false); err != nil {
					return nil, nil, err
				}
				toOverlapping(s, Event{Kind: KindResolved, Refs: []Ref{s.ref}, Ts: x.ResolvedTs})
			}
		}
		if rts := rec.Event.ResolvedTs; rts != nil {
			clear(resolved)
			for _, id := range rts.Regions {
				inc, _ := r.Leader(id)
				s, err := spanOf(inc)
				if err != nil {
					return nil, nil, err
				}
				if err := rt.tr.resolve(name, s.ref, rts.Ts, false); err != nil {
					return nil, nil, err
				}
				for _, rid := range s.ranges {
					resolved[rid] = append(resolved[rid], s.ref)
				}
			}
			for rid, refs := range resolved {
				b := batch(rid)
				b.Events = append(b.Events, Event{Kind: KindResolved, Refs: refs, Ts: rts.Ts})
			}
		}
	}
	return out, h, nil
}

func refOf(inc storefile.Incarnation) Ref {
	return Ref{RegionID: inc.Region.Id, Version: inc.Region.GetRegionEpoch().GetVersion(), Term: inc.Term}
}
