package sorter

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/sortbuf"
	"github.com/tistream/tistream/libs/txnmatch"
	"github.com/tistream/tistream/libs/watermark"
)

// MergeInto ends adjacent parents at one watermark W and continues their
// keys in child. It aligns them first: W is the smallest of their targets,
// and every parent behind W is flushed to it; while a parent has already
// published past that, the others are flushed towards it and ErrNotReady
// says to retry after more input (the caller must not flush the parents on
// its own meanwhile: that is how the faster one is held). Then it writes
// the child's OPEN entry (opened at W, the parents' highest owner epoch), a
// snapshot of the merged state (watermark maps merged, matcher states
// joined, rows unioned, store positions the minimum per store, over the
// stores every parent has) and seals every parent with the child as its
// only successor.
//
// parents are the ones the caller holds. If the child and its snapshot
// exist already (an earlier attempt sealed some parents and stopped), it
// only flushes the given parents to the child's opened-at ts and seals
// them; otherwise they must be all of child.Parents, tiling its span.
func MergeInto(ctx context.Context, child Successor, parents []*Range) error {
	if len(parents) == 0 {
		return fmt.Errorf("merge into range %d: no parent", child.ID)
	}
	deps, tenant := parents[0].deps, parents[0].tenant
	w, found, err := openedAt(ctx, deps.Pool, tenant, []Successor{child})
	if err != nil {
		return err
	}
	done := false
	if found {
		if done, err = hasSnapshot(ctx, deps.Snapshots, tenant, child.ID); err != nil {
			return err
		}
	}
	sorted := slices.Clone(parents)
	slices.SortFunc(sorted, func(a, b *Range) int { return bytes.Compare(a.start, b.start) })
	if !done {
		spans := make([]Successor, len(sorted))
		for i, p := range sorted {
			spans[i] = Successor{ID: p.id, Start: p.start, End: p.end}
		}
		if err := tiles(spans, child.Start, child.End); err != nil || len(sorted) != len(child.Parents) {
			return fmt.Errorf("merge into range %d of tenant %d: parents %v held here do not make it (%v): %w", child.ID, tenant, ids(sorted), err, ErrNotReady)
		}
	}
	if !found {
		if w, err = commonTarget(ctx, sorted); err != nil {
			return err
		}
	}
	for _, p := range sorted {
		if err := p.alignTo(ctx, w); err != nil {
			return err
		}
	}
	if !done {
		if err := writeMerged(ctx, child, sorted, w); err != nil {
			return err
		}
	}
	for _, p := range parents {
		if !p.sealed {
			if err := p.seal(ctx, []uint64{child.ID}); err != nil {
				return err
			}
		}
	}
	return nil
}

// commonTarget is the smallest target of the parents; if one has published
// past it already, the others are flushed towards that one and the merge
// waits (ErrNotReady).
func commonTarget(ctx context.Context, parents []*Range) (uint64, error) {
	w, top := ^uint64(0), uint64(0)
	for _, p := range parents {
		t, err := p.Target()
		if err != nil {
			return 0, err
		}
		w, top = min(w, t), max(top, p.published)
	}
	if w >= top {
		return w, nil
	}
	for _, p := range parents {
		if _, err := p.FlushTo(ctx, top); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("parents at targets down to %d, one published %d: %w", w, top, ErrNotReady)
}

// writeMerged writes the child's OPEN entry and its first snapshot.
func writeMerged(ctx context.Context, child Successor, sorted []*Range, w uint64) error {
	deps, tenant := sorted[0].deps, sorted[0].tenant
	var epoch uint64
	for _, p := range sorted {
		epoch = max(epoch, p.writer.Epoch())
	}
	cw, err := pool.CreateRange(ctx, sorted[0].writer.Group(), pool.RangeSpec{Tenant: tenant, RangeID: child.ID, Start: child.Start,
		End: child.End, OpenedAt: w, Parents: child.Parents}, epoch)
	if err != nil {
		return fmt.Errorf("merge into range %d of tenant %d: open it: %w", child.ID, tenant, err)
	}
	wm := sorted[0].wm
	for _, p := range sorted[1:] {
		if wm, err = watermark.Merge(wm, p.wm); err != nil {
			return fmt.Errorf("merge into range %d of tenant %d: watermark maps: %w", child.ID, tenant, err)
		}
	}
	wmBytes, err := wm.MarshalBinary()
	if err != nil {
		return err
	}
	snaps := make([][]byte, len(sorted))
	for i, p := range sorted {
		var b bytes.Buffer
		if err := p.match.Snapshot(&b); err != nil {
			return fmt.Errorf("merge into range %d: matcher of range %d: %w", child.ID, p.id, err)
		}
		snaps[i] = b.Bytes()
	}
	type spilledRow struct {
		startTs    uint64
		key, value []byte
	}
	var respilled []spilledRow
	var mb bytes.Buffer
	err = txnmatch.MergeSnapshots(&mb, func(startTs uint64, key, value []byte) error {
		respilled = append(respilled, spilledRow{startTs, bytes.Clone(key), value})
		return nil
	}, snaps...)
	if err != nil {
		return fmt.Errorf("merge into range %d of tenant %d: matchers: %w", child.ID, tenant, err)
	}
	rows := func(yield func(sortbuf.Row) error) error {
		for _, p := range sorted {
			if err := p.unflushed(nil)(yield); err != nil {
				return err
			}
		}
		return nil
	}
	spilled := func(yield func(uint64, []byte, []byte) error) error {
		for _, p := range sorted {
			if err := p.spilled(nil)(yield); err != nil {
				return err
			}
		}
		for _, s := range respilled {
			if err := yield(s.startTs, s.key, s.value); err != nil {
				return err
			}
		}
		return nil
	}
	h := childHeader(cw, tenant, child, w, positions(minPositions(sorted)))
	b, err := encodeSnapshot(h, wmBytes, mb.Bytes(), rows, spilled)
	if err != nil {
		return fmt.Errorf("merge into range %d of tenant %d: %w", child.ID, tenant, err)
	}
	return putChildSnapshot(ctx, deps.Snapshots, h, b)
}

// minPositions is, for each store every parent has applied, the smallest
// seq: the child is fed again from there, and whatever a parent applied
// past it is a harmless redelivery.
func minPositions(parents []*Range) map[uint64]uint64 {
	out := map[uint64]uint64{}
	for s, seq := range parents[0].applied {
		out[s] = seq
		for _, p := range parents[1:] {
			q, ok := p.applied[s]
			if !ok {
				delete(out, s)
				break
			}
			out[s] = min(out[s], q)
		}
	}
	return out
}

func ids(rs []*Range) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.id
	}
	return out
}
