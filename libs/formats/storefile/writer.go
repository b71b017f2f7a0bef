package storefile

import (
	"fmt"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/tistream/tistream/libs/formats/container"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// Writer builds one store change file.
type Writer struct {
	c        *container.Writer
	header   *formatv1.StoreFileHeader
	rec      formatv1.StoreRecord
	change   formatv1.StoreRecord_RegionChange
	eventRe  formatv1.StoreRecord_ChangeDataEvent
	leaderRe formatv1.StoreRecord_LeaderResolvedTs
	buf      []byte
	rows     int
}

// NewWriter starts a file with the given header; it is checked as a reader
// would check it. Blocks are zstd-compressed.
func NewWriter(h *formatv1.StoreFileHeader) (*Writer, error) {
	return NewWriterOptions(h, container.Options{Codec: container.CodecZstd})
}

// NewWriterOptions is NewWriter with explicit container options.
func NewWriterOptions(h *formatv1.StoreFileHeader, opts container.Options) (*Writer, error) {
	if err := checkHeader(h); err != nil {
		return nil, fmt.Errorf("store file header: %w", err)
	}
	if err := checkFullList(h.LeaderRegions); err != nil {
		return nil, fmt.Errorf("store file header: %w", err)
	}
	w := &Writer{c: container.NewWriter(container.KindStoreChange, opts), header: h}
	if err := w.c.AppendMessage(h); err != nil {
		return nil, err
	}
	return w, nil
}

// AddEvent appends a cdcpb.ChangeDataEvent.
func (w *Writer) AddEvent(ev *cdcpb.ChangeDataEvent) error {
	n := ev.Size()
	if cap(w.buf) < n {
		w.buf = make([]byte, n)
	}
	b := w.buf[:n]
	if _, err := ev.MarshalToSizedBuffer(b); err != nil {
		return fmt.Errorf("marshal change data event: %w", err)
	}
	for _, e := range ev.Events {
		if en := e.GetEntries(); en != nil {
			w.rows += len(en.Entries)
		}
	}
	w.eventRe.ChangeDataEvent = b
	w.rec.Record = &w.eventRe
	return w.c.AppendMessage(&w.rec)
}

// AddLeaderResolved appends a format version 2 LeaderResolvedTs: every
// region the store leads at this point, except the listed ones, has
// resolved ts lr.Ts.
func (w *Writer) AddLeaderResolved(lr *formatv1.LeaderResolvedTs) error {
	w.leaderRe.LeaderResolvedTs = lr
	w.rec.Record = &w.leaderRe
	return w.c.AppendMessage(&w.rec)
}

// AddRegionChange appends the start or end of a region incarnation.
func (w *Writer) AddRegionChange(rc *formatv1.RegionChange) error {
	w.change.RegionChange = rc
	w.rec.Record = &w.change
	return w.c.AppendMessage(&w.rec)
}

// Rows is the number of row entries appended so far.
func (w *Writer) Rows() int { return w.rows }

// Size is roughly the number of bytes written so far (before compression of
// the open block).
func (w *Writer) Size() int { return w.c.Size() }

// Finish returns the encoded file.
func (w *Writer) Finish() ([]byte, error) { return w.c.Finish() }

// Grouping of rows into cdcpb messages, as TiKV batches them.
const (
	MaxRowsPerEvent   = 512
	MaxEventsPerBatch = 64
)

// AppendRow groups a file's rows as TiKV does: row joins last (the file's
// last message, when it carries rows) in its last event when that event is
// of the same region and not full, or in a new event of last while last has
// room. Otherwise AppendRow returns a new message holding the row, for the
// caller to append to the file; it returns nil when last took the row.
func AppendRow(last *cdcpb.ChangeDataEvent, regionID uint64, row *cdcpb.Event_Row) *cdcpb.ChangeDataEvent {
	msg, _ := AppendRowEvent(last, regionID, row)
	return msg
}

// AppendRowEvent is AppendRow that also returns the event it started for
// the row, nil when the row joined an existing event (a producer that
// numbers events, as TiKV's log index does, numbers that one).
func AppendRowEvent(last *cdcpb.ChangeDataEvent, regionID uint64, row *cdcpb.Event_Row) (*cdcpb.ChangeDataEvent, *cdcpb.Event) {
	if last != nil && last.ResolvedTs == nil && len(last.Events) > 0 {
		ev := last.Events[len(last.Events)-1]
		if en := ev.GetEntries(); en != nil && ev.RegionId == regionID && len(en.Entries) < MaxRowsPerEvent {
			en.Entries = append(en.Entries, row)
			return nil, nil
		}
		if len(last.Events) < MaxEventsPerBatch {
			ev := rowEvent(regionID, row)
			last.Events = append(last.Events, ev)
			return nil, ev
		}
	}
	ev := rowEvent(regionID, row)
	return &cdcpb.ChangeDataEvent{Events: []*cdcpb.Event{ev}}, ev
}

func rowEvent(regionID uint64, row *cdcpb.Event_Row) *cdcpb.Event {
	return &cdcpb.Event{RegionId: regionID,
		Event: &cdcpb.Event_Entries_{Entries: &cdcpb.Event_Entries{Entries: []*cdcpb.Event_Row{row}}}}
}
