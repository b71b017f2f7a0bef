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

// Route decodes one store change file and splits its events per range, in
// stream order. Rows go to the range owning their key; region changes and
// resolved ts go to every range the region overlaps. Ranges that receive
// nothing but are overlapped by a led region still get an (empty) batch so
// they record the file's position.
func Route(name string, data []byte, table *Table) (map[uint64]*Batch, *formatv1.StoreFileHeader, error) {
	r, err := storefile.Open(name, data)
	if err != nil {
		return nil, nil, err
	}
	h := r.Header()
	out := map[uint64]*Batch{}
	batch := func(id uint64) *Batch {
		b := out[id]
		if b == nil {
			b = &Batch{RangeID: id, Pos: Position{Store: h.StoreId, Seq: h.Seq}, MaxTs: h.MaxTs}
			out[id] = b
		}
		return b
	}
	spans := map[uint64]span{} // region id -> decoded range of the led incarnation
	regionSpan := func(inc storefile.Incarnation) (span, error) {
		if s, ok := spans[inc.Region.Id]; ok && s.ref == refOf(inc) {
			return s, nil
		}
		s, err := decodeSpan(inc)
		if err != nil {
			return s, fmt.Errorf("%s: region %d: %w", name, inc.Region.Id, err)
		}
		spans[inc.Region.Id] = s
		return s, nil
	}
	toOverlapping := func(s span, ev Event) {
		table.Overlapping(s.start, s.end, func(rg *Range) {
			b := batch(rg.ID)
			b.Events = append(b.Events, ev)
		})
	}
	for _, ri := range h.LeaderRegions {
		inc, _ := storefile.DecodeIncarnation(ri) // checked by Open
		s, err := regionSpan(inc)
		if err != nil {
			return nil, nil, err
		}
		table.Overlapping(s.start, s.end, func(rg *Range) { batch(rg.ID) })
	}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if rc := rec.RegionChange; rc != nil {
			s, err := regionSpan(rec.Incarnation)
			if err != nil {
				return nil, nil, err
			}
			ev := Event{Inc: s.ref, Start: s.start, End: s.end}
			if rc.Kind == formatv1.RegionChange_KIND_START {
				ev.Kind = KindRegionStart
				for _, p := range rc.Predecessors {
					ev.Preds = append(ev.Preds, Ref{RegionID: p.RegionId, Version: p.Version, Term: p.Term})
				}
			} else {
				ev.Kind, ev.Ts = KindRegionEnd, rc.ResolvedTs
			}
			toOverlapping(s, ev)
			continue
		}
		for _, e := range rec.Event.Events {
			switch x := e.Event.(type) {
			case *cdcpb.Event_Entries_:
				inc, _ := r.Leader(e.RegionId) // checked by Next
				s, err := regionSpan(inc)
				if err != nil {
					return nil, nil, err
				}
				for _, row := range x.Entries.GetEntries() {
					if !s.contains(row.Key) {
						return nil, nil, fmt.Errorf("%s: row %x of region %d lies outside the region [%x, %x)", name, row.Key, e.RegionId, s.start, s.end)
					}
					b := batch(table.Lookup(row.Key).ID)
					b.Events = append(b.Events, Event{Kind: KindRow, Row: row, Inc: s.ref})
				}
			case *cdcpb.Event_ResolvedTs:
				inc, _ := r.Leader(e.RegionId)
				s, err := regionSpan(inc)
				if err != nil {
					return nil, nil, err
				}
				toOverlapping(s, Event{Kind: KindResolved, Inc: s.ref, Ts: x.ResolvedTs})
			}
		}
		if rt := rec.Event.ResolvedTs; rt != nil {
			for _, id := range rt.Regions {
				inc, _ := r.Leader(id)
				s, err := regionSpan(inc)
				if err != nil {
					return nil, nil, err
				}
				toOverlapping(s, Event{Kind: KindResolved, Inc: s.ref, Ts: rt.Ts})
			}
		}
	}
	return out, h, nil
}

type span struct {
	ref        Ref
	start, end []byte
}

func (s span) contains(key []byte) bool {
	return string(key) >= string(s.start) && (len(s.end) == 0 || string(key) < string(s.end))
}

func refOf(inc storefile.Incarnation) Ref {
	return Ref{RegionID: inc.Region.Id, Version: inc.Region.GetRegionEpoch().GetVersion(), Term: inc.Term}
}

func decodeSpan(inc storefile.Incarnation) (span, error) {
	start, err := tidbcodec.DecodeRegionKey(inc.Region.StartKey)
	if err != nil {
		return span{}, fmt.Errorf("start key: %w", err)
	}
	end, err := tidbcodec.DecodeRegionKey(inc.Region.EndKey)
	if err != nil {
		return span{}, fmt.Errorf("end key: %w", err)
	}
	return span{ref: refOf(inc), start: start, end: end}, nil
}
