package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// ErrCompacted means the rows asked for have expired from the pool: the
// start ts is older than the retention window.
var ErrCompacted = errors.New("start ts is older than the retained data")

// Chunk is what one range log entry brings a reader: the rows it publishes
// that the reader asked for (commit_ts >= from), and the watermark after it.
type Chunk struct {
	Rows      []Row
	Watermark uint64
	// Sealed: the range ended at Watermark; Successors continue its keys.
	Sealed     bool
	Successors []uint64
}

// RangeReader follows one range's log from a start ts.
type RangeReader struct {
	store  objstore.Store
	tenant uint64
	id     uint64
	from   uint64
	seq    uint64 // last entry consumed
	wm     uint64
	epoch  uint64
	next   *formatv1.RangeLogEntry // entry fetched during Seek, consumed first
	sealed bool
	cache  *Cache // shared decoded objects, or nil
	// floorChecked is when the reader last looked whether its next entry
	// fell below the retention floor.
	floorChecked time.Time
	// OpenedAt is the ts the range starts after (rows have commit_ts > OpenedAt).
	OpenedAt uint64
	Start    []byte
	End      []byte
}

// OpenRangeReader positions a reader so that it returns every row of the
// range with commit_ts >= from, using one listing of the data files (named
// by watermark) instead of reading the log from its start.
func OpenRangeReader(ctx context.Context, store objstore.Store, tenant, id, from uint64) (*RangeReader, error) {
	return OpenRangeReaderWith(ctx, store, tenant, id, from, ReadOptions{})
}

// OpenRangeReaderWith is OpenRangeReader with read options (a shared cache).
func OpenRangeReaderWith(ctx context.Context, store objstore.Store, tenant, id, from uint64, o ReadOptions) (*RangeReader, error) {
	for attempt := 1; ; attempt++ {
		r, moved, err := openRangeReader(ctx, store, tenant, id, from, o)
		if err != nil || !moved {
			return r, err
		}
		// Compaction moved the range's floor while we looked: what we
		// listed may lack files it deleted. Look again; the next look
		// answers ErrCompacted if from is gone by now.
		if attempt == 3 {
			return nil, fmt.Errorf("range %d of tenant %d: rows from ts %d are being compacted away as they are read: %w", id, tenant, from, ErrCompacted)
		}
	}
}

// openRangeReader is one attempt of OpenRangeReaderWith; moved means the
// range's retention floor moved during it, so the position is not to be
// trusted (see compact.go).
func openRangeReader(ctx context.Context, store objstore.Store, tenant, id, from uint64, o ReadOptions) (_ *RangeReader, moved bool, _ error) {
	r := &RangeReader{store: store, tenant: tenant, id: id, from: from, cache: o.Cache}
	head, first, floor, err := findHead(ctx, store, tenant, id)
	if err != nil {
		return nil, false, err
	}
	firstEntry, err := r.getEntry(ctx, first)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, true, nil // deleted since listed
	}
	if err != nil {
		return nil, false, err
	}
	if first == 1 {
		r.OpenedAt, r.Start, r.End = firstEntry.PrevWatermark, firstEntry.StartKey, firstEntry.EndKey
	} else {
		open, err := r.getEntry(ctx, 1)
		if err != nil && !errors.Is(err, objstore.ErrNotFound) {
			return nil, false, err
		}
		if open != nil {
			r.OpenedAt, r.Start, r.End = open.PrevWatermark, open.StartKey, open.EndKey
		}
		if from <= firstEntry.PrevWatermark {
			return nil, false, fmt.Errorf("range %d of tenant %d keeps rows after ts %d (the oldest start ts is %d), asked from %d: %w",
				id, tenant, firstEntry.PrevWatermark, firstEntry.PrevWatermark+1, from, ErrCompacted)
		}
	}
	// The head was read before listing data files, so every file published
	// at or before it is in the listing; files published later are reached
	// by following the log.
	files, _, err := store.List(ctx, layout.DataPrefix(tenant, id), layout.DataFileStartAfter(tenant, id, from), 64)
	if err != nil {
		return nil, false, fmt.Errorf("list data files of range %d: %w", id, err)
	}
	positioned := false
	for _, f := range files {
		_, seq, err := layout.ParseDataFileKey(f.Key)
		if err != nil || seq > head.Seq || seq < first {
			continue
		}
		e, err := r.getEntry(ctx, seq)
		if err != nil {
			if errors.Is(err, objstore.ErrNotFound) {
				// At or above the first entry and at or below the head:
				// only compaction deletes such an entry.
				return nil, true, nil
			}
			return nil, false, err
		}
		if e.File == nil || e.File.Key != f.Key {
			continue // an orphan of a fenced owner
		}
		r.seq, r.wm, r.next = seq-1, e.PrevWatermark, e
		positioned = true
		break
	}
	if !positioned {
		// No published file holds rows >= from: start at the head.
		r.seq, r.wm, r.epoch = head.Seq, head.Watermark, head.OwnerEpoch
		r.sealed = head.Kind == formatv1.RangeLogEntry_KIND_SEAL
		if r.sealed {
			r.next = head
			r.seq--
		}
	}
	// Compaction moves the floor before it deletes anything: an unchanged
	// floor means the listing above missed no file at or above first.
	again, err := readFloor(ctx, store, tenant, id)
	if err != nil {
		return nil, false, err
	}
	if again != floor {
		return nil, true, nil
	}
	r.floorChecked = time.Now()
	return r, false, nil
}

// ID is the range id.
func (r *RangeReader) ID() uint64 { return r.id }

// Watermark is the range watermark the reader has reached.
func (r *RangeReader) Watermark() uint64 { return r.wm }

// Next returns the next entry's chunk, or ok=false when the reader has
// reached the log's head (poll again later).
func (r *RangeReader) Next(ctx context.Context) (c Chunk, ok bool, err error) {
	if r.sealed && r.next == nil {
		return Chunk{}, false, nil
	}
	e := r.next
	r.next = nil
	if e == nil {
		e, err = r.pollEntry(ctx, r.seq+1)
		if errors.Is(err, objstore.ErrNotFound) {
			return Chunk{}, false, r.checkBehind(ctx)
		}
		if err != nil {
			return Chunk{}, false, err
		}
	}
	if e.PrevWatermark != r.wm && r.seq > 0 {
		return Chunk{}, false, fmt.Errorf("range %d of tenant %d: entry %d starts at watermark %d, the log was at %d", r.id, r.tenant, e.Seq, e.PrevWatermark, r.wm)
	}
	if e.OwnerEpoch < r.epoch {
		return Chunk{}, false, fmt.Errorf("range %d of tenant %d: entry %d has owner epoch %d below %d", r.id, r.tenant, e.Seq, e.OwnerEpoch, r.epoch)
	}
	if e.File != nil {
		if c.Rows, err = r.readFile(ctx, e); err != nil {
			return Chunk{}, false, err
		}
	}
	r.seq, r.wm, r.epoch = e.Seq, e.Watermark, e.OwnerEpoch
	c.Watermark = e.Watermark
	if e.Kind == formatv1.RangeLogEntry_KIND_SEAL {
		r.sealed = true
		c.Sealed, c.Successors = true, e.SuccessorRangeIds
	}
	return c, true, nil
}

// floorCheckEvery is how often a reader that finds no next entry looks
// whether compaction deleted it (the reader fell behind the retention).
const floorCheckEvery = 30 * time.Second

// checkBehind tells a reader polling for its next entry from one whose next
// entry was compacted away (ErrCompacted), at most every floorCheckEvery.
func (r *RangeReader) checkBehind(ctx context.Context) error {
	if time.Since(r.floorChecked) < floorCheckEvery {
		return nil
	}
	floor, err := readFloor(ctx, r.store, r.tenant, r.id)
	if err != nil {
		return err
	}
	r.floorChecked = time.Now()
	if floor > r.seq+1 {
		return fmt.Errorf("range %d of tenant %d: the reader is at watermark %d (entry %d), entries below %d have expired: %w",
			r.id, r.tenant, r.wm, r.seq, floor, ErrCompacted)
	}
	return nil
}

func (r *RangeReader) readFile(ctx context.Context, e *formatv1.RangeLogEntry) ([]Row, error) {
	if r.cache != nil {
		return r.readCachedFile(ctx, e)
	}
	b, err := r.store.Get(ctx, e.File.Key)
	if err != nil {
		return nil, fileErr(e, r.id, err)
	}
	f, err := OpenDataFile(e.File.Key, b)
	if err != nil {
		return nil, err
	}
	h := f.Header
	if h.RangeId != r.id || h.TenantId != r.tenant || h.Seq != e.Seq || h.PrevWatermark != e.PrevWatermark || h.Watermark != e.Watermark {
		return nil, fmt.Errorf("%s: header (range %d seq %d (%d, %d]) does not match log entry %d (%d, %d]",
			e.File.Key, h.RangeId, h.Seq, h.PrevWatermark, h.Watermark, e.Seq, e.PrevWatermark, e.Watermark)
	}
	rows := make([]Row, 0, min(e.File.RowCount, 1<<20))
	// One arena for the file's keys and values: a few allocations per file
	// instead of three per row. Rows keep it alive until they are dropped.
	arena := make([]byte, 0, len(b))
	keep := func(v []byte) []byte {
		if v == nil {
			return nil
		}
		if len(arena)+len(v) > cap(arena) {
			arena = make([]byte, 0, max(len(b), len(v)))
		}
		arena = append(arena, v...)
		return arena[len(arena)-len(v) : len(arena) : len(arena)]
	}
	var n uint64
	for {
		row, err := f.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		n++
		if row.CommitTs >= r.from {
			rows = append(rows, Row{CommitTs: row.CommitTs, StartTs: row.StartTs, Op: row.Op,
				Key: keep(row.Key), Value: keep(row.Value), OldValue: keep(row.OldValue)})
		}
	}
	if n != e.File.RowCount {
		return nil, fmt.Errorf("%s: %d rows, log entry %d says %d", e.File.Key, n, e.Seq, e.File.RowCount)
	}
	return rows, nil
}

// fileErr explains a failed read of the data file entry e publishes: a
// missing one was compacted away under the reader.
func fileErr(e *formatv1.RangeLogEntry, rangeID uint64, err error) error {
	if errors.Is(err, objstore.ErrNotFound) {
		return fmt.Errorf("read %s published by entry %d of range %d: expired while being read (watermark %d): %w",
			e.File.Key, e.Seq, rangeID, e.Watermark, ErrCompacted)
	}
	return fmt.Errorf("read %s published by entry %d of range %d: %w", e.File.Key, e.Seq, rangeID, err)
}
