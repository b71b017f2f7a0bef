// Package recycle holds the one operation the free lists of large slices
// share (the sorter's index arrays, the pool reader's row slices): take the
// best-fitting slice out of a list.
package recycle

// Smallest removes from list and returns the slice of least capacity at
// least least and, when most > 0, at most most; ok is false when none is.
// The list's order is not kept (the last slice takes the removed one's
// place).
func Smallest[E any](list *[][]E, least, most int) (s []E, ok bool) {
	best := -1
	for i, c := range *list {
		if cap(c) >= least && (most <= 0 || cap(c) <= most) && (best < 0 || cap(c) < cap((*list)[best])) {
			best = i
		}
	}
	if best < 0 {
		return nil, false
	}
	l := *list
	s = l[best]
	last := len(l) - 1
	l[best], l[last] = l[last], nil
	*list = l[:last]
	return s, true
}
