package pool

// The version 1 writer, kept as test code: it produces pools as TiStream
// wrote them before group publications (a FLUSH entry and a data file per
// range and flush), for the compatibility tests and the range log retention
// tests (version 1 FLUSH entries are still compacted).

import (
	"testing"

	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/stretchr/testify/require"
	"time"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// v1Writer publishes one range as its owner in format version 1.
type v1Writer struct {
	store  objstore.Store
	tenant uint64
	id     uint64
	epoch  uint64
	owner  string
	head   *formatv1.RangeLogEntry // last entry of the log
	open   *formatv1.RangeLogEntry // the OPEN entry (bounds, parents)
	now    func() time.Time
}

// v1CreateRange writes the OPEN entry of a new range and returns its writer. If
// the range already exists with the same spec, it is opened instead
// (creation is idempotent for retries).
func v1CreateRange(ctx context.Context, store objstore.Store, spec RangeSpec, epoch uint64, owner string) (*v1Writer, error) {
	e := &formatv1.RangeLogEntry{
		TenantId: spec.Tenant, RangeId: spec.RangeID, Seq: 1, Kind: formatv1.RangeLogEntry_KIND_OPEN,
		OwnerEpoch: epoch, Owner: owner, PrevWatermark: spec.OpenedAt, Watermark: spec.OpenedAt,
		StartKey: spec.Start, EndKey: spec.End, ParentRangeIds: spec.Parents, CreatedUnixMs: time.Now().UnixMilli(),
	}
	w := &v1Writer{store: store, tenant: spec.Tenant, id: spec.RangeID, epoch: epoch, owner: owner, now: time.Now}
	err := w.append(ctx, e)
	if errors.Is(err, ErrFenced) {
		open, gerr := GetEntry(ctx, store, spec.Tenant, spec.RangeID, 1)
		if gerr != nil {
			return nil, gerr
		}
		if !bytes.Equal(open.StartKey, spec.Start) || !bytes.Equal(open.EndKey, spec.End) || open.PrevWatermark != spec.OpenedAt {
			return nil, fmt.Errorf("create range %d of tenant %d: it exists with other bounds or start", spec.RangeID, spec.Tenant)
		}
		return v1OpenRange(ctx, store, spec.Tenant, spec.RangeID, epoch, owner)
	}
	if err != nil {
		return nil, err
	}
	w.open = e
	return w, nil
}

// OpenRange takes an existing range over as owner with the given epoch: it
// finds the log head and, unless the head was written with this epoch
// already, appends a TAKEOVER entry, after which every older owner is
// fenced. An epoch lower than the head's fails with ErrFenced.
func v1OpenRange(ctx context.Context, store objstore.Store, tenant, rangeID, epoch uint64, owner string) (*v1Writer, error) {
	w := &v1Writer{store: store, tenant: tenant, id: rangeID, epoch: epoch, owner: owner, now: time.Now}
	head, _, err := FindHead(ctx, store, tenant, rangeID)
	if err != nil {
		return nil, err
	}
	w.open, err = GetEntry(ctx, store, tenant, rangeID, 1)
	if err != nil {
		return nil, fmt.Errorf("range %d of tenant %d: read OPEN entry: %w", rangeID, tenant, err)
	}
	w.head = head
	switch {
	case head.OwnerEpoch > epoch:
		return nil, fmt.Errorf("range %d of tenant %d: epoch %d, log at epoch %d: %w", rangeID, tenant, epoch, head.OwnerEpoch, ErrFenced)
	case head.Kind == formatv1.RangeLogEntry_KIND_SEAL:
		return nil, fmt.Errorf("range %d of tenant %d is sealed", rangeID, tenant)
	case head.OwnerEpoch == epoch:
		return w, nil
	}
	err = w.append(ctx, &formatv1.RangeLogEntry{Kind: formatv1.RangeLogEntry_KIND_TAKEOVER,
		PrevWatermark: head.Watermark, Watermark: head.Watermark})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Tenant is the range's tenant.
func (w *v1Writer) Tenant() uint64 { return w.tenant }

// ID is the range id.
func (w *v1Writer) ID() uint64 { return w.id }

// Watermark is the range's published watermark.
func (w *v1Writer) Watermark() uint64 { return w.head.Watermark }

// Seq is the seq of the last entry.
func (w *v1Writer) Seq() uint64 { return w.head.Seq }

// Epoch is the owner epoch this writer writes with.
func (w *v1Writer) Epoch() uint64 { return w.epoch }

// Bounds are the range's keys and the ts it was opened at.
func (w *v1Writer) Bounds() (start, end []byte, openedAt uint64) {
	return w.open.StartKey, w.open.EndKey, w.open.PrevWatermark
}

// append completes e as the next entry and creates it with put-if-absent.
func (w *v1Writer) append(ctx context.Context, e *formatv1.RangeLogEntry) error {
	if w.head != nil {
		e.Seq = w.head.Seq + 1
	}
	head, err := appendEntry(ctx, w.store, w.tenant, w.id, w.epoch, w.owner, w.now, e)
	if err != nil {
		return err
	}
	w.head = head
	return nil
}

// Flush publishes watermark wm: the rows with watermark < commit_ts <= wm,
// read from rows, are written as one data file (none if there are no rows),
// then a FLUSH entry publishes it. A flush with no rows still publishes the
// watermark, so readers of idle ranges move on.
func (w *v1Writer) Flush(ctx context.Context, wm uint64, rows RowSource, opts ...FlushOptions) (*formatv1.RangeLogEntry, error) {
	var o FlushOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	prev := w.head.Watermark
	if wm <= prev {
		return nil, fmt.Errorf("range %d of tenant %d: flush to %d, already at %d", w.id, w.tenant, wm, prev)
	}
	seq := w.head.Seq + 1
	e := &formatv1.RangeLogEntry{Kind: formatv1.RangeLogEntry_KIND_FLUSH, PrevWatermark: prev, Watermark: wm}
	b, ref, err := buildDataFile(&formatv1.CommittedFileHeader{TenantId: w.tenant, RangeId: w.id, OwnerEpoch: w.epoch,
		Seq: seq, PrevWatermark: prev, Watermark: wm}, rows, o.SizeHint, nil, nil)
	if err != nil {
		return nil, err
	}
	if b != nil {
		ref.Key = layout.DataFileKey(w.tenant, w.id, wm, seq)
		if err := w.store.PutIfAbsent(ctx, ref.Key, b[0]); err != nil { // one part: no More
			if errors.Is(err, objstore.ErrExists) {
				return nil, fmt.Errorf("range %d of tenant %d: data file %s exists: %w", w.id, w.tenant, ref.Key, ErrFenced)
			}
			return nil, fmt.Errorf("write %s: %w", ref.Key, err)
		}
		e.File = ref
	}
	if err := w.append(ctx, e); err != nil {
		return nil, err
	}
	return w.head, nil
}

// Seal ends the range at its published watermark; the successors continue
// its keys from there.
func (w *v1Writer) Seal(ctx context.Context, successors []uint64) error {
	return w.append(ctx, &formatv1.RangeLogEntry{Kind: formatv1.RangeLogEntry_KIND_SEAL,
		PrevWatermark: w.head.Watermark, Watermark: w.head.Watermark, SuccessorRangeIds: successors})
}

// publishV1 flushes rows in chunks at the given watermarks, in format 1.
func publishV1(t *testing.T, w *v1Writer, all []Row, wms []uint64) {
	for _, wm := range wms {
		_, err := w.Flush(ctx, wm, rowsIn(all, w.Watermark(), wm))
		require.NoError(t, err)
	}
}
