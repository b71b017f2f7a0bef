package route

import (
	"bytes"
	"fmt"
	"sort"
)

// Range is one range of a tenant's key space: [Start, End), End nil = unbounded.
type Range struct {
	ID         uint64
	Start, End []byte
}

// Table is an immutable, sorted set of ranges tiling the key space.
type Table struct {
	ranges []Range
}

// NewTable checks that ranges tile the key space without gap or overlap.
func NewTable(ranges []Range) (*Table, error) {
	rs := append([]Range(nil), ranges...)
	sort.Slice(rs, func(i, j int) bool { return bytes.Compare(rs[i].Start, rs[j].Start) < 0 })
	var next []byte
	for i, r := range rs {
		if !bytes.Equal(r.Start, next) {
			return nil, fmt.Errorf("route table: gap or overlap at %x (range %d starts at %x)", next, r.ID, r.Start)
		}
		if len(r.End) == 0 && i != len(rs)-1 {
			return nil, fmt.Errorf("route table: range %d is unbounded but not the last", r.ID)
		}
		if len(r.End) > 0 && bytes.Compare(r.Start, r.End) >= 0 {
			return nil, fmt.Errorf("route table: range %d is empty or reversed", r.ID)
		}
		next = r.End
	}
	if len(rs) == 0 || len(next) != 0 {
		return nil, fmt.Errorf("route table: ranges do not cover the key space to the end")
	}
	return &Table{ranges: rs}, nil
}

// Ranges lists the ranges in key order.
func (t *Table) Ranges() []Range { return t.ranges }

// Lookup returns the range holding key.
func (t *Table) Lookup(key []byte) *Range {
	i := sort.Search(len(t.ranges), func(i int) bool { return bytes.Compare(t.ranges[i].Start, key) > 0 })
	return &t.ranges[i-1] // ranges[0].Start is empty, so i >= 1
}

// Overlapping calls fn for each range overlapping [start, end), in key order.
func (t *Table) Overlapping(start, end []byte, fn func(*Range)) {
	i := sort.Search(len(t.ranges), func(i int) bool { return bytes.Compare(t.ranges[i].Start, start) > 0 }) - 1
	for ; i < len(t.ranges); i++ {
		r := &t.ranges[i]
		if len(end) > 0 && bytes.Compare(r.Start, end) >= 0 {
			return
		}
		if len(r.End) == 0 || bytes.Compare(start, r.End) < 0 {
			fn(r)
		}
	}
}
