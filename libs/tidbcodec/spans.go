package tidbcodec

import "math"

// Span is the half-open key range [Start, End). An empty End means no upper
// bound.
type Span struct {
	Start, End []byte
}

// TableSpan is every key of the table: [t{id}, t{id+1}). For the largest id
// the end is the first key after the prefix ("u"), as id+1 does not exist.
func TableSpan(tableID int64) Span {
	start := TablePrefix(tableID)
	if tableID == math.MaxInt64 {
		return Span{Start: start, End: PrefixEnd(start)}
	}
	return Span{Start: start, End: TablePrefix(tableID + 1)}
}

// TableRecordSpan is the table's rows only, [t{id}_r, t{id}_s): the span a
// change stream subscribes to, leaving index entries out as TiCDC does.
func TableRecordSpan(tableID int64) Span {
	start := TableRecordPrefix(tableID)
	return Span{Start: start, End: PrefixEnd(start)}
}

// TableIndexSpan is the entries of one index: [t{id}_i{idx}, t{id}_i{idx+1}).
func TableIndexSpan(tableID, indexID int64) Span {
	start := EncodeIndexPrefix(tableID, indexID)
	return Span{Start: start, End: PrefixEnd(start)}
}

// Contains reports whether key lies in the span.
func (s Span) Contains(key []byte) bool {
	return string(key) >= string(s.Start) && (len(s.End) == 0 || string(key) < string(s.End))
}

// PrefixEnd returns the smallest key greater than every key starting with
// prefix, or nil (no upper bound) when prefix is empty or all 0xFF.
func PrefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xFF {
			end := append([]byte(nil), prefix[:i+1]...)
			end[i]++
			return end
		}
	}
	return nil
}
