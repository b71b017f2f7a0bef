package watermark

import "sort"

// Keys are held as strings: immutable, comparable with <, and one string can
// be shared by an entry and the incarnation whose range starts there, which
// matters at 270,000 regions.
//
// An end key "" means +infinity. That is unambiguous because a non-empty
// range [s, e) with a bounded e always has e > s >= "", so e is never "".

// endAfter reports whether key k lies before the end e.
func endAfter(e, k string) bool { return e == "" || k < e }

// minEnd returns the smaller of two end keys.
func minEnd(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	case a < b:
		return a
	}
	return b
}

// maxEnd returns the greater of two end keys.
func maxEnd(a, b string) string {
	if a == "" || b == "" {
		return ""
	}
	return max(a, b)
}

// keyRange is [start, end) with end "" = +infinity.
type keyRange struct {
	start, end string
}

func (r keyRange) empty() bool { return !endAfter(r.end, r.start) }

// intersect returns r ∩ o (possibly empty).
func (r keyRange) intersect(o keyRange) keyRange {
	return keyRange{start: max(r.start, o.start), end: minEnd(r.end, o.end)}
}

// normalize sorts ranges and merges overlapping or touching ones, dropping
// empty ones, so coverage checks are a single pass.
func normalize(rs []keyRange) []keyRange {
	out := rs[:0]
	for _, r := range rs {
		if !r.empty() {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	n := 0
	for _, r := range out {
		if n > 0 && (out[n-1].end == "" || r.start <= out[n-1].end) {
			// r starts at or before the previous end: they touch or overlap.
			out[n-1].end = maxEnd(out[n-1].end, r.end)
			continue
		}
		out[n] = r
		n++
	}
	return out[:n]
}

// covers reports whether normalized ranges rs cover all of r.
func covers(rs []keyRange, r keyRange) bool {
	for _, c := range rs {
		if c.start <= r.start && endAfter(c.end, r.start) {
			// c contains r.start; since rs is normalized, c is the only range
			// that can, so r is covered iff c reaches r's end.
			return c.end == "" || (r.end != "" && r.end <= c.end)
		}
	}
	return false
}

// subtract returns r minus every range in cut, as sorted disjoint ranges.
func subtract(r keyRange, cut []keyRange) []keyRange {
	out := []keyRange{r}
	for _, c := range cut {
		var next []keyRange
		for _, p := range out {
			i := p.intersect(c)
			if i.empty() {
				next = append(next, p)
				continue
			}
			if p.start < i.start {
				// Not via empty(): an end of "" would read as +infinity.
				next = append(next, keyRange{p.start, i.start})
			}
			if i.end != "" {
				if right := (keyRange{i.end, p.end}); !right.empty() {
					next = append(next, right)
				}
			}
		}
		out = next
	}
	return out
}
