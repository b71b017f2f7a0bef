package sortbuf

import (
	"sort"
	"sync"
)

// liveStats keeps a buffer's row and byte counts without reading Pebble:
// additions are summed into commit-ts buckets, and DeleteUpTo drops the
// buckets wholly at or below the new floor. A bucket starts as 2^26 ts wide
// (about 256 ms of TSO physical time); when a backlog spreads the rows over
// more than maxStatBuckets buckets, neighbours merge and buckets double in
// width, so the cost stays O(1) memory per range whatever the backlog.
type liveStats struct {
	mu      sync.Mutex
	shift   uint
	buckets []statBucket // ascending by id
	late    int64
	floor   uint64
}

type statBucket struct {
	id    uint64 // commit_ts >> shift
	maxTs uint64
	rows  int64
	bytes int64
}

const (
	initialStatShift = 26
	maxStatBuckets   = 64
)

func newLiveStats() *liveStats { return &liveStats{shift: initialStatShift} }

// statDelta is what one batch adds, gathered without the lock.
type statDelta struct {
	buckets []statBucket
	late    int64
}

func (d *statDelta) add(commitTs uint64, size int) {
	id := commitTs >> initialStatShift
	n := len(d.buckets)
	if n > 0 && d.buckets[n-1].id == id { // rows of a batch are mostly close in ts
		b := &d.buckets[n-1]
		b.rows++
		b.bytes += int64(size)
		b.maxTs = max(b.maxTs, commitTs)
		return
	}
	d.buckets = append(d.buckets, statBucket{id: id, maxTs: commitTs, rows: 1, bytes: int64(size)})
}

func (d *statDelta) reset() {
	d.buckets = d.buckets[:0]
	d.late = 0
}

func (s *liveStats) apply(d *statDelta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.late += d.late
	for _, b := range d.buckets {
		s.addLocked(b)
	}
}

func (s *liveStats) addLocked(b statBucket) {
	b.id = b.maxTs >> s.shift
	i := sort.Search(len(s.buckets), func(i int) bool { return s.buckets[i].id >= b.id })
	if i < len(s.buckets) && s.buckets[i].id == b.id {
		t := &s.buckets[i]
		t.rows += b.rows
		t.bytes += b.bytes
		t.maxTs = max(t.maxTs, b.maxTs)
		return
	}
	s.buckets = append(s.buckets, statBucket{})
	copy(s.buckets[i+1:], s.buckets[i:])
	s.buckets[i] = b
	if len(s.buckets) > maxStatBuckets {
		s.coarsenLocked()
	}
}

func (s *liveStats) coarsenLocked() {
	s.shift++
	out := s.buckets[:0]
	for _, b := range s.buckets {
		b.id >>= 1
		if n := len(out); n > 0 && out[n-1].id == b.id {
			t := &out[n-1]
			t.rows += b.rows
			t.bytes += b.bytes
			t.maxTs = max(t.maxTs, b.maxTs)
			continue
		}
		out = append(out, b)
	}
	s.buckets = out
}

// deleteUpTo raises the floor and forgets the buckets it covers.
func (s *liveStats) deleteUpTo(ts uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.floor = max(s.floor, ts)
	i := 0
	for i < len(s.buckets) && s.buckets[i].maxTs <= s.floor {
		i++
	}
	s.buckets = append(s.buckets[:0], s.buckets[i:]...)
}

func (s *liveStats) snapshot() BufferStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := BufferStats{Late: s.late, Floor: s.floor}
	for _, b := range s.buckets {
		st.Rows += b.rows
		st.Bytes += b.bytes
	}
	return st
}
