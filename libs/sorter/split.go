package sorter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/watermark"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// Successor is a range that continues keys of a sealing range: a child of
// a split or of a merge, as its range task describes it.
type Successor struct {
	ID         uint64
	Start, End []byte   // End nil = unbounded
	Parents    []uint64 // as the child's OPEN entry lists them
}

// ErrNotReady means a split or merge cannot complete yet: a range must
// publish a watermark its target has not reached. Apply more and retry.
var ErrNotReady = errors.New("sorter: not ready to seal")

// SplitInto ends the range at its watermark W and continues its keys in
// children, which must tile its span (in any order; the SEAL entry lists
// them in the order given). It flushes to the current target W, writes for
// each child its OPEN entry (opened at W, parent r, r's owner epoch) and a
// snapshot of its share of the state (watermark map split at the
// boundaries, the matcher's state, spilled prewrites and unflushed rows of
// its keys, r's store positions), then seals the range. The range then takes
// no more input; the caller drops it.
//
// It is safe to retry after any failure, also by a new owner: when a child
// already exists, W is its opened-at ts (the range is only flushed up to
// it, ErrNotReady if its target is below), and a child that already has a
// snapshot keeps it.
func (r *Range) SplitInto(ctx context.Context, children []Successor) error {
	if r.sealed {
		return nil
	}
	sorted := slices.Clone(children)
	slices.SortFunc(sorted, func(a, b Successor) int { return bytes.Compare(a.Start, b.Start) })
	if err := tiles(sorted, r.start, r.end); err != nil {
		return fmt.Errorf("split range %d of tenant %d: %w", r.id, r.tenant, err)
	}
	w, found, err := openedAt(ctx, r.deps.Pool, r.tenant, sorted)
	if err != nil {
		return err
	}
	if found {
		err = r.alignTo(ctx, w)
	} else {
		_, err = r.Flush(ctx)
		w = r.published
	}
	if err != nil {
		return err
	}
	maps, err := splitMap(r.wm, sorted)
	if err != nil {
		return fmt.Errorf("split range %d of tenant %d: watermark map: %w", r.id, r.tenant, err)
	}
	for i, c := range sorted {
		cw, err := pool.CreateRange(ctx, r.writer.Group(), pool.RangeSpec{Tenant: r.tenant, RangeID: c.ID, Start: c.Start,
			End: c.End, OpenedAt: w, Parents: []uint64{r.id}}, r.writer.Epoch())
		if err != nil {
			return fmt.Errorf("split range %d of tenant %d: open child %d: %w", r.id, r.tenant, c.ID, err)
		}
		if have, err := hasSnapshot(ctx, r.deps.Snapshots, r.tenant, c.ID); err != nil || have {
			if err != nil {
				return err
			}
			continue
		}
		keep := spanFilter(c.Start, c.End)
		wmBytes, err := maps[i].MarshalBinary()
		if err != nil {
			return err
		}
		var mb bytes.Buffer
		if err := r.match.SnapshotKeys(&mb, keep); err != nil {
			return fmt.Errorf("split range %d of tenant %d: matcher: %w", r.id, r.tenant, err)
		}
		h := childHeader(cw, r.tenant, c, w, positions(r.applied))
		b, err := encodeSnapshot(h, wmBytes, mb.Bytes(), r.unflushed(keep), r.spilled(keep))
		if err != nil {
			return fmt.Errorf("split range %d of tenant %d: child %d: %w", r.id, r.tenant, c.ID, err)
		}
		if err := putChildSnapshot(ctx, r.deps.Snapshots, h, b); err != nil {
			return err
		}
	}
	ids := make([]uint64, len(children))
	for i, c := range children {
		ids[i] = c.ID
	}
	return r.seal(ctx, ids)
}

// seal appends the SEAL entry; the range takes no more input.
func (r *Range) seal(ctx context.Context, successors []uint64) error {
	if err := r.writer.Seal(ctx, successors); err != nil {
		return fmt.Errorf("seal range %d of tenant %d: %w", r.id, r.tenant, err)
	}
	r.sealed = true
	return nil
}

// alignTo publishes exactly w: flushing up to it if the target allows.
func (r *Range) alignTo(ctx context.Context, w uint64) error {
	if r.published > w {
		return fmt.Errorf("range %d of tenant %d published %d, past its successors' opening at %d", r.id, r.tenant, r.published, w)
	}
	if r.published == w {
		return nil
	}
	if _, err := r.FlushTo(ctx, w); err != nil {
		return err
	}
	if r.published != w {
		return fmt.Errorf("range %d of tenant %d at %d, successors open at %d: %w", r.id, r.tenant, r.published, w, ErrNotReady)
	}
	return nil
}

// tiles checks that sorted spans cover exactly [start, end).
func tiles(sorted []Successor, start, end []byte) error {
	next := start
	for i, c := range sorted {
		if !bytes.Equal(c.Start, next) || (len(c.End) > 0 && bytes.Compare(c.Start, c.End) >= 0) {
			return fmt.Errorf("successor %d [%x, %x) does not continue at %x", c.ID, c.Start, c.End, next)
		}
		if len(c.End) == 0 {
			next = nil
		} else {
			next = c.End
		}
		if next == nil && i != len(sorted)-1 {
			return fmt.Errorf("successor %d is unbounded but not the last", c.ID)
		}
	}
	if len(sorted) == 0 || !bytes.Equal(next, end) {
		return fmt.Errorf("successors end at %x, not at %x", next, end)
	}
	return nil
}

// openedAt reads the OPEN entries of children that exist already (an
// earlier attempt): they fix the watermark the split or merge happens at.
func openedAt(ctx context.Context, store objstore.Store, tenant uint64, children []Successor) (uint64, bool, error) {
	var w uint64
	found := false
	for _, c := range children {
		e, err := pool.GetEntry(ctx, store, tenant, c.ID, 1)
		if errors.Is(err, objstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, false, fmt.Errorf("read OPEN entry of range %d: %w", c.ID, err)
		}
		if found && e.PrevWatermark != w {
			return 0, false, fmt.Errorf("successors opened at %d and %d", w, e.PrevWatermark)
		}
		w, found = e.PrevWatermark, true
	}
	return w, found, nil
}

// splitMap cuts m at the boundaries between sorted children.
func splitMap(m *watermark.Map, sorted []Successor) ([]*watermark.Map, error) {
	out := make([]*watermark.Map, 0, len(sorted))
	rest := m
	for _, c := range sorted[:len(sorted)-1] {
		left, right, err := rest.Split(c.End)
		if err != nil {
			return nil, err
		}
		out = append(out, left)
		rest = right
	}
	return append(out, rest), nil
}

func spanFilter(start, end []byte) func([]byte) bool {
	return func(k []byte) bool {
		return bytes.Compare(k, start) >= 0 && (len(end) == 0 || bytes.Compare(k, end) < 0)
	}
}

func hasSnapshot(ctx context.Context, store objstore.Store, tenant, id uint64) (bool, error) {
	page, _, err := store.List(ctx, layout.SorterSnapshotPrefix(tenant, id), "", 1)
	if err != nil {
		return false, fmt.Errorf("list snapshots of range %d: %w", id, err)
	}
	return len(page) > 0, nil
}

// childHeader is the header of a child's first snapshot: number 1 at the
// epoch its OPEN entry was written with.
func childHeader(cw *pool.RangeWriter, tenant uint64, c Successor, w uint64, pos []*formatv1.StorePosition) *formatv1.SorterSnapshotHeader {
	return &formatv1.SorterSnapshotHeader{TenantId: tenant, RangeId: c.ID, OwnerEpoch: cw.Epoch(), Number: 1,
		PublishedWatermark: w, LogSeq: cw.Seq(), CreatedUnixMs: time.Now().UnixMilli(), StartKey: c.Start, EndKey: c.End,
		OpenedAt: w, Positions: pos}
}

func putChildSnapshot(ctx context.Context, store objstore.Store, h *formatv1.SorterSnapshotHeader, b []byte) error {
	key := layout.SorterSnapshotKey(h.TenantId, h.RangeId, h.OwnerEpoch, h.Number)
	if err := store.PutIfAbsent(ctx, key, b); err != nil && !errors.Is(err, objstore.ErrExists) {
		return fmt.Errorf("write snapshot %s: %w", key, err)
	}
	return nil
}
