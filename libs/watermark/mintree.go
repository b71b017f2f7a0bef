package watermark

import "math"

// minTree holds, per incarnation that owns entries, the smallest ts among
// its entries (inc.minTs), in a slot that never moves, and maintains the
// minimum over all slots in an implicit binary tree: vals[cap+s] is slot s,
// vals[i] = min(vals[2i], vals[2i+1]), vals[1] the minimum.
//
// Compared with a binary heap of incarnations it needs no back-pointer
// updates when items move (nothing moves), and an update climbs only while
// it changes the minimum of the subtree above: raising one incarnation's ts,
// the common case, usually stops after a level or two instead of sinking
// through log n levels of cache misses.
type minTree struct {
	vals []uint64
	cap  int
	used int     // slots handed out so far
	free []int32 // released slots
}

const noTs = math.MaxUint64

// min returns the smallest value, noTs when no slot is in use.
func (t *minTree) min() uint64 {
	if t.cap == 0 {
		return noTs
	}
	return t.vals[1]
}

func (t *minTree) alloc() int32 {
	if n := len(t.free); n > 0 {
		s := t.free[n-1]
		t.free = t.free[:n-1]
		return s
	}
	if t.used == t.cap {
		t.grow()
	}
	t.used++
	return int32(t.used - 1)
}

func (t *minTree) release(s int32) {
	t.set(s, noTs)
	t.free = append(t.free, s)
}

// set stores v in slot s and updates the minima above it, stopping as soon
// as one does not change.
func (t *minTree) set(s int32, v uint64) {
	i := t.cap + int(s)
	t.vals[i] = v
	for i > 1 {
		i >>= 1
		m := min(t.vals[2*i], t.vals[2*i+1])
		if t.vals[i] == m {
			return
		}
		t.vals[i] = m
	}
}

// grow adds half the capacity and rebuilds the inner nodes. Any capacity
// works: every leaf's chain of halvings reaches node 1, so vals[1] is the
// minimum of all leaves even when cap is not a power of two.
func (t *minTree) grow() {
	n := max(64, t.cap+t.cap/2)
	vals := make([]uint64, 2*n)
	for i := range vals {
		vals[i] = noTs
	}
	if t.cap > 0 {
		copy(vals[n:], t.vals[t.cap:])
	}
	for i := n - 1; i >= 1; i-- {
		vals[i] = min(vals[2*i], vals[2*i+1])
	}
	t.vals, t.cap = vals, n
}
