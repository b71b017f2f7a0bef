package storefile

import (
	"github.com/pingcap/kvproto/pkg/cdcpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// A change data event record is most of a store file, and kvproto's
// generated Unmarshal makes four objects per row and copies every key and
// value (two thirds of the dispatcher's reading of files in fleet
// profiles). fastChangeDataEvent decodes the records producers write — row
// events, resolved-ts events, a ResolvedTs — into a few arrays per
// record, keys and values pointing into the record's bytes (the reader
// keeps its blocks for that: container.Reader.KeepBlocks). Anything else —
// admin, error or long-txn events, unknown fields, a field of an
// unexpected wire type, a oneof set twice, malformed bytes — is left to
// the generated Unmarshal, which decides: the result is always what it
// gives (FuzzChangeDataEvent holds the two equal).

// Field numbers of kvproto's cdcpb.proto.
const (
	fCDEEvents, fCDEResolvedTs                                    = 1, 2
	fEvRegion, fEvIndex, fEvRequest, fEvEntries, fEvResolvedTs    = 1, 2, 7, 3, 6
	fEntriesRows                                                  = 1
	fRowStartTs, fRowCommitTs, fRowType, fRowOpType, fRowKey      = 1, 2, 3, 4, 5
	fRowValue, fRowOldValue, fRowExpire, fRowSource, fRowGenerate = 6, 7, 8, 9, 10
	fRTsRegions, fRTsTs, fRTsRequest                              = 1, 2, 3
)

// changeDataEventOnly returns the change_data_event bytes of a StoreRecord
// that holds that field and nothing else (what every writer writes).
func changeDataEventOnly(raw []byte) ([]byte, bool) {
	num, typ, n := protowire.ConsumeTag(raw)
	if n < 0 || num != 1 || typ != protowire.BytesType {
		return nil, false
	}
	v, m := protowire.ConsumeBytes(raw[n:])
	if m < 0 || n+m != len(raw) {
		return nil, false
	}
	return v, true
}

// cdeShape counts what a record's arrays must hold.
type cdeShape struct{ events, entries, rows, resolved int }

// fastChangeDataEvent decodes b as cdcpb.ChangeDataEvent.Unmarshal would,
// or reports false for the generated code to do it.
func fastChangeDataEvent(b []byte, a *recordArena) (*cdcpb.ChangeDataEvent, bool) {
	var sh cdeShape
	var rts []byte
	haveRTs := false
	for p := b; len(p) > 0; {
		num, v, rest, ok := bytesField(p)
		if !ok {
			return nil, false
		}
		p = rest
		switch {
		case num == fCDEEvents:
			sh.events++
			if !countEvent(v, &sh) {
				return nil, false
			}
		case num == fCDEResolvedTs && !haveRTs:
			rts, haveRTs = v, true
		default:
			return nil, false
		}
	}
	out := &cdcpb.ChangeDataEvent{}
	if haveRTs {
		out.ResolvedTs = &cdcpb.ResolvedTs{}
		if !decodeResolvedTs(out.ResolvedTs, rts) {
			return nil, false
		}
	}
	if sh.events == 0 {
		return out, true
	}
	events, ptrs, entries, wraps, rows, rowPtrs, resolved := a.take(sh)
	i := 0
	for p := b; len(p) > 0; {
		num, v, rest, _ := bytesField(p) // as counted
		p = rest
		if num != fCDEEvents {
			continue
		}
		ev := &events[i]
		ptrs[i] = ev
		i++
		for q := v; len(q) > 0; {
			num, typ, n := protowire.ConsumeTag(q)
			q = q[n:]
			if typ == protowire.VarintType {
				x, m := protowire.ConsumeVarint(q)
				q = q[m:]
				switch num {
				case fEvRegion:
					ev.RegionId = x
				case fEvIndex:
					ev.Index = x
				case fEvRequest:
					ev.RequestId = x
				case fEvResolvedTs:
					resolved[0].ResolvedTs = x
					ev.Event = &resolved[0]
					resolved = resolved[1:]
				}
				continue
			}
			en, m := protowire.ConsumeBytes(q) // fEvEntries: the only other field counted
			q = q[m:]
			e := &entries[0]
			entries = entries[1:]
			n0 := 0
			for r := en; len(r) > 0; n0++ {
				_, row, rest, _ := bytesField(r)
				r = rest
				if !decodeRow(&rows[n0], row) {
					return nil, false
				}
				rowPtrs[n0] = &rows[n0]
			}
			if n0 > 0 {
				e.Entries = rowPtrs[:n0:n0]
				rows, rowPtrs = rows[n0:], rowPtrs[n0:]
			}
			wraps[0].Entries = e
			ev.Event = &wraps[0]
			wraps = wraps[1:]
		}
	}
	out.Events = ptrs
	return out, true
}

// countEvent checks an Event's fields and counts its rows: region, index
// and request id (varints), and one of entries or resolved ts.
func countEvent(b []byte, sh *cdeShape) bool {
	oneof := false
	return walk(b, func(num protowire.Number, _ uint64) bool {
		switch num {
		case fEvRegion, fEvIndex, fEvRequest:
			return true
		case fEvResolvedTs:
			if oneof {
				return false
			}
			oneof = true
			sh.resolved++
			return true
		}
		return false
	}, func(num protowire.Number, v []byte) bool {
		if num != fEvEntries || oneof {
			return false
		}
		oneof = true
		sh.entries++
		return walk(v, nil, func(num protowire.Number, _ []byte) bool {
			sh.rows++
			return num == fEntriesRows
		})
	})
}

// decodeRow reads a Row message into r (zero), keys and values pointing
// into b, capped at their length (walk's).
func decodeRow(r *cdcpb.Event_Row, b []byte) bool {
	return walk(b, func(num protowire.Number, x uint64) bool {
		switch num {
		case fRowStartTs:
			r.StartTs = x
		case fRowCommitTs:
			r.CommitTs = x
		case fRowType:
			r.Type = cdcpb.Event_LogType(x)
		case fRowOpType:
			r.OpType = cdcpb.Event_Row_OpType(x)
		case fRowExpire:
			r.ExpireTsUnixSecs = x
		case fRowSource:
			r.TxnSource = x
		case fRowGenerate:
			r.Generation = x
		default:
			return false
		}
		return true
	}, func(num protowire.Number, v []byte) bool {
		switch num {
		case fRowKey:
			r.Key = v
		case fRowValue:
			r.Value = v
		case fRowOldValue:
			r.OldValue = v
		default:
			return false
		}
		return true
	})
}

// decodeResolvedTs reads a ResolvedTs message (regions packed or not).
func decodeResolvedTs(rt *cdcpb.ResolvedTs, b []byte) bool {
	return walk(b, func(num protowire.Number, x uint64) bool {
		switch num {
		case fRTsRegions:
			rt.Regions = append(rt.Regions, x)
		case fRTsTs:
			rt.Ts = x
		case fRTsRequest:
			rt.RequestId = x
		default:
			return false
		}
		return true
	}, func(num protowire.Number, v []byte) bool {
		if num != fRTsRegions {
			return false
		}
		for len(v) > 0 {
			x, k := protowire.ConsumeVarint(v)
			if k < 0 {
				return false
			}
			v = v[k:]
			rt.Regions = append(rt.Regions, x)
		}
		return true
	})
}

// walk calls varint or bytes for each field of message b, in order, and
// stops at the first that refuses its field; a field of another wire type
// (or one whose function is nil), or malformed bytes, is refused too.
// Length-delimited values are capped at their length, and not nil when
// empty (as the generated code makes them).
func walk(b []byte, varint func(protowire.Number, uint64) bool, bytes func(protowire.Number, []byte) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && varint != nil:
			x, m := protowire.ConsumeVarint(b)
			if m < 0 || !varint(num, x) {
				return false
			}
			b = b[m:]
		case typ == protowire.BytesType && bytes != nil:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 || !bytes(num, b[m-len(v):m:m]) {
				return false
			}
			b = b[m:]
		default:
			return false
		}
	}
	return true
}

// bytesField reads a length-delimited field at the start of b.
func bytesField(b []byte) (protowire.Number, []byte, []byte, bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || typ != protowire.BytesType {
		return 0, nil, nil, false
	}
	v, m := protowire.ConsumeBytes(b[n:])
	if m < 0 {
		return 0, nil, nil, false
	}
	return num, v, b[n+m:], true
}
