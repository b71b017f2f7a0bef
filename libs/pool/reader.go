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

// CompactedError is an ErrCompacted that knows the oldest start ts the
// range can still be read from.
type CompactedError struct {
	Oldest uint64
	msg    string
}

func (e *CompactedError) Error() string        { return e.msg + ": " + ErrCompacted.Error() }
func (e *CompactedError) Is(target error) bool { return target == ErrCompacted }

func compacted(oldest uint64, format string, args ...any) error {
	return &CompactedError{Oldest: oldest, msg: fmt.Sprintf(format, args...)}
}

// Chunk is what one step of a reader brings: the rows it publishes that the
// reader asked for (commit_ts >= from), and the watermark after it.
type Chunk struct {
	Rows      []Row
	Watermark uint64
	// Sealed: the range ended at Watermark; Successors continue its keys.
	Sealed     bool
	Successors []uint64
	// buf is the read buffer Rows point into, held for the chunk (nil:
	// none). A Puller releases it once its caller is done with the rows;
	// other readers leave it to the collector.
	buf *readBuf
}

// RangeReader follows one range from a start ts: through the version 1
// FLUSH entries of its log, then through the group publications of each
// segment its log names (format version 2).
type RangeReader struct {
	store  objstore.Store
	tenant uint64
	id     uint64
	from   uint64
	seq    uint64 // last range log entry consumed
	wm     uint64
	// wmUnknown: the reader was positioned where the range's watermark is
	// not known (the end of a partly compacted segment); the next entry
	// gives it.
	wmUnknown bool
	epoch     uint64
	next      *formatv1.RangeLogEntry // entry fetched ahead, consumed first
	sealed    bool
	cache     *Cache // shared decoded objects, or nil
	heads     *Heads // what the publication notices announce, or nil
	// floorChecked is when the reader last looked whether its next log
	// entry fell below the range log's retention floor.
	floorChecked time.Time
	// seg is the segment of group publications being read (nil while the
	// reader is in the range log's version 1 part).
	seg *segState
	// queue holds chunks read ahead from a segment object.
	queue []Chunk
	// OpenedAt is the ts the range starts after (rows have commit_ts > OpenedAt).
	OpenedAt uint64
	Start    []byte
	End      []byte
}

// OpenRangeReader positions a reader so that it returns every row of the
// range with commit_ts >= from, without reading the range from its start
// (see docs/formats/committed-data-pool.md, "Reading from ts T").
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
		// Compaction moved a retention floor while we looked: what we
		// listed may lack objects it deleted. Look again; the next look
		// answers ErrCompacted if from is gone by now.
		if attempt == 3 {
			return nil, fmt.Errorf("range %d of tenant %d: rows from ts %d are being compacted away as they are read: %w", id, tenant, from, ErrCompacted)
		}
	}
}

// openRangeReader is one attempt of OpenRangeReaderWith; moved means a
// retention floor moved during it, so the position is not to be trusted.
func openRangeReader(ctx context.Context, store objstore.Store, tenant, id, from uint64, o ReadOptions) (_ *RangeReader, moved bool, _ error) {
	r := &RangeReader{store: store, tenant: tenant, id: id, from: from, cache: o.Cache, heads: o.Heads}
	head, first, floor, err := findHead(ctx, store, tenant, id)
	if err != nil {
		return nil, false, err
	}
	open := head
	if head.Seq != 1 {
		if open, err = r.getEntry(ctx, 1); err != nil && !errors.Is(err, objstore.ErrNotFound) {
			return nil, false, err
		}
	}
	if open != nil {
		r.OpenedAt, r.Start, r.End = open.PrevWatermark, open.StartKey, open.EndKey
	}
	// The version 2 tail of the log (entries naming groups, after the
	// version 1 entries if any; never compacted), read back from the head
	// to the segment from falls in: a few entries.
	var v2 []*formatv1.RangeLogEntry
	for seq := head.Seq; seq >= 1; seq-- {
		e := head
		if seq != head.Seq {
			if e, err = r.getEntry(ctx, seq); err != nil {
				if errors.Is(err, objstore.ErrNotFound) && seq < first {
					break // compacted version 1 entries
				}
				return nil, false, err
			}
		}
		if e.Group == "" {
			break
		}
		v2 = append([]*formatv1.RangeLogEntry{e}, v2...)
		if segmentOpener(e) && e.Watermark < from {
			break // the segment from falls in: what precedes it is not read
		}
	}
	if len(v2) > 0 && (v2[0].Kind == formatv1.RangeLogEntry_KIND_OPEN || from > v2[0].Watermark) {
		moved, err := r.openSegments(ctx, v2)
		return r, moved, err
	}
	v1head := head
	if len(v2) > 0 {
		// From inside the version 1 part: read it, then follow into the
		// segments.
		if v1head, err = r.getEntry(ctx, v2[0].Seq-1); err != nil {
			if errors.Is(err, objstore.ErrNotFound) {
				return nil, true, nil // compacted meanwhile
			}
			return nil, false, err
		}
	}
	moved, err = r.openV1(ctx, v1head, first, floor)
	return r, moved, err
}

// openV1 positions the reader in the version 1 part of the log, whose last
// entry is head: with one listing of the data files (named by watermark)
// from the start ts.
func (r *RangeReader) openV1(ctx context.Context, head *formatv1.RangeLogEntry, first, floor uint64) (moved bool, _ error) {
	if first > 1 {
		firstEntry, err := r.getEntry(ctx, first)
		if errors.Is(err, objstore.ErrNotFound) {
			return true, nil // deleted since listed
		}
		if err != nil {
			return false, err
		}
		if r.from <= firstEntry.PrevWatermark {
			return false, compacted(firstEntry.PrevWatermark+1, "range %d of tenant %d keeps rows after ts %d (the oldest start ts is %d), asked from %d",
				r.id, r.tenant, firstEntry.PrevWatermark, firstEntry.PrevWatermark+1, r.from)
		}
	}
	// The head was read before listing data files, so every file published
	// at or before it is in the listing; files published later are reached
	// by following the log.
	files, _, err := r.store.List(ctx, layout.DataPrefix(r.tenant, r.id), layout.DataFileStartAfter(r.tenant, r.id, r.from), 64)
	if err != nil {
		return false, fmt.Errorf("list data files of range %d: %w", r.id, err)
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
				return true, nil
			}
			return false, err
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
	again, err := readFloor(ctx, r.store, r.tenant, r.id)
	if err != nil {
		return false, err
	}
	r.floorChecked = time.Now()
	return again != floor, nil
}

// ID is the range id.
func (r *RangeReader) ID() uint64 { return r.id }

// Watermark is the range watermark the reader has reached.
func (r *RangeReader) Watermark() uint64 { return r.wm }

// Next returns the next chunk, or ok=false when the reader has reached
// what is published (poll again later).
func (r *RangeReader) Next(ctx context.Context) (c Chunk, ok bool, err error) {
	if len(r.queue) > 0 {
		c, r.queue = r.queue[0], r.queue[1:]
		return c, true, nil
	}
	if r.sealed && r.next == nil {
		return Chunk{}, false, nil
	}
	if r.seg != nil && !r.seg.done {
		return r.nextPub(ctx)
	}
	return r.nextEntry(ctx)
}

// nextEntry consumes the range log's next entry.
func (r *RangeReader) nextEntry(ctx context.Context) (c Chunk, ok bool, err error) {
	e := r.next
	r.next = nil
	if e == nil {
		e, err = r.pollEntry(ctx, r.seq+1)
		if errors.Is(err, objstore.ErrNotFound) {
			if r.seg != nil {
				return Chunk{}, false, nil // the segment ended; its successor is not logged yet
			}
			return Chunk{}, false, r.checkBehind(ctx)
		}
		if err != nil {
			return Chunk{}, false, err
		}
	}
	if e.OwnerEpoch < r.epoch {
		return Chunk{}, false, fmt.Errorf("range %d of tenant %d: entry %d has owner epoch %d below %d", r.id, r.tenant, e.Seq, e.OwnerEpoch, r.epoch)
	}
	if e.Group != "" {
		return r.segmentEntry(ctx, e)
	}
	if r.seg != nil {
		return Chunk{}, false, fmt.Errorf("range %d of tenant %d: version 1 entry %d after version 2 entries", r.id, r.tenant, e.Seq)
	}
	if e.PrevWatermark != r.wm && r.seq > 0 {
		return Chunk{}, false, fmt.Errorf("range %d of tenant %d: entry %d starts at watermark %d, the log was at %d", r.id, r.tenant, e.Seq, e.PrevWatermark, r.wm)
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

// floorCheckEvery is how often a reader that finds nothing new looks
// whether compaction deleted what it waits for (it fell behind the
// retention). A variable for tests.
var floorCheckEvery = 30 * time.Second

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
