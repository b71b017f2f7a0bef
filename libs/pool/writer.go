package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	"google.golang.org/protobuf/proto"
)

// RangeWriter publishes one range as its owner. It is not safe for
// concurrent use.
type RangeWriter struct {
	store  objstore.Store
	tenant uint64
	id     uint64
	epoch  uint64
	owner  string
	head   *formatv1.RangeLogEntry // last entry of the log
	open   *formatv1.RangeLogEntry // the OPEN entry (bounds, parents)
	now    func() time.Time
}

// RangeSpec describes a range to open.
type RangeSpec struct {
	Tenant, RangeID uint64
	Start, End      []byte   // raw TiDB keys, End nil = unbounded
	OpenedAt        uint64   // the range holds rows with commit_ts > OpenedAt
	Parents         []uint64 // ranges it was split or merged from
}

// CreateRange writes the OPEN entry of a new range and returns its writer. If
// the range already exists with the same spec, it is opened instead
// (creation is idempotent for retries).
func CreateRange(ctx context.Context, store objstore.Store, spec RangeSpec, epoch uint64, owner string) (*RangeWriter, error) {
	e := &formatv1.RangeLogEntry{
		TenantId: spec.Tenant, RangeId: spec.RangeID, Seq: 1, Kind: formatv1.RangeLogEntry_KIND_OPEN,
		OwnerEpoch: epoch, Owner: owner, PrevWatermark: spec.OpenedAt, Watermark: spec.OpenedAt,
		StartKey: spec.Start, EndKey: spec.End, ParentRangeIds: spec.Parents, CreatedUnixMs: time.Now().UnixMilli(),
	}
	w := &RangeWriter{store: store, tenant: spec.Tenant, id: spec.RangeID, epoch: epoch, owner: owner, now: time.Now}
	err := w.append(ctx, e)
	if errors.Is(err, ErrFenced) {
		open, gerr := GetEntry(ctx, store, spec.Tenant, spec.RangeID, 1)
		if gerr != nil {
			return nil, gerr
		}
		if !bytes.Equal(open.StartKey, spec.Start) || !bytes.Equal(open.EndKey, spec.End) || open.PrevWatermark != spec.OpenedAt {
			return nil, fmt.Errorf("create range %d of tenant %d: it exists with other bounds or start", spec.RangeID, spec.Tenant)
		}
		return OpenRange(ctx, store, spec.Tenant, spec.RangeID, epoch, owner)
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
func OpenRange(ctx context.Context, store objstore.Store, tenant, rangeID, epoch uint64, owner string) (*RangeWriter, error) {
	w := &RangeWriter{store: store, tenant: tenant, id: rangeID, epoch: epoch, owner: owner, now: time.Now}
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
func (w *RangeWriter) Tenant() uint64 { return w.tenant }

// ID is the range id.
func (w *RangeWriter) ID() uint64 { return w.id }

// Watermark is the range's published watermark.
func (w *RangeWriter) Watermark() uint64 { return w.head.Watermark }

// Seq is the seq of the last entry.
func (w *RangeWriter) Seq() uint64 { return w.head.Seq }

// Epoch is the owner epoch this writer writes with.
func (w *RangeWriter) Epoch() uint64 { return w.epoch }

// Bounds are the range's keys and the ts it was opened at.
func (w *RangeWriter) Bounds() (start, end []byte, openedAt uint64) {
	return w.open.StartKey, w.open.EndKey, w.open.PrevWatermark
}

// append completes e as the next entry and creates it with put-if-absent.
// Losing the race means another owner wrote that seq: ErrFenced.
func (w *RangeWriter) append(ctx context.Context, e *formatv1.RangeLogEntry) error {
	e.TenantId, e.RangeId = w.tenant, w.id
	if w.head != nil {
		e.Seq = w.head.Seq + 1
	}
	e.OwnerEpoch, e.Owner = w.epoch, w.owner
	if e.CreatedUnixMs == 0 {
		e.CreatedUnixMs = w.now().UnixMilli()
	}
	if err := checkEntry(e); err != nil {
		return fmt.Errorf("range %d of tenant %d: refusing to write a bad entry: %w", w.id, w.tenant, err)
	}
	b, err := EncodeEntry(e)
	if err != nil {
		return err
	}
	key := layout.RangeLogKey(w.tenant, w.id, e.Seq)
	if err := w.store.PutIfAbsent(ctx, key, b); err != nil {
		if errors.Is(err, objstore.ErrExists) {
			// The object store resolves a lost reply by reading back: an
			// ErrExists here is someone else's entry.
			return fmt.Errorf("range %d of tenant %d: seq %d taken by another owner: %w", w.id, w.tenant, e.Seq, ErrFenced)
		}
		return fmt.Errorf("publish %s: %w", key, err)
	}
	w.head = proto.Clone(e).(*formatv1.RangeLogEntry)
	if e.Seq%hintEvery == 0 {
		// Best effort: a stale or missing hint only makes FindHead list more.
		_ = w.store.Put(ctx, headHintKey(w.tenant, w.id), []byte(layout.Pad(e.Seq)))
	}
	return nil
}

// RowSource yields the rows of one flush in Compare order.
type RowSource func(yield func(*Row) error) error

// FlushOptions tune one flush.
type FlushOptions struct {
	// SizeHint is about how many bytes of rows the flush writes, so the file
	// is built in one buffer of the right size.
	SizeHint int
}

// Flush publishes watermark wm: the rows with watermark < commit_ts <= wm,
// read from rows, are written as one data file (none if there are no rows),
// then a FLUSH entry publishes it. A flush with no rows still publishes the
// watermark, so readers of idle ranges move on.
func (w *RangeWriter) Flush(ctx context.Context, wm uint64, rows RowSource, opts ...FlushOptions) (*formatv1.RangeLogEntry, error) {
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
	if rows != nil {
		df, err := NewDataFile(&formatv1.CommittedFileHeader{TenantId: w.tenant, RangeId: w.id, OwnerEpoch: w.epoch,
			Seq: seq, PrevWatermark: prev, Watermark: wm}, o.SizeHint)
		if err != nil {
			return nil, err
		}
		if err := rows(df.Add); err != nil {
			return nil, fmt.Errorf("range %d of tenant %d: collect rows of (%d, %d]: %w", w.id, w.tenant, prev, wm, err)
		}
		if df.Rows() > 0 {
			b, ref, err := df.Finish()
			if err != nil {
				return nil, err
			}
			ref.Key = layout.DataFileKey(w.tenant, w.id, wm, seq)
			if err := w.store.PutIfAbsent(ctx, ref.Key, b); err != nil {
				if errors.Is(err, objstore.ErrExists) {
					return nil, fmt.Errorf("range %d of tenant %d: data file %s exists: %w", w.id, w.tenant, ref.Key, ErrFenced)
				}
				return nil, fmt.Errorf("write %s: %w", ref.Key, err)
			}
			e.File = ref
		}
	}
	if err := w.append(ctx, e); err != nil {
		return nil, err
	}
	return w.head, nil
}

// Seal ends the range at its published watermark; the successors continue
// its keys from there.
func (w *RangeWriter) Seal(ctx context.Context, successors []uint64) error {
	return w.append(ctx, &formatv1.RangeLogEntry{Kind: formatv1.RangeLogEntry_KIND_SEAL,
		PrevWatermark: w.head.Watermark, Watermark: w.head.Watermark, SuccessorRangeIds: successors})
}
