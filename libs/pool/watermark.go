package pool

import (
	"context"
	"sync"
	"time"

	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// WatermarkReader reads ranges' published watermarks for monitoring (the
// meta-server's task list, lag): the range log's head, and for a range
// published in a group the newest publication that lists it. Ranges of one
// group share the read of its head (remembered for a second), and it
// remembers each group's head so the next look lists from there. It is
// safe for concurrent use.
type WatermarkReader struct {
	store objstore.Store
	now   func() time.Time

	mu    sync.Mutex
	heads map[groupRef]*groupHead
}

type groupRef struct {
	tenant uint64
	group  string
}

type groupHead struct {
	mu   sync.Mutex
	seq  uint64 // the head seq last seen (a hint: listings start there)
	at   time.Time
	pubs map[uint64]*Pub // publications read at that time
}

// headTTL is how long a group's head read serves other ranges of it.
const headTTL = time.Second

// NewWatermarkReader returns a reader of store.
func NewWatermarkReader(store objstore.Store) *WatermarkReader {
	return &WatermarkReader{store: store, now: time.Now, heads: map[groupRef]*groupHead{}}
}

// PublishedWatermark returns a range's published watermark. A range with
// no log fails with an error matching ErrNoRange.
func PublishedWatermark(ctx context.Context, store objstore.Store, tenant, id uint64) (uint64, error) {
	return NewWatermarkReader(store).Watermark(ctx, tenant, id)
}

// Watermark returns a range's published watermark: a format 1 log head's,
// a SEAL's, or the range's watermark in the newest publication of the
// segment its log names (where the segment ended, when a newer owner fenced
// it and has not logged its TAKEOVER yet).
func (w *WatermarkReader) Watermark(ctx context.Context, tenant, id uint64) (uint64, error) {
	head, _, err := FindHead(ctx, w.store, tenant, id)
	if err != nil {
		return 0, err
	}
	if !segmentOpener(head) {
		return head.Watermark, nil
	}
	return w.segmentWatermark(ctx, tenant, id, head)
}

func (w *WatermarkReader) segmentWatermark(ctx context.Context, tenant, id uint64, e *formatv1.RangeLogEntry) (uint64, error) {
	ref := groupRef{tenant, e.Group}
	w.mu.Lock()
	h := w.heads[ref]
	if h == nil {
		h = &groupHead{}
		w.heads[ref] = h
	}
	w.mu.Unlock()
	src := &groupSource{store: w.store, tenant: tenant, group: e.Group, indexOnly: true}
	h.mu.Lock()
	defer h.mu.Unlock()
	if now := w.now(); now.Sub(h.at) >= headTTL {
		seq, _, err := src.head(ctx, max(h.seq, 1))
		if err != nil {
			return 0, err
		}
		if seq == 0 && h.seq > 1 {
			if seq, _, err = src.head(ctx, 1); err != nil {
				return 0, err
			}
		}
		h.seq, h.at, h.pubs = seq, now, map[uint64]*Pub{}
	}
	if h.seq < e.GroupSeq {
		return e.Watermark, nil // nothing published in the segment yet
	}
	// The newest publication that says something about the range.
	for seq := h.seq; seq >= e.GroupSeq; seq-- {
		p := h.pubs[seq]
		if p == nil {
			var err error
			if p, err = src.pubAt(ctx, seq); err != nil {
				break // gone meanwhile: find the end the slow way
			}
			h.pubs[seq] = p
		}
		ended, neutral := endsSegment(p, id, e.OwnerEpoch)
		if neutral {
			continue
		}
		if !ended {
			st, _ := p.State(id)
			return st.Watermark, nil
		}
		break
	}
	_, wm, err := segmentEnd(ctx, w.store, tenant, e.Group, id, e.GroupSeq, h.seq+1, e.Watermark, e.OwnerEpoch)
	return wm, err
}

// GroupFloor returns a group's retention floor: publications and segments
// below it are gone (0: nothing was compacted).
func GroupFloor(ctx context.Context, store objstore.Store, tenant uint64, group string) (uint64, error) {
	return (&groupSource{store: store, tenant: tenant, group: group}).floor(ctx)
}

// GroupHead returns the highest seq of a group's publications and segments
// (0: none).
func GroupHead(ctx context.Context, store objstore.Store, tenant uint64, group string) (uint64, error) {
	head, _, err := (&groupSource{store: store, tenant: tenant, group: group}).head(ctx, 1)
	return head, err
}
