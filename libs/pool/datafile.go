package pool

import (
	"fmt"
	"io"
	"slices"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// DataFileWriter builds one committed data file.
type DataFileWriter struct {
	c        *container.Writer
	obs      *blockStats
	hdr      *formatv1.CommittedFileHeader
	last     Row
	rows     uint64
	min, max uint64 // commit_ts bounds of the rows
}

// NewDataFile starts a file for rows with prev_watermark < commit_ts <= watermark.
// sizeHint is the expected bytes of its rows (0 if unknown).
func NewDataFile(h *formatv1.CommittedFileHeader, sizeHint int) (*DataFileWriter, error) {
	return newDataFile(h, sizeHint, nil, nil)
}

// newDataFile is NewDataFile building the file in buf's memory, if any,
// going on in buffers from more when it fills up (see container.Options).
func newDataFile(h *formatv1.CommittedFileHeader, sizeHint int, buf []byte, more func(int) []byte) (*DataFileWriter, error) {
	if h.Watermark <= h.PrevWatermark {
		return nil, fmt.Errorf("data file of range %d: watermark %d is not above prev_watermark %d", h.RangeId, h.Watermark, h.PrevWatermark)
	}
	obs := &blockStats{}
	w := &DataFileWriter{
		c:   container.NewWriter(container.KindCommittedData, container.Options{Codec: container.CodecZstd, Observer: obs, SizeHint: sizeHint, Buf: buf, More: more}),
		obs: obs,
		hdr: h,
	}
	obs.header = true
	if err := w.c.AppendMessage(h); err != nil {
		return nil, err
	}
	return w, nil
}

// Add appends a row; rows must come in Compare order within the file's interval.
func (w *DataFileWriter) Add(r *Row) error {
	if r.CommitTs <= w.hdr.PrevWatermark || r.CommitTs > w.hdr.Watermark {
		return fmt.Errorf("data file of range %d: row %x at %d outside (%d, %d]", w.hdr.RangeId, r.Key, r.CommitTs, w.hdr.PrevWatermark, w.hdr.Watermark)
	}
	if w.rows > 0 && Compare(&w.last, r) >= 0 {
		return fmt.Errorf("data file of range %d: row %x at %d/%d not after %x at %d/%d", w.hdr.RangeId,
			r.Key, r.CommitTs, r.StartTs, w.last.Key, w.last.CommitTs, w.last.StartTs)
	}
	w.obs.next = r
	if err := w.c.AppendRecord((*rowRecord)(r)); err != nil {
		return err
	}
	if w.rows == 0 {
		w.min = r.CommitTs
	}
	w.max = r.CommitTs
	w.rows++
	w.last.CommitTs, w.last.StartTs = r.CommitTs, r.StartTs
	w.last.Key = append(w.last.Key[:0], r.Key...)
	return nil
}

// Rows is the number of rows added.
func (w *DataFileWriter) Rows() uint64 { return w.rows }

// Finish returns the file and its reference for the range log (Key is left
// for the caller to fill in).
func (w *DataFileWriter) Finish() ([]byte, *formatv1.CommittedFileRef, error) {
	parts, ref, err := w.finishParts()
	if err != nil {
		return nil, nil, err
	}
	return slices.Concat(parts...), ref, nil
}

// finishParts is Finish returning the file in the parts it was built in.
func (w *DataFileWriter) finishParts() ([][]byte, *formatv1.CommittedFileRef, error) {
	parts, err := w.c.FinishParts()
	if err != nil {
		return nil, nil, err
	}
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	return parts, &formatv1.CommittedFileRef{Size: uint64(size), RowCount: w.rows, MinCommitTs: w.min, MaxCommitTs: w.max}, nil
}

// blockStats fills the block index of committed data files: commit_ts
// bounds and the distinct table ids of each block, so a reader of one table
// can skip blocks.
type blockStats struct {
	header   bool // the next record is the file header
	next     *Row // the row whose record is being appended
	min, max uint64
	tables   map[int64]struct{}
}

func (s *blockStats) Record([]byte) {
	if s.header {
		s.header = false
		return
	}
	r := s.next
	if s.tables == nil {
		s.tables = make(map[int64]struct{})
	}
	if s.min == 0 { // commit_ts is never 0: first row of the block
		s.min = r.CommitTs
	}
	s.min = min(s.min, r.CommitTs)
	s.max = max(s.max, r.CommitTs)
	if id, err := tidbcodec.DecodeTableID(r.Key); err == nil {
		s.tables[id] = struct{}{}
	}
}

func (s *blockStats) Seal(e *formatv1.BlockIndexEntry) {
	e.MinCommitTs, e.MaxCommitTs = s.min, s.max
	for id := range s.tables {
		e.TableIds = append(e.TableIds, id)
	}
	slices.Sort(e.TableIds)
	clear(s.tables)
	s.min, s.max = 0, 0
}

// DataFile is a decoded committed data file.
type DataFile struct {
	Header *formatv1.CommittedFileHeader
	r      *container.Reader
	row    Row
	last   Row
	n      uint64
}

// OpenDataFile checks a data file's framing and header.
func OpenDataFile(name string, data []byte) (*DataFile, error) { return openDataFile(name, data, nil) }

// openDataFile is OpenDataFile; with keep, each compressed block is
// decompressed into keep(raw length) (container.Reader.KeepBlocksIn), so
// that rows read from it stay valid after the following calls.
func openDataFile(name string, data []byte, keep func(n int) []byte) (*DataFile, error) {
	r, err := container.Open(name, data, container.KindCommittedData)
	if err != nil {
		return nil, err
	}
	if keep != nil {
		r.KeepBlocksIn(keep)
	}
	f := &DataFile{Header: &formatv1.CommittedFileHeader{}, r: r}
	if err := r.NextMessage(f.Header); err != nil {
		if err == io.EOF {
			return nil, r.Corrupt(nil, "no header")
		}
		return nil, err
	}
	if f.Header.Watermark <= f.Header.PrevWatermark {
		return nil, r.Corrupt(nil, "watermark %d not above prev_watermark %d", f.Header.Watermark, f.Header.PrevWatermark)
	}
	return f, nil
}

// Next returns the next row; its slices are valid until the following call.
// Rows out of order or outside the file's interval are corruption.
func (f *DataFile) Next() (*Row, error) {
	rec, err := f.r.Next()
	if err != nil {
		return nil, err
	}
	if err := parseRow(rec, &f.row); err != nil {
		return nil, f.r.Corrupt(err, "does not decode as CommittedRow")
	}
	r := &f.row // returned as is: a copy would escape, an allocation per row
	h := f.Header
	switch {
	case r.CommitTs <= h.PrevWatermark || r.CommitTs > h.Watermark:
		return nil, f.r.Corrupt(nil, "row at commit_ts %d outside the file's interval (%d, %d]", r.CommitTs, h.PrevWatermark, h.Watermark)
	case r.Op != formatv1.Op_OP_PUT && r.Op != formatv1.Op_OP_DELETE:
		return nil, f.r.Corrupt(nil, "row %x has op %s", r.Key, r.Op)
	case len(r.Key) == 0:
		return nil, f.r.Corrupt(nil, "row with an empty key")
	case f.n > 0 && Compare(&f.last, r) >= 0:
		return nil, f.r.Corrupt(nil, "row %x at %d/%d is not after the previous row", r.Key, r.CommitTs, r.StartTs)
	}
	f.n++
	f.last.CommitTs, f.last.StartTs = r.CommitTs, r.StartTs
	f.last.Key = append(f.last.Key[:0], r.Key...)
	return r, nil
}
