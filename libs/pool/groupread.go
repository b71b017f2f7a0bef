package pool

import (
	"context"
	"errors"
	"fmt"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"google.golang.org/protobuf/proto"
)

// readAhead is how much of a publication or segment object one GET asks
// for: small objects (the usual publication) come whole with one request;
// of a bigger one it brings the index, and a range's rows are then fetched
// with a ranged GET of just their bytes.
const readAhead = 1 << 20

// groupSource reads one group's objects, through a cache when there is one
// (every reader of every range of the group shares one read of each
// publication).
type groupSource struct {
	store  objstore.Store
	cache  *Cache
	tenant uint64
	group  string
	// indexOnly: the caller needs indexes, not rows (retention, fencing,
	// monitoring): the first read asks for a small prefix.
	indexOnly bool
}

// indexReadAhead is the first read of a caller that needs only indexes.
const indexReadAhead = 64 << 10

func (s *groupSource) readAhead() int64 {
	if s.indexOnly {
		return indexReadAhead
	}
	return readAhead
}

// indexed is a publication or segment object read from the pool: its
// decoded index and the bytes of its data part that were read.
type indexed struct {
	key     string
	dataOff int64  // where the data part starts in the object
	data    []byte // a prefix of the data part (all of it when whole)
	whole   bool
	pub     *Pub     // a publication's index
	seg     *Segment // a segment's index
}

// indexOnly: an indexed with no data is an index (the cache keeps it in
// the indexes' part of its budget).
func (x *indexed) indexOnly() bool { return len(x.data) == 0 }

// dataPrefix is the start of the data part of an object not read whole,
// cached apart from its index (under prefixKey): a range whose section
// lies in it reads nothing more while it is cached, and the rows of many
// sections read once each may evict it without taking the index with it.
type dataPrefix []byte

func prefixKey(key string) string { return key + "#prefix" }

// splitPrefix moves the data prefix of an object not read whole out of x
// into its own cache entry. Called by loaders, before x is cached.
func (s *groupSource) splitPrefix(x *indexed) {
	if s.cache == nil || x.whole || len(x.data) == 0 {
		return
	}
	s.cache.put(prefixKey(x.key), dataPrefix(x.data), int64(len(x.data))+entryOverhead)
	x.data = nil
}

// data is what was read of x's data part: all of it, the prefix while the
// cache holds it, or nothing.
func (s *groupSource) data(x *indexed) []byte {
	if x.whole || x.data != nil || s.cache == nil {
		return x.data
	}
	if v, ok := s.cache.peek(prefixKey(x.key)); ok {
		return v.(dataPrefix)
	}
	return nil
}

func (x *indexed) size() int64 {
	n := int64(len(x.data)) + entryOverhead
	if x.pub != nil {
		n += int64(proto.Size(x.pub.GroupPublication))
	}
	if x.seg != nil {
		for _, p := range x.seg.Pubs {
			n += int64(proto.Size(p.GroupPublication)) + 64
		}
	}
	return n
}

// readIndexed reads an object's first bytes and decodes its index with
// decode, reading more when the index is longer than one read-ahead.
func readIndexed(ctx context.Context, store objstore.Store, key string, ahead int64, decode func(name string, b []byte) (int64, error)) (*indexed, error) {
	b, err := store.GetRange(ctx, key, 0, ahead)
	if err != nil {
		return nil, err
	}
	whole := int64(len(b)) < ahead
	n, err := decode(key, b)
	var short *container.ShortError
	if errors.As(err, &short) && !whole {
		if b, err = store.GetRange(ctx, key, 0, short.Need+ahead/4); err != nil {
			return nil, err
		}
		whole = int64(len(b)) < short.Need+ahead/4
		n, err = decode(key, b)
	}
	if errors.As(err, &short) {
		return nil, fmt.Errorf("%s: the object ends inside its index: %w", key, container.ErrCorrupt)
	}
	if err != nil {
		return nil, err
	}
	return &indexed{key: key, dataOff: n, data: b[n:len(b):len(b)], whole: whole}, nil
}

// readPub reads publication seq. A missing one is an error matching
// objstore.ErrNotFound; negative lets the cache answer that from a recent
// miss (polling for the next publication).
func (s *groupSource) readPub(ctx context.Context, seq uint64, negative bool) (*indexed, error) {
	key := layout.GroupPubKey(s.tenant, s.group, seq)
	load := func(ctx context.Context) (any, int64, error) {
		var p *Pub
		x, err := readIndexed(ctx, s.store, key, s.readAhead(), func(name string, b []byte) (int64, error) {
			var n int64
			var err error
			p, n, err = DecodePubIndex(name, b)
			return n, err
		})
		if err != nil {
			return nil, 0, err
		}
		if p.TenantId != s.tenant || p.Group != s.group || p.Seq != seq {
			return nil, 0, fmt.Errorf("%s: publication says tenant %d group %q seq %d: %w", key, p.TenantId, p.Group, p.Seq, container.ErrCorrupt)
		}
		x.pub = p
		s.splitPrefix(x)
		return x, x.size(), nil
	}
	return s.load(ctx, key, negative, load)
}

// readSegment reads the index (and, for a small one, the data) of a segment.
func (s *groupSource) readSegment(ctx context.Context, key string) (*indexed, error) {
	last, first, err := layout.ParseGroupSegKey(key)
	if err != nil {
		return nil, err
	}
	load := func(ctx context.Context) (any, int64, error) {
		var sg *Segment
		x, err := readIndexed(ctx, s.store, key, s.readAhead(), func(name string, b []byte) (int64, error) {
			var n int64
			var err error
			sg, n, err = DecodeSegmentIndex(name, b)
			return n, err
		})
		if err != nil {
			return nil, 0, err
		}
		h := sg.Header
		if h.TenantId != s.tenant || h.Group != s.group || h.FirstSeq != first || h.LastSeq != last {
			return nil, 0, fmt.Errorf("%s: segment says tenant %d group %q seqs %d..%d: %w", key, h.TenantId, h.Group, h.FirstSeq, h.LastSeq, container.ErrCorrupt)
		}
		x.seg = sg
		s.splitPrefix(x)
		return x, x.size(), nil
	}
	return s.load(ctx, key, false, load)
}

func (s *groupSource) load(ctx context.Context, key string, negative bool, load loader) (*indexed, error) {
	return cached[*indexed](ctx, s.cache, key, negative, load)
}

// cached loads key through the cache when there is one, directly when not.
func cached[T any](ctx context.Context, c *Cache, key string, negative bool, load loader) (T, error) {
	var v any
	var err error
	if c == nil {
		v, _, err = load(ctx)
	} else {
		v, err = c.get(ctx, key, negative, load)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
}

// segmentCovering finds the segment that covers seq (the first whose last
// seq is at or above it, if its first is at or below). None is an error
// matching objstore.ErrNotFound.
func (s *groupSource) segmentCovering(ctx context.Context, seq uint64) (*indexed, error) {
	prefix := layout.GroupSegPrefix(s.tenant, s.group)
	page, _, err := s.store.List(ctx, prefix, layout.GroupSegStartAfter(s.tenant, s.group, seq), 1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	if len(page) == 0 {
		return nil, fmt.Errorf("no segment of group %s covers seq %d: %w", s.group, seq, objstore.ErrNotFound)
	}
	last, first, err := layout.ParseGroupSegKey(page[0].Key)
	if err != nil {
		return nil, err
	}
	if first > seq || last < seq {
		return nil, fmt.Errorf("no segment of group %s covers seq %d: %w", s.group, seq, objstore.ErrNotFound)
	}
	return s.readSegment(ctx, page[0].Key)
}

// pubAt returns publication seq's index, from the publication or from the
// segment that covers it.
func (s *groupSource) pubAt(ctx context.Context, seq uint64) (*Pub, error) {
	x, err := s.readPub(ctx, seq, false)
	if err == nil {
		return x.pub, nil
	}
	if !errors.Is(err, objstore.ErrNotFound) {
		return nil, err
	}
	sg, serr := s.segmentCovering(ctx, seq)
	if serr != nil {
		if errors.Is(serr, objstore.ErrNotFound) {
			return nil, err
		}
		return nil, serr
	}
	return sg.seg.Pub(seq), nil
}

// floor is the group's retention floor: publications and segments below
// it are garbage (0: nothing compacted).
func (s *groupSource) floor(ctx context.Context) (uint64, error) {
	prefix := layout.GroupFloorPrefix(s.tenant, s.group)
	all, err := objstore.ListAll(ctx, s.store, prefix, "")
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", prefix, err)
	}
	if len(all) == 0 {
		return 0, nil
	}
	return layout.ParseGroupSeqKey(all[len(all)-1].Key)
}

// head returns the highest seq of a publication or segment of the group at
// or above from (0 if there is none) and the group's floor.
func (s *groupSource) head(ctx context.Context, from uint64) (head, floor uint64, err error) {
	if floor, err = s.floor(ctx); err != nil {
		return 0, 0, err
	}
	from = max(from, floor, 1)
	pubs := layout.GroupPubPrefix(s.tenant, s.group)
	after := layout.GroupPubKey(s.tenant, s.group, from-1)
	for {
		page, more, err := s.store.List(ctx, pubs, after, 0)
		if err != nil {
			return 0, 0, fmt.Errorf("list %s: %w", pubs, err)
		}
		if len(page) > 0 {
			after = page[len(page)-1].Key
			if head, err = layout.ParseGroupSeqKey(after); err != nil {
				return 0, 0, err
			}
		}
		if !more || len(page) == 0 {
			break
		}
	}
	segs, err := objstore.ListAll(ctx, s.store, layout.GroupSegPrefix(s.tenant, s.group), layout.GroupSegStartAfter(s.tenant, s.group, from))
	if err != nil {
		return 0, 0, err
	}
	if len(segs) > 0 {
		last, _, err := layout.ParseGroupSegKey(segs[len(segs)-1].Key)
		if err != nil {
			return 0, 0, err
		}
		head = max(head, last)
	}
	return head, floor, nil
}

// pubRows returns a member's rows in a publication (nil when it has none),
// reading only its section when the publication was not read whole.
func (s *groupSource) pubRows(ctx context.Context, x *indexed, rangeID uint64, st RangeState) (*cachedFile, error) {
	if st.Section == nil {
		return nil, nil
	}
	key := fmt.Sprintf("%s#%d", x.key, rangeID)
	load := func(ctx context.Context) (any, int64, error) {
		b, ok := sectionSlice(s.data(x), st.Section)
		var rb *readBuf
		if !ok {
			var err error
			if rb, err = s.cache.readInto(ctx, s.store, x.key, x.dataOff+int64(st.Section.Offset), int(st.Section.Length)); err != nil {
				return nil, 0, err
			}
			if b = rb.b; uint64(len(b)) != st.Section.Length {
				rb.release()
				return nil, 0, fmt.Errorf("%s: section of range %d runs past the object: %w", x.key, rangeID, container.ErrCorrupt)
			}
		}
		// A section read on its own is this entry's alone: its rows may
		// point into it. One cut out of the whole publication is copied.
		var taken [][]Row
		f, err := decodeSection(key, b, !ok, s.tenant, rangeID, st, s.cache.rowsFor(rb, &taken))
		if err != nil {
			rb.release()
			return nil, 0, err
		}
		f.buf = keepIfInPlace(rb, f.inPlace, taken)
		return f, f.size(), nil
	}
	return cached[*cachedFile](ctx, s.cache, key, false, load)
}

// spanRows is a range's rows in a segment, per publication seq.
type spanRows map[uint64]*cachedFile

// segmentRows returns all of a range's rows in a segment, read with one
// ranged GET of its contiguous sections (none when the segment was read
// whole).
func (s *groupSource) segmentRows(ctx context.Context, x *indexed, rangeID uint64) (spanRows, error) {
	key := fmt.Sprintf("%s#%d", x.key, rangeID)
	load := func(ctx context.Context) (any, int64, error) {
		lo, hi := uint64(1<<63), uint64(0)
		for _, p := range x.seg.Pubs {
			if st, ok := p.State(rangeID); ok && st.Section != nil {
				lo, hi = min(lo, st.Section.Offset), max(hi, st.Section.Offset+st.Section.Length)
			}
		}
		out := spanRows{}
		if hi == 0 {
			return out, entryOverhead, nil
		}
		var span []byte
		var rb *readBuf // the sections read on their own: their rows may point into it
		if data := s.data(x); hi <= uint64(len(data)) {
			span = data[lo:hi]
		} else {
			var err error
			if rb, err = s.cache.readInto(ctx, s.store, x.key, x.dataOff+int64(lo), int(hi-lo)); err != nil {
				return nil, 0, err
			}
			if span = rb.b; uint64(len(span)) != hi-lo {
				rb.release()
				return nil, 0, fmt.Errorf("%s: range %d's sections run past the object: %w", x.key, rangeID, container.ErrCorrupt)
			}
		}
		size := int64(entryOverhead)
		inPlace := false
		var taken [][]Row
		alloc := s.cache.rowsFor(rb, &taken)
		for _, p := range x.seg.Pubs {
			st, ok := p.State(rangeID)
			if !ok || st.Section == nil {
				continue
			}
			o := st.Section.Offset - lo
			f, err := decodeSection(fmt.Sprintf("%s seq %d", key, p.Seq), span[o:o+st.Section.Length], rb != nil, s.tenant, rangeID, st, alloc)
			if err != nil {
				rb.release()
				return nil, 0, err
			}
			out[p.Seq] = f
			size += f.size()
			inPlace = inPlace || f.inPlace
		}
		rb = keepIfInPlace(rb, inPlace, taken)
		for _, f := range out {
			f.buf = rb // one buffer, one reference for the whole span
		}
		return out, size, nil
	}
	return cached[spanRows](ctx, s.cache, key, false, load)
}
