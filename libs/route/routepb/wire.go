package routepb

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tistream/tistream/libs/formats/pbwire"
	"github.com/tistream/tistream/libs/recycle"
	"github.com/tistream/tistream/libs/route"
	sorterv1 "github.com/tistream/tistream/proto/gen/go/tistream/sorter/v1"
)

// The Ingest hop's requests are the dispatcher's and the sorter's largest
// messages: every row event of every store file passes through one. Built
// as generated messages they cost three objects per event to encode and,
// decoded by the generated code, an object and a copy per key and value
// (a quarter of the whole fleet's CPU went into that hop, counting the
// collector's work on the objects). Request and Received are the same
// sorterv1.IngestRequest on the wire, written from and read into routed
// events directly; the wire format (proto/tistream/sorter/v1/sorter.proto)
// does not change, so either side talks to the other's generated code
// (tests pin the encoder's bytes to proto.Marshal's and the decoder's
// results to proto.Unmarshal's, fuzzed).

// Field numbers of sorter.proto.
const (
	fReqTenant, fReqStore, fReqSeq, fReqMaxTs, fReqBatches, fReqDispatcher = 1, 2, 3, 4, 5, 6
	fBatchRange, fBatchEpoch, fBatchEvents, fBatchPrevSeq                  = 1, 2, 3, 4
	fEvKind, fEvRow, fEvInc, fEvStart, fEvEnd, fEvPreds, fEvTs, fEvRefs    = 1, 2, 3, 4, 5, 6, 7, 8
	fEvTakeoverStore, fEvTakeoverSeq                                       = 9, 10
	fIncRegion, fIncVersion, fIncTerm                                      = 1, 2, 3
	fRowType, fRowOp, fRowKey, fRowValue, fRowOld                          = 1, 2, 3, 4, 5
	fRowStart, fRowCommit, fRowGeneration                                  = 6, 7, 8
)

// Events is a range batch's events in their wire form (the RangeBatch's
// events entries), encoded once and placed in any request that carries
// the batch.
type Events struct {
	b    []byte
	Rows int // row events among them
}

// EncodeEvents encodes evs as ToProto's messages would be on the wire.
func EncodeEvents(evs []route.Event) Events {
	est := 0
	for i := range evs {
		est += estimate(&evs[i])
	}
	e := Events{b: eventBytes.Get(est)[:0]}
	for i := range evs {
		ev := &evs[i]
		if ev.Kind == route.KindRow {
			e.Rows++
		}
		n, rowN := eventSize(ev)
		e.b = protowire.AppendTag(e.b, fBatchEvents, protowire.BytesType)
		e.b = protowire.AppendVarint(e.b, uint64(n))
		e.b = appendEvent(e.b, ev, rowN)
	}
	return e
}

// estimate is about an event's encoded size, at least what most take
// (the buffer grows past it if needed): its bytes and room for the
// fields around them.
func estimate(ev *route.Event) int {
	n := 48 + len(ev.Start) + len(ev.End) + 24*(len(ev.Refs)+len(ev.Preds))
	if r := ev.Row; r != nil {
		n += len(r.Key) + len(r.Value) + len(r.OldValue)
	}
	return n
}

// Len is the events' encoded size in bytes.
func (e Events) Len() int { return len(e.b) }

// eventBytes holds encoded events handed back (Request.Release) for the
// next batches' encoding.
var eventBytes = &recycle.List[byte]{MaxSlices: 256, MaxBytes: 32 << 20}

// Release hands the request's encoded events back for later batches (a
// dispatcher does once the request is sent: the codec copied them into
// the message's buffer). Only for a request whose Events are in no other
// request that may still be sent; r's batches are emptied.
func (r *Request) Release() {
	for i := range r.Batches {
		b := r.Batches[i].Events.b
		recycle.Poison(b)
		eventBytes.Put(b[:0])
		r.Batches[i].Events = Events{}
	}
}

// Request is an IngestRequest to send: its batches' events already
// encoded. It is what a gRPC codec that knows it (libs/grpcx) writes as
// the message's bytes.
type Request struct {
	TenantID, StoreID, Seq, MaxTs uint64
	Dispatcher                    string
	Batches                       []Batch
}

// Batch is one RangeBatch of a Request.
type Batch struct {
	RangeID, RangeEpoch, PrevSeq uint64
	Events                       Events
}

// WireSize is the request's encoded size.
func (r *Request) WireSize() int {
	n := pbwire.SizeUint(fReqTenant, r.TenantID) + pbwire.SizeUint(fReqStore, r.StoreID) + pbwire.SizeUint(fReqSeq, r.Seq) + pbwire.SizeUint(fReqMaxTs, r.MaxTs)
	for i := range r.Batches {
		n += pbwire.SizeField(fReqBatches, r.Batches[i].size())
	}
	if r.Dispatcher != "" {
		n += pbwire.SizeField(fReqDispatcher, len(r.Dispatcher))
	}
	return n
}

func (b *Batch) size() int {
	return pbwire.SizeUint(fBatchRange, b.RangeID) + pbwire.SizeUint(fBatchEpoch, b.RangeEpoch) + len(b.Events.b) + pbwire.SizeUint(fBatchPrevSeq, b.PrevSeq)
}

// AppendWire appends the request's encoding: the bytes proto.Marshal gives
// for the same request built of generated messages.
func (r *Request) AppendWire(b []byte) []byte {
	b = pbwire.AppendUint(b, fReqTenant, r.TenantID)
	b = pbwire.AppendUint(b, fReqStore, r.StoreID)
	b = pbwire.AppendUint(b, fReqSeq, r.Seq)
	b = pbwire.AppendUint(b, fReqMaxTs, r.MaxTs)
	for i := range r.Batches {
		bt := &r.Batches[i]
		b = protowire.AppendTag(b, fReqBatches, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(bt.size()))
		b = pbwire.AppendUint(b, fBatchRange, bt.RangeID)
		b = pbwire.AppendUint(b, fBatchEpoch, bt.RangeEpoch)
		b = append(b, bt.Events.b...)
		b = pbwire.AppendUint(b, fBatchPrevSeq, bt.PrevSeq)
	}
	if r.Dispatcher != "" {
		b = protowire.AppendTag(b, fReqDispatcher, protowire.BytesType)
		b = protowire.AppendString(b, r.Dispatcher)
	}
	return b
}

// kindToWire numbers route's kinds as sorter.proto does (ToProto's
// switch); a kind outside it is left unspecified, as there.
func kindToWire(k route.Kind) sorterv1.Event_Kind {
	switch k {
	case route.KindRow:
		return sorterv1.Event_KIND_ROW
	case route.KindRegionStart:
		return sorterv1.Event_KIND_REGION_START
	case route.KindRegionEnd:
		return sorterv1.Event_KIND_REGION_END
	case route.KindResolved:
		return sorterv1.Event_KIND_RESOLVED
	case route.KindLeaderResolved:
		return sorterv1.Event_KIND_LEADER_RESOLVED
	case route.KindLeaders:
		return sorterv1.Event_KIND_LEADERS
	}
	return sorterv1.Event_KIND_UNSPECIFIED
}

// eventSize is the size of ev's Event message, and of its row's (0 if it
// carries none); the fields each kind carries are ToProto's.
func eventSize(ev *route.Event) (n, rowN int) {
	k := kindToWire(ev.Kind)
	n = pbwire.SizeUint(fEvKind, uint64(k)) + pbwire.SizeField(fEvInc, refSize(ev.Inc)) + pbwire.SizeUint(fEvTs, ev.Ts)
	switch k {
	case sorterv1.Event_KIND_ROW:
		if ev.Row != nil {
			rowN = rowSize(ev.Row)
			n += pbwire.SizeField(fEvRow, rowN)
		}
	case sorterv1.Event_KIND_REGION_START:
		n += pbwire.SizeBytes(fEvStart, ev.Start) + pbwire.SizeBytes(fEvEnd, ev.End) + refsSize(fEvPreds, ev.Preds)
	case sorterv1.Event_KIND_REGION_END:
		n += pbwire.SizeBytes(fEvStart, ev.Start) + pbwire.SizeBytes(fEvEnd, ev.End) + pbwire.SizeUint(fEvTakeoverStore, ev.TakeoverStore) + pbwire.SizeUint(fEvTakeoverSeq, ev.TakeoverSeq)
	case sorterv1.Event_KIND_RESOLVED, sorterv1.Event_KIND_LEADER_RESOLVED, sorterv1.Event_KIND_LEADERS:
		n += refsSize(fEvRefs, ev.Refs)
	}
	return n, rowN
}

// appendEvent appends ev's Event message, rowN its row's size.
func appendEvent(b []byte, ev *route.Event, rowN int) []byte {
	k := kindToWire(ev.Kind)
	b = pbwire.AppendUint(b, fEvKind, uint64(k))
	if k == sorterv1.Event_KIND_ROW && ev.Row != nil {
		b = protowire.AppendTag(b, fEvRow, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(rowN))
		b = appendRow(b, ev.Row)
	}
	b = appendRef(b, fEvInc, ev.Inc) // always present, as ToProto sets it
	region := k == sorterv1.Event_KIND_REGION_START || k == sorterv1.Event_KIND_REGION_END
	if region {
		b = pbwire.AppendBytes(b, fEvStart, ev.Start)
		b = pbwire.AppendBytes(b, fEvEnd, ev.End)
	}
	if k == sorterv1.Event_KIND_REGION_START {
		for _, p := range ev.Preds {
			b = appendRef(b, fEvPreds, p)
		}
	}
	b = pbwire.AppendUint(b, fEvTs, ev.Ts)
	switch k {
	case sorterv1.Event_KIND_RESOLVED, sorterv1.Event_KIND_LEADER_RESOLVED, sorterv1.Event_KIND_LEADERS:
		for _, r := range ev.Refs {
			b = appendRef(b, fEvRefs, r)
		}
	case sorterv1.Event_KIND_REGION_END:
		b = pbwire.AppendUint(b, fEvTakeoverStore, ev.TakeoverStore)
		b = pbwire.AppendUint(b, fEvTakeoverSeq, ev.TakeoverSeq)
	}
	return b
}

func rowSize(r *cdcpb.Event_Row) int {
	return pbwire.SizeUint(fRowType, uint64(rowTypeToWire(r.Type))) + pbwire.SizeUint(fRowOp, uint64(rowOpToWire(r.OpType))) +
		pbwire.SizeBytes(fRowKey, r.Key) + pbwire.SizeBytes(fRowValue, r.Value) + pbwire.SizeBytes(fRowOld, r.OldValue) +
		pbwire.SizeUint(fRowStart, r.StartTs) + pbwire.SizeUint(fRowCommit, r.CommitTs) + pbwire.SizeUint(fRowGeneration, r.Generation)
}

func appendRow(b []byte, r *cdcpb.Event_Row) []byte {
	b = pbwire.AppendUint(b, fRowType, uint64(rowTypeToWire(r.Type)))
	b = pbwire.AppendUint(b, fRowOp, uint64(rowOpToWire(r.OpType)))
	b = pbwire.AppendBytes(b, fRowKey, r.Key)
	b = pbwire.AppendBytes(b, fRowValue, r.Value)
	b = pbwire.AppendBytes(b, fRowOld, r.OldValue)
	b = pbwire.AppendUint(b, fRowStart, r.StartTs)
	b = pbwire.AppendUint(b, fRowCommit, r.CommitTs)
	return pbwire.AppendUint(b, fRowGeneration, r.Generation)
}

func refSize(r route.Ref) int {
	return pbwire.SizeUint(fIncRegion, r.RegionID) + pbwire.SizeUint(fIncVersion, r.Version) + pbwire.SizeUint(fIncTerm, r.Term)
}

func refsSize(num protowire.Number, rs []route.Ref) int {
	n := 0
	for _, r := range rs {
		n += pbwire.SizeField(num, refSize(r))
	}
	return n
}

// appendRef appends r as an Incarnation message in field num (present
// even when empty: a set message field is).
func appendRef(b []byte, num protowire.Number, r route.Ref) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(refSize(r)))
	b = pbwire.AppendUint(b, fIncRegion, r.RegionID)
	b = pbwire.AppendUint(b, fIncVersion, r.Version)
	return pbwire.AppendUint(b, fIncTerm, r.Term)
}

// Received is an IngestRequest as the sorter decodes it: the batches'
// events as routed events, whose rows' keys and values point into the
// request's bytes (which UnmarshalWire takes and keeps; region keys are
// copied, as a range keeps them for as long as the region lives).
//
// A Received whose user is done with it hands its memory back with
// Release (the sorter does, once a request is applied): the bytes a codec
// got from WireBuffer and the batches' arrays go to free lists, and the
// next requests are decoded into them instead of new memory.
type Received struct {
	TenantID, StoreID, Seq, MaxTs uint64
	Dispatcher                    string
	Batches                       []ReceivedBatch

	buf []byte // the request's bytes, from WireBuffer; nil: the caller's
}

// ReceivedBatch is one RangeBatch of a Received.
type ReceivedBatch struct {
	RangeID, RangeEpoch, PrevSeq uint64
	Events                       []route.Event
	// Err is why the events could not be made routed events (FromProto's
	// errors: an unknown kind, a row event without a row); the other
	// batches of the request are unaffected, as with FromProto.
	Err error

	// The arrays the events were decoded into (Events is nil after an
	// error), for Release.
	evs  []route.Event
	rows []cdcpb.Event_Row
}

// Free lists of what Received.Release hands back. A sorter decodes one
// request at a time per Ingest stream; the bounds hold a few dozen
// requests' worth, and a request far larger than the usual ones is left to
// the collector rather than held.
var (
	eventArrays = &recycle.List[route.Event]{MaxSlices: 64, MaxBytes: 32 << 20}
	rowArrays   = &recycle.List[cdcpb.Event_Row]{MaxSlices: 64, MaxBytes: 32 << 20}
	wireBufs    = &recycle.List[byte]{MaxSlices: 16, MaxBytes: 32 << 20}
)

// WireBuffer returns a buffer of n bytes for the request's encoding,
// which the caller fills and passes to UnmarshalWire (a codec copying a
// message out of its transport's buffers); Release hands it back.
func (r *Received) WireBuffer(n int) []byte {
	r.buf = wireBufs.Get(n)
	return r.buf
}

// Release hands the request's memory back for later requests: its bytes
// (if they came from WireBuffer) and its batches' arrays. Nothing of r —
// events, rows, keys, values — may be used afterwards; r is left empty.
// Everything a sorter keeps of a request it copies (its buffer's arena,
// the matcher, region keys copied by the decoder).
func (r *Received) Release() {
	for i := range r.Batches {
		b := &r.Batches[i]
		eventArrays.Put(b.evs)
		rowArrays.Put(b.rows)
	}
	if r.buf != nil {
		recycle.Poison(r.buf)
		wireBufs.Put(r.buf[:0])
	}
	*r = Received{}
}

// PoisonReleased has Release (of a Received or a Request) overwrite the
// bytes it hands back: recycle.SetPoison, which every owner of recycled
// bytes follows (TISTREAM_DEBUG_POISON=1 sets it too).
func PoisonReleased(on bool) { recycle.SetPoison(on) }

// GetTenantId is the request's tenant, as the generated message's getter
// names it (libs/auth reads it to check the caller's tenants).
func (r *Received) GetTenantId() uint64 { return r.TenantID }

// errWire is a malformed message: what proto.Unmarshal refuses.
var errWire = errors.New("malformed protobuf")

// UnmarshalWire decodes b, which it keeps (rows point into it): the
// caller must not change b afterwards. It fails where proto.Unmarshal of
// a sorterv1.IngestRequest fails; fields it does not know, or known ones
// of another wire type, are skipped as that does. A field repeated in one
// message follows protobuf's rules: the last scalar wins, messages merge.
func (r *Received) UnmarshalWire(b []byte) error {
	*r = Received{buf: r.buf}
	for len(b) > 0 {
		num, typ, v, rest, err := field(b)
		if err != nil {
			return fmt.Errorf("ingest request: %w", err)
		}
		b = rest
		switch {
		case num == fReqTenant && typ == protowire.VarintType:
			r.TenantID = v.u
		case num == fReqStore && typ == protowire.VarintType:
			r.StoreID = v.u
		case num == fReqSeq && typ == protowire.VarintType:
			r.Seq = v.u
		case num == fReqMaxTs && typ == protowire.VarintType:
			r.MaxTs = v.u
		case num == fReqDispatcher && typ == protowire.BytesType:
			if !utf8.Valid(v.b) {
				return fmt.Errorf("ingest request: dispatcher: invalid UTF-8")
			}
			r.Dispatcher = string(v.b)
		case num == fReqBatches && typ == protowire.BytesType:
			r.Batches = append(r.Batches, ReceivedBatch{})
			if err := r.Batches[len(r.Batches)-1].decode(v.b); err != nil {
				return fmt.Errorf("ingest request: batch %d: %w", len(r.Batches)-1, err)
			}
		}
	}
	return nil
}

func (bt *ReceivedBatch) decode(b []byte) error {
	// The events are counted first, then read into one array of events
	// and one of rows (a slot per event, used by row events), not an
	// object per event.
	var evs []route.Event
	var rows []cdcpb.Event_Row
	var err error
	for pass := 0; pass < 2; pass++ {
		n := 0
		for p := b; len(p) > 0; {
			num, typ, v, rest, ferr := field(p)
			if ferr != nil {
				return ferr
			}
			p = rest
			switch {
			case pass == 1 && num == fBatchRange && typ == protowire.VarintType:
				bt.RangeID = v.u
			case pass == 1 && num == fBatchEpoch && typ == protowire.VarintType:
				bt.RangeEpoch = v.u
			case pass == 1 && num == fBatchPrevSeq && typ == protowire.VarintType:
				bt.PrevSeq = v.u
			case num == fBatchEvents && typ == protowire.BytesType:
				if pass == 1 {
					e, derr := decodeEvent(&evs[n], &rows[n], v.b)
					if derr != nil {
						return fmt.Errorf("event %d: %w", n, derr)
					}
					if err == nil {
						err = e.route(&evs[n], &rows[n], n)
					}
				}
				n++
			}
		}
		if pass == 0 {
			evs, rows = eventArrays.Get(n), rowArrays.Get(n)
			bt.evs, bt.rows = evs, rows
		}
	}
	// An event that cannot be routed refuses the batch (FromProto's
	// errors), once the whole batch was read: a malformed event after it
	// fails the request, as it does for proto.Unmarshal.
	if err != nil {
		evs = nil
	}
	bt.Events, bt.Err = evs, err
	return nil
}

// eventHead is what decides how an Event message becomes a routed event:
// its kind, and its row's presence and enums (read in any field order).
type eventHead struct {
	kind          int32
	hasRow        bool
	rowType, opOf int32
}

// decodeEvent reads an Event message's fields into ev and row as they
// come; route then keeps what the kind carries.
func decodeEvent(ev *route.Event, row *cdcpb.Event_Row, b []byte) (eventHead, error) {
	var h eventHead
	for len(b) > 0 {
		num, typ, v, rest, err := field(b)
		if err != nil {
			return h, err
		}
		b = rest
		switch typ {
		case protowire.VarintType:
			switch num {
			case fEvKind:
				h.kind = int32(v.u)
			case fEvTs:
				ev.Ts = v.u
			case fEvTakeoverStore:
				ev.TakeoverStore = v.u
			case fEvTakeoverSeq:
				ev.TakeoverSeq = v.u
			}
		case protowire.BytesType:
			switch num {
			case fEvRow:
				h.hasRow = true // a second row message merges into the first
				if err := decodeRow(&h, row, v.b); err != nil {
					return h, fmt.Errorf("row: %w", err)
				}
			case fEvInc:
				if err := decodeRef(&ev.Inc, v.b); err != nil {
					return h, err
				}
			case fEvStart:
				ev.Start = v.b
			case fEvEnd:
				ev.End = v.b
			case fEvPreds, fEvRefs:
				var r route.Ref
				if err := decodeRef(&r, v.b); err != nil {
					return h, err
				}
				if num == fEvPreds {
					ev.Preds = append(ev.Preds, r)
				} else {
					ev.Refs = append(ev.Refs, r)
				}
			}
		}
	}
	return h, nil
}

// route makes ev, as read, the routed event FromProto makes of the same
// message: the fields its kind carries, region keys copied out of the
// request; i names the event in errors.
func (h eventHead) route(ev *route.Event, row *cdcpb.Event_Row, i int) error {
	got := *ev
	*ev = route.Event{Inc: got.Inc, Ts: got.Ts}
	switch sorterv1.Event_Kind(h.kind) {
	case sorterv1.Event_KIND_ROW:
		if !h.hasRow {
			return fmt.Errorf("event %d: row event without a row", i)
		}
		ev.Kind, ev.Row = route.KindRow, row
		row.Type, row.OpType = rowTypeOf(h.rowType), rowOpOf(h.opOf)
	case sorterv1.Event_KIND_REGION_START:
		ev.Kind, ev.Start, ev.End, ev.Preds = route.KindRegionStart, clone(got.Start), clone(got.End), got.Preds
	case sorterv1.Event_KIND_REGION_END:
		ev.Kind, ev.Start, ev.End = route.KindRegionEnd, clone(got.Start), clone(got.End)
		ev.TakeoverStore, ev.TakeoverSeq = got.TakeoverStore, got.TakeoverSeq
	case sorterv1.Event_KIND_RESOLVED:
		ev.Kind, ev.Refs = route.KindResolved, got.Refs
	case sorterv1.Event_KIND_LEADER_RESOLVED:
		ev.Kind, ev.Refs = route.KindLeaderResolved, got.Refs
	case sorterv1.Event_KIND_LEADERS:
		ev.Kind, ev.Refs = route.KindLeaders, got.Refs
	default:
		return fmt.Errorf("event %d: unknown kind %v", i, sorterv1.Event_Kind(h.kind))
	}
	return nil
}

// The row types and ops in both directions without a map lookup per row:
// sorter.proto numbers the types and ops it knows as kvproto does
// (PREWRITE..COMMITTED 1-4, PUT and DELETE 1-2), so within those the
// mapping is the number, and anything else is unspecified/unknown.
// TestWireEnumsAreTheTables holds them to typeToProto and opToProto.
const (
	lastRowType = int32(sorterv1.RowType_ROW_TYPE_COMMITTED)
	lastRowOp   = int32(sorterv1.RowOp_ROW_OP_DELETE)
)

func rowTypeOf(t int32) cdcpb.Event_LogType {
	if t < 1 || t > lastRowType {
		return cdcpb.Event_UNKNOWN
	}
	return cdcpb.Event_LogType(t)
}

func rowOpOf(op int32) cdcpb.Event_Row_OpType {
	if op < 1 || op > lastRowOp {
		return cdcpb.Event_Row_UNKNOWN
	}
	return cdcpb.Event_Row_OpType(op)
}

func rowTypeToWire(t cdcpb.Event_LogType) sorterv1.RowType {
	return sorterv1.RowType(rowTypeOf(int32(t)))
}

func rowOpToWire(op cdcpb.Event_Row_OpType) sorterv1.RowOp {
	return sorterv1.RowOp(rowOpOf(int32(op)))
}

// clone copies a region key out of the request's bytes (nil stays nil).
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

func decodeRow(h *eventHead, r *cdcpb.Event_Row, b []byte) error {
	for len(b) > 0 {
		num, typ, v, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		switch typ {
		case protowire.VarintType:
			switch num {
			case fRowType:
				h.rowType = int32(v.u)
			case fRowOp:
				h.opOf = int32(v.u)
			case fRowStart:
				r.StartTs = v.u
			case fRowCommit:
				r.CommitTs = v.u
			case fRowGeneration:
				r.Generation = v.u
			}
		case protowire.BytesType:
			switch num {
			case fRowKey:
				r.Key = v.b
			case fRowValue:
				r.Value = v.b
			case fRowOld:
				r.OldValue = v.b
			}
		}
	}
	return nil
}

func decodeRef(r *route.Ref, b []byte) error {
	for len(b) > 0 {
		num, typ, v, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		if typ == protowire.VarintType {
			switch num {
			case fIncRegion:
				r.RegionID = v.u
			case fIncVersion:
				r.Version = v.u
			case fIncTerm:
				r.Term = v.u
			}
		}
	}
	return nil
}

// value is a field's value: u for a varint, b for a length-delimited one
// (a slice of the message's bytes).
type value struct {
	u uint64
	b []byte
}

// field reads the field at the start of b; fields of other wire types
// than varint and bytes are skipped whole (their value is zero). Most
// fields of these messages have a one-byte tag (numbers 1-15) and a
// one-byte varint or length: those are read here, the rest by anyField.
func field(b []byte) (protowire.Number, protowire.Type, value, []byte, error) {
	if len(b) >= 2 && b[0] >= 1<<3 && b[0] < 0x80 && b[1] < 0x80 {
		num, typ := protowire.Number(b[0]>>3), protowire.Type(b[0]&7)
		switch {
		case typ == protowire.VarintType:
			return num, typ, value{u: uint64(b[1])}, b[2:], nil
		case typ == protowire.BytesType && len(b) >= 2+int(b[1]):
			n := 2 + int(b[1])
			return num, typ, value{b: b[2:n:n]}, b[n:], nil
		}
	}
	return anyField(b)
}

// anyField is field for every field.
func anyField(b []byte) (protowire.Number, protowire.Type, value, []byte, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, value{}, nil, fmt.Errorf("%w: %v", errWire, protowire.ParseError(n))
	}
	if num > protowire.MaxValidNumber {
		return 0, 0, value{}, nil, fmt.Errorf("%w: field number %d", errWire, num)
	}
	b = b[n:]
	var v value
	switch typ {
	case protowire.VarintType:
		v.u, n = protowire.ConsumeVarint(b)
	case protowire.BytesType:
		v.b, n = protowire.ConsumeBytes(b)
		if n >= 0 {
			// Capped at its length: an append to a row's key must not
			// write over the request's next bytes. Present and empty is
			// not nil, as proto.Unmarshal gives it.
			v.b = b[n-len(v.b) : n : n]
		}
	default:
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return 0, 0, value{}, nil, fmt.Errorf("%w: field %d: %v", errWire, num, protowire.ParseError(n))
	}
	return num, typ, v, b[n:], nil
}
