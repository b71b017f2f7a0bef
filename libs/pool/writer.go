package pool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	"google.golang.org/protobuf/proto"
)

// RangeWriter is one range as its owner publishes it: its range log (OPEN,
// TAKEOVER, SEAL) and its attachment to the owner's group, which publishes
// its rows and watermarks. It is not safe for concurrent use (the group
// writer it stages flushes for is).
type RangeWriter struct {
	store  objstore.Store
	group  *GroupWriter
	att    *attachment
	tenant uint64
	id     uint64
	epoch  uint64
	head   *formatv1.RangeLogEntry // last entry of the log
	open   *formatv1.RangeLogEntry // the OPEN entry (bounds, parents)
	v1     bool                    // the log still holds version 1 FLUSH entries
	now    func() time.Time
}

// RangeSpec describes a range to open.
type RangeSpec struct {
	Tenant, RangeID uint64
	Start, End      []byte   // raw TiDB keys, End nil = unbounded
	OpenedAt        uint64   // the range holds rows with commit_ts > OpenedAt
	Parents         []uint64 // ranges it was split or merged from
}

// maxTakeAttempts bounds the rounds of a takeover that keeps losing the
// race for the next log entry to other new owners.
const maxTakeAttempts = 8

// CreateRange attaches a new range to group g and writes its OPEN entry,
// naming the group and the first publication that lists it. If the range
// already exists with the same spec, it is taken over instead (OpenRange;
// creation is idempotent for retries).
func CreateRange(ctx context.Context, g *GroupWriter, spec RangeSpec, epoch uint64) (*RangeWriter, error) {
	if spec.Tenant != g.tenant {
		return nil, fmt.Errorf("create range %d of tenant %d in a group of tenant %d", spec.RangeID, spec.Tenant, g.tenant)
	}
	a, err := g.attach(spec.RangeID, epoch, spec.OpenedAt, 0)
	if err != nil {
		return nil, err
	}
	e := &formatv1.RangeLogEntry{Kind: formatv1.RangeLogEntry_KIND_OPEN, PrevWatermark: spec.OpenedAt, Watermark: spec.OpenedAt,
		StartKey: spec.Start, EndKey: spec.End, ParentRangeIds: spec.Parents, Group: g.id, GroupSeq: a.first}
	w := &RangeWriter{store: g.store, group: g, tenant: spec.Tenant, id: spec.RangeID, epoch: epoch, now: time.Now}
	err = w.append(ctx, e)
	if err == nil {
		w.att, w.open = a, w.head
		return w, nil
	}
	g.detach(a)
	if !errors.Is(err, ErrFenced) {
		return nil, err
	}
	open, gerr := GetEntry(ctx, g.store, spec.Tenant, spec.RangeID, 1)
	if gerr != nil {
		return nil, gerr
	}
	if !bytes.Equal(open.StartKey, spec.Start) || !bytes.Equal(open.EndKey, spec.End) || open.PrevWatermark != spec.OpenedAt {
		return nil, fmt.Errorf("create range %d of tenant %d: it exists with other bounds or start", spec.RangeID, spec.Tenant)
	}
	return OpenRange(ctx, g, spec.Tenant, spec.RangeID, epoch)
}

// OpenRange takes an existing range over as owner with the given epoch and
// attaches it to group g. Unless the log's current segment is already this
// group's attachment at this epoch, it ends the previous segment first: a
// FENCE publication for the range in the group that publishes it (the old
// writer can never publish it again), then r's final watermark there, then
// a TAKEOVER entry naming where the old segment ended and where the new one
// starts (g, the first publication that lists the range). Losing the race
// for that entry to another owner starts over (or fails with ErrFenced when
// it has a greater epoch). An epoch lower than the log head's fails with
// ErrFenced; a sealed range fails too.
func OpenRange(ctx context.Context, g *GroupWriter, tenant, rangeID, epoch uint64) (*RangeWriter, error) {
	if tenant != g.tenant {
		return nil, fmt.Errorf("open range %d of tenant %d in a group of tenant %d", rangeID, tenant, g.tenant)
	}
	for attempt := 1; ; attempt++ {
		w, again, err := openRange(ctx, g, tenant, rangeID, epoch)
		if !again || attempt >= maxTakeAttempts {
			if again {
				err = fmt.Errorf("range %d of tenant %d: lost the race for the next log entry %d times", rangeID, tenant, attempt)
			}
			return w, err
		}
	}
}

// openRange is one attempt of OpenRange; again means another owner wrote
// the next log entry first.
func openRange(ctx context.Context, g *GroupWriter, tenant, rangeID, epoch uint64) (_ *RangeWriter, again bool, _ error) {
	w := &RangeWriter{store: g.store, group: g, tenant: tenant, id: rangeID, epoch: epoch, now: time.Now}
	head, first, err := FindHead(ctx, g.store, tenant, rangeID)
	if err != nil {
		return nil, false, err
	}
	w.head = head
	if head.Seq == 1 {
		w.open = head
	} else if w.open, err = GetEntry(ctx, g.store, tenant, rangeID, 1); err != nil {
		return nil, false, fmt.Errorf("range %d of tenant %d: read OPEN entry: %w", rangeID, tenant, err)
	}
	switch {
	case head.OwnerEpoch > epoch:
		return nil, false, fmt.Errorf("range %d of tenant %d: epoch %d, log at epoch %d: %w", rangeID, tenant, epoch, head.OwnerEpoch, ErrFenced)
	case head.Kind == formatv1.RangeLogEntry_KIND_SEAL:
		return nil, false, fmt.Errorf("range %d of tenant %d is sealed", rangeID, tenant)
	}
	if w.v1, err = hasV1Flushes(ctx, g.store, tenant, rangeID, head, first); err != nil {
		return nil, false, err
	}
	if head.Group == g.id && head.OwnerEpoch == epoch {
		// Ours already (a child this process opened for a split or merge).
		g.mu.Lock()
		a := g.members[rangeID]
		g.mu.Unlock()
		if a != nil && a.first == head.GroupSeq {
			w.att = a
			return w, false, nil
		}
	}
	e := &formatv1.RangeLogEntry{Kind: formatv1.RangeLogEntry_KIND_TAKEOVER, Group: g.id}
	wm, minSeq := head.Watermark, uint64(0)
	if head.Group != "" {
		fence, err := FenceRange(ctx, g.store, tenant, head.Group, rangeID, epoch, head.GroupSeq, g.owner)
		if err != nil {
			return nil, false, fmt.Errorf("range %d of tenant %d: fence it in group %s: %w", rangeID, tenant, head.Group, err)
		}
		if g.o.OnFence != nil {
			g.o.OnFence(head.Group, fence)
		}
		last, end, err := segmentEnd(ctx, g.store, tenant, head.Group, rangeID, head.GroupSeq, fence, head.Watermark, head.OwnerEpoch)
		if err != nil {
			return nil, false, fmt.Errorf("range %d of tenant %d: find where its segment in group %s ended: %w", rangeID, tenant, head.Group, err)
		}
		e.PrevGroup, e.PrevGroupSeq, wm = head.Group, last, end
		if head.Group == g.id {
			minSeq = fence + 1
		}
	}
	a, err := g.attach(rangeID, epoch, wm, minSeq)
	if err != nil {
		return nil, false, err
	}
	e.PrevWatermark, e.Watermark, e.GroupSeq = wm, wm, a.first
	if err := w.append(ctx, e); err != nil {
		g.detach(a)
		return nil, errors.Is(err, ErrFenced), err
	}
	w.att = a
	return w, false, nil
}

// hasV1Flushes reports whether the log's retained entries include version 1
// FLUSH entries, which range log retention compacts.
func hasV1Flushes(ctx context.Context, store objstore.Store, tenant, rangeID uint64, head *formatv1.RangeLogEntry, first uint64) (bool, error) {
	if head.Kind == formatv1.RangeLogEntry_KIND_FLUSH {
		return true, nil
	}
	seq := max(first, 2)
	if seq >= head.Seq {
		return false, nil
	}
	e, err := GetEntry(ctx, store, tenant, rangeID, seq)
	if errors.Is(err, objstore.ErrNotFound) {
		return false, nil // compacted meanwhile
	}
	if err != nil {
		return false, err
	}
	return e.Kind == formatv1.RangeLogEntry_KIND_FLUSH, nil
}

// Tenant is the range's tenant.
func (w *RangeWriter) Tenant() uint64 { return w.tenant }

// ID is the range id.
func (w *RangeWriter) ID() uint64 { return w.id }

// Watermark is the range's published watermark: the last one a durable
// publication of its group listed it with.
func (w *RangeWriter) Watermark() uint64 {
	wm, _, _ := w.group.durable(w.att)
	return wm
}

// Seq is the seq of the last entry of the range log.
func (w *RangeWriter) Seq() uint64 { return w.head.Seq }

// Epoch is the owner epoch this writer writes with.
func (w *RangeWriter) Epoch() uint64 { return w.epoch }

// Group is the group that publishes the range.
func (w *RangeWriter) Group() *GroupWriter { return w.group }

// HasV1Flushes reports whether the range's log held version 1 FLUSH entries
// when it was opened (its retention still has those to compact).
func (w *RangeWriter) HasV1Flushes() bool { return w.v1 }

// Fenced reports whether a new owner fenced the range out of the group.
func (w *RangeWriter) Fenced() bool {
	_, _, fenced := w.group.durable(w.att)
	return fenced
}

// CheckTaken reads whether the range's log has an entry after the last one
// this writer knows: a newer owner's TAKEOVER (OpenRange writes it before it
// reads the range's snapshots). It returns an error matching ErrFenced if
// so, nil if not, or the read's error. One ranged GET of a key that is
// normally missing. A writer that checks after writing something the next
// owner reads after its TAKEOVER (a snapshot) and finds nothing knows that
// owner will read it: the store is read-after-write consistent.
func (w *RangeWriter) CheckTaken(ctx context.Context) error {
	seq := uint64(1)
	if w.head != nil {
		seq = w.head.Seq + 1
	}
	_, err := w.store.GetRange(ctx, layout.RangeLogKey(w.tenant, w.id, seq), 0, 1)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("range %d of tenant %d: read log entry %d: %w", w.id, w.tenant, seq, err)
	}
	return fmt.Errorf("range %d of tenant %d: epoch %d: log entry %d written by another owner: %w", w.id, w.tenant, w.epoch, seq, ErrFenced)
}

// Bounds are the range's keys and the ts it was opened at.
func (w *RangeWriter) Bounds() (start, end []byte, openedAt uint64) {
	return w.open.StartKey, w.open.EndKey, w.open.PrevWatermark
}

// append completes e as the next entry and creates it with put-if-absent.
// Losing the race means another owner wrote that seq: ErrFenced.
func (w *RangeWriter) append(ctx context.Context, e *formatv1.RangeLogEntry) error {
	e.Seq = 1
	if w.head != nil {
		e.Seq = w.head.Seq + 1
	}
	head, err := appendEntry(ctx, w.store, w.tenant, w.id, w.epoch, w.group.owner, w.now, e)
	if err != nil {
		return err
	}
	w.head = head
	return nil
}

// appendEntry fills in e's identity, checks it and creates it at its seq
// with put-if-absent, refreshing the head hint now and then; it returns a
// copy of what it wrote. Losing the race means another owner wrote that
// seq: ErrFenced.
func appendEntry(ctx context.Context, store objstore.Store, tenant, rangeID, epoch uint64, owner string, now func() time.Time, e *formatv1.RangeLogEntry) (*formatv1.RangeLogEntry, error) {
	e.TenantId, e.RangeId, e.OwnerEpoch, e.Owner = tenant, rangeID, epoch, owner
	if e.CreatedUnixMs == 0 {
		e.CreatedUnixMs = now().UnixMilli()
	}
	if err := checkEntry(e); err != nil {
		return nil, fmt.Errorf("range %d of tenant %d: refusing to write a bad entry: %w", rangeID, tenant, err)
	}
	b, err := EncodeEntry(e)
	if err != nil {
		return nil, err
	}
	key := layout.RangeLogKey(tenant, rangeID, e.Seq)
	if err := store.PutIfAbsent(ctx, key, b); err != nil {
		if errors.Is(err, objstore.ErrExists) {
			// The object store resolves a lost reply by reading back: an
			// ErrExists here is someone else's entry.
			return nil, fmt.Errorf("range %d of tenant %d: seq %d taken by another owner: %w", rangeID, tenant, e.Seq, ErrFenced)
		}
		return nil, fmt.Errorf("publish %s: %w", key, err)
	}
	if e.Seq%hintEvery == 0 {
		// Best effort: a stale or missing hint only makes FindHead list more.
		_ = store.Put(ctx, headHintKey(tenant, rangeID), []byte(layout.Pad(e.Seq)))
	}
	return proto.Clone(e).(*formatv1.RangeLogEntry), nil
}

// RowSource yields the rows of one flush in Compare order. yield keeps
// neither the *Row nor its slices after it returns: a source may pass the
// same Row, refilled, every time (no allocation per row).
type RowSource func(yield func(*Row) error) error

// FlushOptions tune one flush.
type FlushOptions struct {
	// SizeHint is about how many bytes of rows (Row key, value and old
	// value) the flush writes, so the section is built in one buffer of the
	// right size.
	SizeHint int
	// Rows is how many rows that is, when known (0: not known). With it the
	// section's buffer is sized to hold them for certain (SectionBound), so
	// it never grows by doubling into fresh memory.
	Rows int
}

// maxRecordOverhead bounds what a row's record adds to its key, value and
// old value: the record's length and the CommittedRow fields' tags,
// lengths and varints (commit_ts and start_ts at most 10 bytes each).
const maxRecordOverhead = binary.MaxVarintLen32 + 2*(1+binary.MaxVarintLen64) + 2 + 3*(1+binary.MaxVarintLen32)

// SectionBound is an upper bound of the size of a committed data file
// holding rows of rowBytes payload: the records, the header, the block
// headers and their index entries, the trailer.
func SectionBound(rows, rowBytes int) int {
	payload := rowBytes + rows*maxRecordOverhead
	return payload + payload/32 + 4096
}

// Staged is one range's flush waiting for its group's next publication:
// the watermark it moves to and its rows, encoded. After Publish it is
// Done (published), Fenced, or neither (not published: stage it again).
type Staged struct {
	w               *RangeWriter
	att             *attachment
	Prev, Watermark uint64
	data            [][]byte // the section (a committed data file) in the parts it was built in; nil: no rows, or published
	size            int      // the section's bytes when staged
	rows            uint64
	min, max        uint64
	seq             uint64
	state           atomic.Int32
}

const (
	stagePending int32 = iota
	stageDone
	stageFenced
	stageFailed
)

// Rows is the number of rows staged.
func (s *Staged) Rows() uint64 { return s.rows }

// Bytes is the size of the staged section.
func (s *Staged) Bytes() int { return s.size }

// Done reports whether a durable publication holds the flush.
func (s *Staged) Done() bool { return s.state.Load() == stageDone }

// Fenced reports whether the range was fenced out before the flush was
// published: it never will be.
func (s *Staged) Fenced() bool { return s.state.Load() == stageFenced }

// Pending reports whether no publication has settled the flush yet.
func (s *Staged) Pending() bool { return s.state.Load() == stagePending }

// Seq is the publication that holds the flush (0 until Done).
func (s *Staged) Seq() uint64 { return s.seq }

// Stage prepares publishing watermark wm: the rows with published
// watermark < commit_ts <= wm, read from rows, become the range's section
// of the group's next publication (none if there are no rows). A flush with
// no rows still moves the watermark, so readers of idle ranges move on.
func (w *RangeWriter) Stage(wm uint64, rows RowSource, opts ...FlushOptions) (*Staged, error) {
	var o FlushOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	prev, _, fenced := w.group.durable(w.att)
	switch {
	case fenced:
		return nil, fmt.Errorf("range %d of tenant %d was fenced out of group %s: %w", w.id, w.tenant, w.group.id, ErrFenced)
	case w.att.gone:
		return nil, fmt.Errorf("range %d of tenant %d is no longer attached to group %s", w.id, w.tenant, w.group.id)
	case wm <= prev:
		return nil, fmt.Errorf("range %d of tenant %d: flush to %d, already at %d", w.id, w.tenant, wm, prev)
	}
	s := &Staged{w: w, att: w.att, Prev: prev, Watermark: wm}
	want := o.SizeHint + o.SizeHint/16 + 1024 // rows unknown: what the container would take
	if o.Rows > 0 {
		want = SectionBound(o.Rows, o.SizeHint)
	}
	// The section is built in recycled buffers: the first one that fits
	// it, or else the largest one held, going on in more (a part each)
	// when it fills up; new ones only for what the held ones cannot take.
	handed := 0 // capacity handed to the writer so far
	get := func(want, least int) []byte {
		b := w.group.bufs.get(want, least)
		handed += cap(b)
		return b
	}
	first := get(want, min(want, minPart))
	more := func(min int) []byte { return get(max(min, want-handed), min) }
	parts, ref, err := buildDataFile(&formatv1.CommittedFileHeader{TenantId: w.tenant, RangeId: w.id, OwnerEpoch: w.epoch,
		PrevWatermark: prev, Watermark: wm}, rows, o.SizeHint, first, more)
	if err != nil {
		return nil, err
	}
	if parts == nil {
		w.group.bufs.put(first) // no rows: nothing was written past the first buffer
	} else {
		s.data, s.size, s.rows, s.min, s.max = parts, int(ref.Size), ref.RowCount, ref.MinCommitTs, ref.MaxCommitTs
	}
	return s, nil
}

// buildDataFile encodes the rows of (h.PrevWatermark, h.Watermark] from
// rows as a committed data file, in buf's memory when it has some; nil
// when there are none.
func buildDataFile(h *formatv1.CommittedFileHeader, rows RowSource, sizeHint int, buf []byte, more func(int) []byte) ([][]byte, *formatv1.CommittedFileRef, error) {
	if rows == nil {
		return nil, nil, nil
	}
	df, err := newDataFile(h, sizeHint, buf, more)
	if err != nil {
		return nil, nil, err
	}
	if err := rows(df.Add); err != nil {
		return nil, nil, fmt.Errorf("range %d of tenant %d: collect rows of (%d, %d]: %w", h.RangeId, h.TenantId, h.PrevWatermark, h.Watermark, err)
	}
	if df.Rows() == 0 {
		return nil, nil, nil
	}
	return df.finishParts()
}

// Flush stages wm and publishes it at once in its own publication of the
// group (a split or merge needs its watermark durable now; tests).
func (w *RangeWriter) Flush(ctx context.Context, wm uint64, rows RowSource, opts ...FlushOptions) (*Staged, error) {
	s, err := w.Stage(wm, rows, opts...)
	if err != nil {
		return nil, err
	}
	if _, err := w.group.Publish(ctx, []*Staged{s}); err != nil {
		return nil, err
	}
	switch {
	case s.Fenced():
		return nil, fmt.Errorf("range %d of tenant %d was fenced out of group %s: %w", w.id, w.tenant, w.group.id, ErrFenced)
	case !s.Done():
		return nil, fmt.Errorf("range %d of tenant %d: the group's publication did not include it yet", w.id, w.tenant)
	}
	return s, nil
}

// Seal ends the range at its published watermark: a SEAL entry naming the
// last publication that listed it, then the range leaves the group. The
// successors continue its keys from there.
func (w *RangeWriter) Seal(ctx context.Context, successors []uint64) error {
	wm, last, fenced := w.group.durable(w.att)
	if fenced {
		return fmt.Errorf("range %d of tenant %d was fenced out of group %s: %w", w.id, w.tenant, w.group.id, ErrFenced)
	}
	err := w.append(ctx, &formatv1.RangeLogEntry{Kind: formatv1.RangeLogEntry_KIND_SEAL, PrevWatermark: wm, Watermark: wm,
		SuccessorRangeIds: successors, Group: w.group.id, GroupSeq: last})
	if err != nil {
		return err
	}
	w.group.detach(w.att)
	return nil
}

// Close detaches the range from its group (it is released): the group's
// next publication does not list it; its next owner takes it over.
func (w *RangeWriter) Close() { w.group.detach(w.att) }
