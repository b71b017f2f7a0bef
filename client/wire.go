package client

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

// pullCodec decodes the pull responses (PullTableResponse, PullDBResponse,
// PullTenantResponse: `repeated PullEvent events = 1`) into the same
// generated messages proto.Unmarshal makes, without its per-field
// machinery: the message's bytes are copied once (gRPC reuses its
// buffers) and the rows' keys and values point into that copy, and a
// message's events, their oneof wrappers and their rows are carved from
// one array each instead of three allocations per row. Anything it does
// not read exactly as proto.Unmarshal would — a DDL event, a field it does
// not know (a newer server), a field repeated where the oneof or a merge
// would matter, bytes that do not parse — goes to proto.Unmarshal whole,
// so what a caller gets is always proto.Unmarshal's (TestPullCodecIsProtos,
// FuzzPullCodec). Requests are encoded by the proto codec.
//
// A consumer keeping one event of a message keeps that message's arrays
// and bytes alive with it.
type pullCodec struct{ proto encoding.CodecV2 }

func newPullCodec() pullCodec { return pullCodec{proto: encoding.GetCodecV2("proto")} }

// callOption makes a pull stream's responses decode with c.
func (c pullCodec) callOption() grpc.CallOption { return grpc.ForceCodecV2(c) }

// PullDecoding is a call option for the generated PullTable, PullDB and
// PullTenant calls of a caller that uses the API directly rather than
// Client.Pull (which sets it itself): the responses are decoded into the
// same generated messages as by proto.Unmarshal, at about half the CPU
// and six allocations a message instead of five per row
// (BenchmarkPullCodec).
func PullDecoding() grpc.CallOption { return newPullCodec().callOption() }

// Name is the proto codec's: the content subtype stays "proto".
func (c pullCodec) Name() string { return c.proto.Name() }

func (c pullCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c pullCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var events *[]*apiv1.PullEvent
	switch m := v.(type) {
	case *apiv1.PullTableResponse:
		events = &m.Events
	case *apiv1.PullDBResponse:
		events = &m.Events
	case *apiv1.PullTenantResponse:
		events = &m.Events
	default:
		return c.proto.Unmarshal(data, v)
	}
	b := data.Materialize()
	if evs, ok := decodeEvents(b); ok {
		*events = evs
		return nil
	}
	return proto.Unmarshal(b, v.(proto.Message))
}

// Field numbers of api.proto.
const (
	fRespEvents                                    = 1
	fEvRow, fEvResolved                            = 1, 2
	fRowTable, fRowCommit, fRowStart, fRowOp       = 1, 2, 3, 4
	fRowKey, fRowValue, fRowOld, fRowSchemaVersion = 5, 6, 7, 8
	fResolvedTs                                    = 1
)

// decodeEvents reads a pull response's events; ok is false for anything
// it leaves to proto.Unmarshal.
func decodeEvents(b []byte) ([]*apiv1.PullEvent, bool) {
	// Count the events and their kinds first: one array of each.
	var n, rows, resolved int
	for p := b; len(p) > 0; {
		num, typ, _, v, rest, ok := field(p)
		if !ok || num != fRespEvents || typ != protowire.BytesType {
			return nil, false
		}
		p = rest
		enum, etyp, _, _, erest, ok := field(v)
		if !ok || len(erest) != 0 || etyp != protowire.BytesType {
			return nil, false // not exactly one oneof field (or a DDL: below)
		}
		switch enum {
		case fEvRow:
			rows++
		case fEvResolved:
			resolved++
		default:
			return nil, false
		}
		n++
	}
	var (
		out     = make([]*apiv1.PullEvent, n)
		evs     = make([]apiv1.PullEvent, n)
		rowWrap = make([]apiv1.PullEvent_Row, rows)
		rowMsgs = make([]apiv1.RowChange, rows)
		resWrap = make([]apiv1.PullEvent_Resolved, resolved)
		resMsgs = make([]apiv1.Resolved, resolved)
	)
	ri, si := 0, 0 // the next row and resolved slots
	for i, p := 0, b; len(p) > 0; i++ {
		_, _, _, v, rest, _ := field(p) // read whole above
		p = rest
		enum, _, _, msg, _, _ := field(v)
		ev := &evs[i]
		out[i] = ev
		if enum == fEvRow {
			r := &rowMsgs[ri]
			if !decodeRow(r, msg) {
				return nil, false
			}
			rowWrap[ri].Row = r
			ev.Event = &rowWrap[ri]
			ri++
			continue
		}
		r := &resMsgs[si]
		for q := msg; len(q) > 0; {
			num, typ, u, _, rest, ok := field(q)
			if !ok || num != fResolvedTs || typ != protowire.VarintType {
				return nil, false
			}
			q = rest
			r.Ts = u
		}
		resWrap[si].Resolved = r
		ev.Event = &resWrap[si]
		si++
	}
	return out, true
}

// decodeRow reads a RowChange; false for a field it does not know.
func decodeRow(r *apiv1.RowChange, b []byte) bool {
	for len(b) > 0 {
		num, typ, u, v, rest, ok := field(b)
		if !ok {
			return false
		}
		b = rest
		if typ == protowire.VarintType {
			switch num {
			case fRowTable:
				r.TableId = int64(u)
			case fRowCommit:
				r.CommitTs = u
			case fRowStart:
				r.StartTs = u
			case fRowOp:
				r.Op = apiv1.Op(int32(u))
			case fRowSchemaVersion:
				r.SchemaVersion = int64(u)
			default:
				return false
			}
			continue
		}
		if typ != protowire.BytesType {
			return false
		}
		switch num {
		case fRowKey:
			r.Key = v
		case fRowValue:
			r.Value = v
		case fRowOld:
			r.OldValue = v
		default:
			return false
		}
	}
	return true
}

// field reads the field at the start of b: a varint's value in u or a
// length-delimited field's value (capped at its length) in v, and the rest
// of b; ok is false for other wire types and malformed bytes.
func field(b []byte) (num protowire.Number, typ protowire.Type, u uint64, v, rest []byte, ok bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, 0, nil, nil, false
	}
	b = b[n:]
	switch typ {
	case protowire.VarintType:
		x, m := protowire.ConsumeVarint(b)
		if m < 0 {
			return 0, 0, 0, nil, nil, false
		}
		return num, typ, x, nil, b[m:], true
	case protowire.BytesType:
		x, m := protowire.ConsumeBytes(b)
		if m < 0 {
			return 0, 0, 0, nil, nil, false
		}
		return num, typ, 0, b[m-len(x) : m : m], b[m:], true
	}
	return 0, 0, 0, nil, nil, false
}
