package pool

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// segState is a reader's position in one segment: the publications of one
// group that its range log entry (OPEN or TAKEOVER) says continue the
// range, up to the first that fences it out or does not list it.
type segState struct {
	src      *groupSource
	first    uint64 // first seq of the segment
	startWm  uint64 // the range's watermark when it opened
	epoch    uint64 // epoch of the log entry that opened it
	end      uint64 // last seq, once a later log entry names it
	endKnown bool
	pos      uint64 // next publication to read
	// seen is the highest seq the reader knows exists (listed or read):
	// up to it a poll always reads; above it, heads may say "not yet".
	seen  uint64
	heads *Heads
	done  bool // ended: the log's next entry continues the range
	found int  // publications read in a row without waiting
	// checked is when the reader last found a publication or looked
	// around (waitPub); wait is how long it waits before looking again
	// while behind.
	checked time.Time
	wait    time.Duration
	lastMs  int64 // created_unix_ms of the last publication read
}

// segCheckEvery: a reader that read this many publications in a row (it
// is catching up) looks for a segment object covering the next.
const segCheckEvery = 32

// behindAfter: a reader waiting for a publication while the last one it
// read is older than this is behind (the one it waits for may have been
// deleted after segmenting): it looks every behindCheckEvery instead of
// every floorCheckEvery. Variables for tests.
var (
	behindAfter      = time.Minute
	behindCheckEvery = 5 * time.Second
)

func (r *RangeReader) newSeg(e *formatv1.RangeLogEntry) *segState {
	return &segState{src: &groupSource{store: r.store, cache: r.cache, tenant: r.tenant, group: e.Group}, heads: r.heads,
		first: e.GroupSeq, startWm: e.Watermark, epoch: e.OwnerEpoch, pos: e.GroupSeq, checked: time.Now()}
}

// namedEnd is the last seq of segment s according to e, the log entry
// after the one that opened it.
func (r *RangeReader) namedEnd(s *segState, e *formatv1.RangeLogEntry) (uint64, error) {
	switch {
	case e.Kind == formatv1.RangeLogEntry_KIND_TAKEOVER && e.PrevGroup == s.src.group:
		return e.PrevGroupSeq, nil
	case e.Kind == formatv1.RangeLogEntry_KIND_SEAL && e.Group == s.src.group:
		return e.GroupSeq, nil
	}
	return 0, fmt.Errorf("range %d of tenant %d: entry %d (%s, group %q, previous group %q) does not continue the segment in group %s",
		r.id, r.tenant, e.Seq, e.Kind, e.Group, e.PrevGroup, s.src.group)
}

// segmentEntry consumes a version 2 log entry: a new segment (OPEN,
// TAKEOVER) or the end (SEAL).
func (r *RangeReader) segmentEntry(_ context.Context, e *formatv1.RangeLogEntry) (Chunk, bool, error) {
	if s := r.seg; s != nil {
		if _, err := r.namedEnd(s, e); err != nil {
			return Chunk{}, false, err
		}
	} else if r.seq > 0 && !r.wmUnknown && e.Kind == formatv1.RangeLogEntry_KIND_TAKEOVER && e.PrevGroup != "" {
		return Chunk{}, false, fmt.Errorf("range %d of tenant %d: entry %d continues group %s, the reader was in the version 1 log", r.id, r.tenant, e.Seq, e.PrevGroup)
	}
	if r.seq > 0 && !r.wmUnknown && e.Watermark != r.wm {
		return Chunk{}, false, fmt.Errorf("range %d of tenant %d: entry %d (%s) is at watermark %d, the reader reached %d",
			r.id, r.tenant, e.Seq, e.Kind, e.Watermark, r.wm)
	}
	r.seq, r.epoch, r.wm, r.wmUnknown = e.Seq, e.OwnerEpoch, e.Watermark, false
	if e.Kind == formatv1.RangeLogEntry_KIND_SEAL {
		r.sealed, r.seg = true, nil
		return Chunk{Watermark: r.wm, Sealed: true, Successors: e.SuccessorRangeIds}, true, nil
	}
	r.seg = r.newSeg(e)
	return Chunk{Watermark: r.wm}, true, nil
}

// since returns f's rows with commit_ts >= the reader's start (shared with
// the cache: capped so that appending copies).
func (r *RangeReader) since(f *cachedFile) []Row {
	if f == nil {
		return nil
	}
	i := sort.Search(len(f.rows), func(i int) bool { return f.rows[i].CommitTs >= r.from })
	return f.rows[i:len(f.rows):len(f.rows)]
}

// step checks that a publication's interval for the range continues where
// the reader is.
func (r *RangeReader) step(st RangeState, seq uint64) error {
	if !r.wmUnknown && st.Prev != r.wm {
		return fmt.Errorf("range %d of tenant %d: publication %d of group %s starts it at watermark %d, the reader is at %d",
			r.id, r.tenant, seq, r.seg.src.group, st.Prev, r.wm)
	}
	r.wm, r.wmUnknown = st.Watermark, false
	return nil
}

// nextPub reads the segment's next publication.
func (r *RangeReader) nextPub(ctx context.Context) (Chunk, bool, error) {
	s := r.seg
	for {
		if s.endKnown && s.pos > s.end {
			s.done = true
			return r.nextEntry(ctx)
		}
		if s.found >= segCheckEvery {
			s.found = 0
			x, err := s.src.segmentCovering(ctx, s.pos)
			if err == nil {
				return r.fromSegment(ctx, x)
			}
			if !errors.Is(err, objstore.ErrNotFound) {
				return Chunk{}, false, err
			}
		}
		x, err := s.poll(ctx)
		if errors.Is(err, objstore.ErrNotFound) {
			s.found = 0
			return r.waitPub(ctx)
		}
		if err != nil {
			return Chunk{}, false, err
		}
		s.found++
		s.seen = max(s.seen, s.pos)
		s.lastMs, s.checked, s.wait = x.pub.CreatedUnixMs, time.Now(), 0
		ended, neutral := endsSegment(x.pub, r.id, s.epoch)
		if neutral {
			s.pos++
			continue
		}
		if ended {
			s.done = true
			return r.nextEntry(ctx)
		}
		st, _ := x.pub.State(r.id)
		if err := r.step(st, s.pos); err != nil {
			return Chunk{}, false, err
		}
		f, err := s.src.pubRows(ctx, x, r.id, st)
		if err != nil {
			return Chunk{}, false, pubErr(err, s, r.id)
		}
		s.pos++
		return chunkOf(r.since(f), st.Watermark, f), true, nil
	}
}

// chunkOf is a chunk of rows from f, holding f's read buffer (the
// reference the cache gave with f) while it has rows; f may be nil.
func chunkOf(rows []Row, wm uint64, f *cachedFile) Chunk {
	c := Chunk{Rows: rows, Watermark: wm}
	if f != nil {
		if len(rows) > 0 {
			c.buf = f.buf
		} else {
			f.release()
		}
	}
	return c
}

// poll reads the publication at the reader's position, which may not be
// written yet: above what the reader knows exists, a fresh notice saying
// the group's newest is below it answers "not found" without a GET, and
// so may the cache's memory of a recent miss.
func (s *segState) poll(ctx context.Context) (*indexed, error) {
	if s.pos > s.seen {
		if err := s.heads.notYet(s.src.tenant, s.src.group, s.pos); err != nil {
			return nil, err
		}
	}
	return s.src.readPub(ctx, s.pos, true)
}

// pubErr explains a failed read: an object gone under the reader was
// compacted away.
func pubErr(err error, s *segState, rangeID uint64) error {
	if errors.Is(err, objstore.ErrNotFound) {
		return fmt.Errorf("range %d: publication %d of group %s expired while being read: %w", rangeID, s.pos, s.src.group, ErrCompacted)
	}
	return err
}

// fromSegment queues the range's chunks of the publications a segment
// object covers from the reader's position on, read with one ranged GET.
func (r *RangeReader) fromSegment(ctx context.Context, x *indexed) (Chunk, bool, error) {
	s := r.seg
	rows, err := s.src.segmentRows(ctx, x, r.id)
	if err != nil {
		return Chunk{}, false, pubErr(err, s, r.id)
	}
	// Each queued chunk holds the span's buffer; the reference the cache
	// gave with rows is released once they are queued.
	defer rows.release()
	s.seen = max(s.seen, x.seg.Header.LastSeq)
	for ; s.pos <= x.seg.Header.LastSeq && !(s.endKnown && s.pos > s.end); s.pos++ {
		p := x.seg.Pub(s.pos)
		s.lastMs = p.CreatedUnixMs
		ended, neutral := endsSegment(p, r.id, s.epoch)
		if neutral {
			continue
		}
		if ended {
			s.done = true
			break
		}
		st, _ := p.State(r.id)
		if err := r.step(st, s.pos); err != nil {
			return Chunk{}, false, err
		}
		f := rows[s.pos] // nil when the publication has no rows of the range
		if f != nil {
			f.hold()
		}
		c := chunkOf(r.since(f), st.Watermark, f)
		if n := len(r.queue); n > 0 && len(r.queue[n-1].Rows) == 0 {
			r.queue[n-1] = c // a chunk without rows only says a watermark, which c moves past
		} else {
			r.queue = append(r.queue, c)
		}
	}
	s.found = segCheckEvery // the next segment may follow at once
	s.checked, s.wait = time.Now(), 0
	return r.Next(ctx)
}

// waitPub handles a publication not found at the reader's position: most
// often it is not written yet. A reader that waits for floorCheckEvery
// without finding one — at once, then backing off from behindCheckEvery,
// when the last one it read is old (it is behind: the one it waits for may
// have been deleted after segmenting) — looks whether a segment covers it,
// whether retention passed it, and whether a later log entry says where
// the segment ended.
func (r *RangeReader) waitPub(ctx context.Context) (Chunk, bool, error) {
	s := r.seg
	now := time.Now()
	every, behind := floorCheckEvery, s.lastMs != 0 && now.Sub(time.UnixMilli(s.lastMs)) > behindAfter
	if behind {
		every = min(s.wait, floorCheckEvery)
	}
	if now.Sub(s.checked) < every {
		return Chunk{}, false, nil
	}
	s.checked = now
	if behind {
		s.wait = min(max(2*s.wait, behindCheckEvery), floorCheckEvery)
	}
	x, err := s.src.segmentCovering(ctx, s.pos)
	if err == nil {
		return r.fromSegment(ctx, x)
	}
	if !errors.Is(err, objstore.ErrNotFound) {
		return Chunk{}, false, err
	}
	floor, err := s.src.floor(ctx)
	if err != nil {
		return Chunk{}, false, err
	}
	if floor > s.pos || (s.endKnown && s.pos <= s.end) {
		// Every publication up to a named end was written before the log
		// named it: one that is gone was deleted by retention.
		return Chunk{}, false, fmt.Errorf("range %d of tenant %d: the reader is at watermark %d (publication %d of group %s), publications below %d have expired: %w",
			r.id, r.tenant, r.wm, s.pos, s.src.group, floor, ErrCompacted)
	}
	if r.next == nil {
		e, err := r.pollEntry(ctx, r.seq+1)
		if err != nil && !errors.Is(err, objstore.ErrNotFound) {
			return Chunk{}, false, err
		}
		r.next = e
	}
	if r.next != nil {
		end, err := r.namedEnd(s, r.next)
		if err != nil {
			return Chunk{}, false, err
		}
		s.end, s.endKnown = end, true
		if s.pos > end {
			s.done = true
			return r.nextEntry(ctx)
		}
	}
	return Chunk{}, false, nil
}

// openSegments positions the reader in the version 2 part of the log (v2:
// its entries, in order): in the segment the start ts falls in, at the
// first publication whose watermark for the range reaches it.
func (r *RangeReader) openSegments(ctx context.Context, v2 []*formatv1.RangeLogEntry) (moved bool, err error) {
	last := v2[len(v2)-1]
	if last.Kind == formatv1.RangeLogEntry_KIND_SEAL && r.from > last.Watermark {
		// Nothing at or after from: the range ended before.
		r.seq, r.wm, r.epoch, r.next, r.wmUnknown = last.Seq-1, last.Watermark, last.OwnerEpoch, last, true
		return false, nil
	}
	pick := -1
	for i, e := range v2 {
		if segmentOpener(e) && (pick < 0 || e.Watermark < r.from) {
			pick = i
		}
	}
	if pick < 0 {
		return false, fmt.Errorf("range %d of tenant %d: no entry opens a segment", r.id, r.tenant)
	}
	e := v2[pick]
	r.seq, r.epoch, r.wm = e.Seq, e.OwnerEpoch, e.Watermark
	r.seg = r.newSeg(e)
	endWm := uint64(0)
	if pick+1 < len(v2) {
		if r.seg.end, err = r.namedEnd(r.seg, v2[pick+1]); err != nil {
			return false, err
		}
		r.seg.endKnown, endWm = true, v2[pick+1].Watermark
	}
	return r.seekSegment(ctx, endWm)
}

// unit is a publication, or a segment object covering several, that exists
// in a group.
type unit struct {
	first, last uint64
	segKey      string // "" for a publication
}

// seekSegment positions the reader in its segment: with one listing of the
// group's segment objects and publications from the segment's first seq
// (or the group's retention floor), and a binary search over them (each
// probe one GET of a publication or of a segment's index, cached).
func (r *RangeReader) seekSegment(ctx context.Context, endWm uint64) (moved bool, err error) {
	s := r.seg
	floor, err := s.src.floor(ctx)
	if err != nil {
		return false, err
	}
	lowest := max(s.first, floor)
	if s.endKnown && s.end < s.first {
		s.done = true // no publication ever listed it there
		return false, nil
	}
	if s.endKnown && lowest > s.end {
		if endWm > s.startWm && r.from <= endWm {
			return false, compacted(endWm+1, "range %d of tenant %d published its rows up to ts %d in group %s, which retention deleted (the oldest start ts is %d), asked from %d",
				r.id, r.tenant, endWm, s.src.group, endWm+1, r.from)
		}
		s.done, r.wm = true, endWm
		return false, nil
	}
	units, err := r.listUnits(ctx, lowest)
	if err != nil {
		return false, err
	}
	if len(units) > 0 {
		s.seen = units[len(units)-1].last
	}
	if s.endKnown && len(units) == 0 {
		// A closed segment whose group holds nothing of it any more.
		if endWm > s.startWm && r.from <= endWm {
			return false, compacted(endWm+1, "range %d of tenant %d published its rows up to ts %d in group %s, which retention deleted (the oldest start ts is %d), asked from %d",
				r.id, r.tenant, endWm, s.src.group, endWm+1, r.from)
		}
		s.done, r.wm = true, max(endWm, s.startWm)
		return false, nil
	}
	memo := map[uint64]*Pub{}
	get := func(seq uint64) (*Pub, error) {
		if p, ok := memo[seq]; ok {
			return p, nil
		}
		i := sort.Search(len(units), func(i int) bool { return units[i].last >= seq })
		var p *Pub
		if i < len(units) && units[i].first <= seq {
			if u := units[i]; u.segKey != "" {
				x, err := s.src.readSegment(ctx, u.segKey)
				if err != nil {
					return nil, err
				}
				p = x.seg.Pub(seq)
			} else {
				x, err := s.src.readPub(ctx, seq, false)
				if err != nil && !errors.Is(err, objstore.ErrNotFound) {
					return nil, err
				}
				if x != nil {
					p = x.pub
				}
			}
		}
		memo[seq] = p // nil: never written (or deleted meanwhile: the floor check below catches it)
		return p, nil
	}
	// state walks back from seq over publications that say nothing about
	// the range to the one that does: ended, or listing it with st.
	var state func(seq uint64) (p *Pub, ended bool, err error)
	state = func(seq uint64) (*Pub, bool, error) {
		for ; seq >= lowest && seq > 0; seq-- {
			p, err := get(seq)
			if err != nil {
				return nil, false, err
			}
			if p == nil {
				continue
			}
			ended, neutral := endsSegment(p, r.id, s.epoch)
			if !neutral {
				return p, ended, nil
			}
		}
		return nil, false, nil
	}
	pred := func(seq uint64) (bool, error) {
		p, ended, err := state(seq)
		if err != nil || p == nil {
			return false, err
		}
		if ended {
			return true, nil
		}
		st, _ := p.State(r.id)
		return st.Watermark >= r.from, nil
	}
	top := func(u unit) uint64 {
		if s.endKnown {
			return min(u.last, s.end)
		}
		return u.last
	}
	// The first unit whose last publication ended the segment or reached
	// from; checking the newest first (readers most often start near now).
	found := len(units)
	if len(units) > 0 {
		ok, err := pred(top(units[len(units)-1]))
		if err != nil {
			return false, err
		}
		if ok {
			lo, hi := -1, len(units)-1
			for hi-lo > 1 {
				mid := lo + (hi-lo)/2
				if ok, err = pred(top(units[mid])); err != nil {
					return false, err
				}
				if ok {
					hi = mid
				} else {
					lo = mid
				}
			}
			found = hi
		}
	}
	if found == len(units) {
		// Everything published is below from: follow from the head.
		s.pos = lowest
		if len(units) > 0 {
			s.pos = top(units[len(units)-1]) + 1
		}
		p, _, err := state(s.pos - 1)
		if err != nil {
			return false, err
		}
		switch {
		case p != nil:
			st, _ := p.State(r.id)
			r.wm, s.lastMs = st.Watermark, p.CreatedUnixMs
		case lowest > s.first:
			r.wm, r.wmUnknown = s.startWm, true
		}
		return r.floorMoved(ctx, floor)
	}
	u := units[found]
	q := max(u.first, lowest)
	for ; q < top(u); q++ {
		ok, err := pred(q)
		if err != nil {
			return false, err
		}
		if ok {
			break
		}
	}
	p, ended, err := state(q)
	if err != nil {
		return false, err
	}
	s.pos = q
	if u.segKey != "" {
		s.found = segCheckEvery // read it from the segment object
	}
	if ended || p == nil {
		s.done, r.wmUnknown = true, true
		return r.floorMoved(ctx, floor)
	}
	s.lastMs = p.CreatedUnixMs
	st, _ := p.State(r.id)
	if st.Prev >= r.from && st.Prev > s.startWm {
		return false, compacted(st.Prev+1, "range %d of tenant %d keeps rows after ts %d in group %s (the oldest start ts is %d), asked from %d",
			r.id, r.tenant, st.Prev, s.src.group, st.Prev+1, r.from)
	}
	r.wm = st.Prev
	return r.floorMoved(ctx, floor)
}

// floorMoved reads the group's floor again: if retention moved it while the
// reader looked, what it listed may lack objects retention deleted.
func (r *RangeReader) floorMoved(ctx context.Context, floor uint64) (bool, error) {
	again, err := r.seg.src.floor(ctx)
	if err != nil {
		return false, err
	}
	r.seg.checked = time.Now()
	return again != floor, nil
}

// listUnits lists the segment objects and the publications not covered by
// one, from seq lowest (up to the segment's end when known), in seq order.
func (r *RangeReader) listUnits(ctx context.Context, lowest uint64) ([]unit, error) {
	s := r.seg
	src := s.src
	var units []unit
	segs, err := objstore.ListAll(ctx, src.store, layout.GroupSegPrefix(src.tenant, src.group), layout.GroupSegStartAfter(src.tenant, src.group, lowest))
	if err != nil {
		return nil, err
	}
	for _, o := range segs {
		last, first, err := layout.ParseGroupSegKey(o.Key)
		if err != nil {
			continue
		}
		if s.endKnown && first > s.end {
			break
		}
		units = append(units, unit{first: first, last: last, segKey: o.Key})
	}
	sort.Slice(units, func(i, j int) bool { return units[i].first < units[j].first })
	covered := func(seq uint64) bool {
		i := sort.Search(len(units), func(i int) bool { return units[i].last >= seq })
		return i < len(units) && units[i].first <= seq
	}
	prefix := layout.GroupPubPrefix(src.tenant, src.group)
	var pubs []unit
	for after, more := layout.GroupPubKey(src.tenant, src.group, lowest-1), true; more; {
		var page []objstore.ObjectInfo
		if page, more, err = src.store.List(ctx, prefix, after, 0); err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, o := range page {
			after = o.Key
			seq, err := layout.ParseGroupSeqKey(o.Key)
			if err != nil {
				continue
			}
			if s.endKnown && seq > s.end {
				more = false
				break
			}
			if !covered(seq) {
				pubs = append(pubs, unit{first: seq, last: seq})
			}
		}
		if len(page) == 0 {
			break
		}
	}
	units = append(units, pubs...)
	sort.Slice(units, func(i, j int) bool { return units[i].first < units[j].first })
	return units, nil
}
