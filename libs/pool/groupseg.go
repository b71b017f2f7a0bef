package pool

import (
	"context"
	"errors"
	"time"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	"google.golang.org/protobuf/proto"
)

// Segments: the writer keeps the sections of its recent publications and,
// every SegmentBytes of them or SegmentAge, writes one segment covering the
// buffered publications first..last, with each range's sections contiguous
// in seq order: a reader catching up reads a range's rows of many
// publications with one ranged GET. A publication whose sections alone
// reach SegmentBytes is not buffered (it is a big object already): the
// buffer is cut before it, and the next segment starts after it. A crash
// before a segment is written leaves the publications, readable one by one.

// segmentTimeout bounds one segment write and its deletions.
const segmentTimeout = 2 * time.Minute

// buffer adds a publication just written (or a FENCE read at its seq) to
// the segment buffer, cutting a segment when it is due. Called under pubMu.
func (g *GroupWriter) buffer(msg *formatv1.GroupPublication, sections map[uint64][][]byte) {
	size := 0
	for _, parts := range sections {
		for _, b := range parts {
			size += len(b)
		}
	}
	now := g.o.Now()
	if len(g.buf) > 0 && g.buf[len(g.buf)-1].msg.Seq+1 != msg.Seq {
		g.cut() // not contiguous (cannot happen: seqs are written in order)
	}
	if size >= g.o.SegmentBytes {
		g.cut()
		g.recycle(sections)
		return
	}
	g.buf = append(g.buf, &bufferedPub{msg: msg, sections: sections, created: now})
	g.bufBytes += size
	if g.bufBytes >= g.o.SegmentBytes || len(g.buf) >= g.o.SegmentPubs || now.Sub(g.buf[0].created) >= g.o.SegmentAge {
		g.cut()
	}
}

// cut turns the buffered publications into a segment job (two or more: a
// segment of one publication would only copy it) and empties the buffer.
// The job writes the sections as they are, as parts of the segment object,
// and recycles them once it is written; without a job they are recycled
// at once.
func (g *GroupWriter) cut() {
	buf := g.buf
	g.buf, g.bufBytes = nil, 0
	queued := false
	defer func() {
		if !queued {
			for _, p := range buf {
				g.recycle(p.sections)
			}
		}
	}()
	if len(buf) < 2 {
		return
	}
	first, last := buf[0].msg.Seq, buf[len(buf)-1].msg.Seq
	ranges := map[uint64]bool{}
	for _, p := range buf {
		for id := range p.sections {
			ranges[id] = true
		}
	}
	type loc struct{ off, n uint64 }
	at := make([]map[uint64]loc, len(buf))
	for i := range at {
		at[i] = map[uint64]loc{}
	}
	parts := [][]byte{nil} // the index goes first
	size := 0
	for _, id := range sortedIDs(ranges) {
		for i, p := range buf {
			if sec, ok := p.sections[id]; ok {
				off := size
				for _, b := range sec {
					if len(b) > 0 {
						parts = append(parts, b)
						size += len(b)
					}
				}
				at[i][id] = loc{uint64(off), uint64(size - off)}
			}
		}
	}
	pubs := make([]*formatv1.GroupPublication, len(buf))
	for i, p := range buf {
		m := p.msg
		if len(p.sections) > 0 {
			m = proto.Clone(p.msg).(*formatv1.GroupPublication)
			for _, st := range m.Ranges {
				if st.Section != nil {
					l := at[i][st.RangeId]
					st.Section.Offset, st.Section.Length = l.off, l.n
				}
			}
		}
		pubs[i] = m
	}
	h := &formatv1.GroupSegmentHeader{TenantId: g.tenant, Group: g.id, FirstSeq: first, LastSeq: last, Owner: g.owner,
		CreatedUnixMs: g.o.Now().UnixMilli(), NewestCreatedUnixMs: buf[len(buf)-1].msg.CreatedUnixMs}
	index, err := encodeSegmentIndex(h, pubs)
	if err != nil {
		if g.o.OnSegment != nil {
			g.o.OnSegment(SegmentResult{First: first, Last: last, Err: err})
		}
		return
	}
	parts[0] = index
	sections := make([]map[uint64][][]byte, len(buf))
	for i, p := range buf {
		sections[i] = p.sections
	}
	g.segPending.Add(1)
	select {
	case g.segq <- &segJob{first: first, last: last, key: layout.GroupSegKey(g.tenant, g.id, last, first),
		parts: parts, bytes: len(index) + size, sections: sections}:
		queued = true
	default:
		// Segment writes are behind (a slow store): never hold publications
		// for them. These publications stay readable one by one.
		g.segPending.Done()
		if g.o.OnSegment != nil {
			g.o.OnSegment(SegmentResult{First: first, Last: last, Err: errors.New("skipped: earlier segments are still being written")})
		}
	}
}

// recycle gives sections nothing refers to any more to the buffer cache.
func (g *GroupWriter) recycle(sections map[uint64][][]byte) {
	for _, parts := range sections {
		g.bufs.put(parts...)
	}
}

// segmentLoop writes the segments cut, one at a time, and deletes the
// publications of segments past their grace.
func (g *GroupWriter) segmentLoop() {
	defer close(g.segDone)
	for job := range g.segq {
		ctx, cancel := context.WithTimeout(g.segCtx, segmentTimeout)
		err := objstore.PutIfAbsentParts(ctx, g.store, job.key, job.parts...)
		if err == nil {
			for _, s := range job.sections {
				g.recycle(s)
			}
		}
		if errors.Is(err, objstore.ErrExists) {
			err = nil
		}
		res := SegmentResult{First: job.first, Last: job.last, Bytes: job.bytes, Err: err}
		if err == nil {
			g.mu.Lock()
			g.written = append(g.written, writtenSeg{first: job.first, last: job.last, at: g.o.Now()})
			g.mu.Unlock()
		}
		res.PubsDeleted = g.dropCovered(ctx)
		cancel()
		if g.o.OnSegment != nil {
			g.o.OnSegment(res)
		}
		g.segPending.Done()
	}
}

// WaitSegments waits until the segments cut so far are written.
func (g *GroupWriter) WaitSegments() { g.segPending.Wait() }

// dropCovered deletes the publications covered by segments written more
// than the grace ago, but never the group's newest publication. Readers
// that meet a deleted publication read the segment that covers it.
func (g *GroupWriter) dropCovered(ctx context.Context) int {
	if g.o.Grace < 0 {
		return 0
	}
	cutoff := g.o.Now().Add(-g.o.Grace)
	g.mu.Lock()
	var due []writtenSeg
	keep := g.written[:0]
	for _, s := range g.written {
		if s.at.Before(cutoff) {
			due = append(due, s)
		} else {
			keep = append(keep, s)
		}
	}
	g.written = keep
	newest := g.newest
	g.mu.Unlock()
	var objs []objstore.ObjectInfo
	for _, s := range due {
		for seq := s.first; seq <= s.last; seq++ {
			if seq != newest {
				objs = append(objs, objstore.ObjectInfo{Key: layout.GroupPubKey(g.tenant, g.id, seq)})
			}
		}
	}
	if err := deleteAll(ctx, g.store, objs); err != nil {
		g.mu.Lock()
		g.written = append(due, g.written...) // try again after the next segment
		g.mu.Unlock()
		return 0
	}
	return len(objs)
}
