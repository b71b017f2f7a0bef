package container

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	"google.golang.org/protobuf/proto"
)

// BlockObserver lets a file kind annotate the block index: Record sees every
// record appended to the open block, Seal fills the block's index entry when
// the block closes and resets the observer for the next block.
type BlockObserver interface {
	Record(rec []byte)
	Seal(e *formatv1.BlockIndexEntry)
}

// Options configure a Writer. The zero value is usable.
type Options struct {
	// Codec for record blocks; a block that zstd does not shrink is stored raw.
	Codec Codec
	// BlockSize is the raw payload size at which a block is closed
	// (DefaultBlockSize if 0).
	BlockSize int
	// Index asks for a block index in the trailer.
	Index bool
	// Observer annotates index entries (implies Index).
	Observer BlockObserver
	// SizeHint is the expected size of the file: the output buffer starts
	// that large instead of growing by doubling (and copying).
	SizeHint int
	// Buf, when its capacity is not zero, is the buffer the file is built
	// in (from its start; its contents are overwritten), instead of a new
	// one: a caller that writes many files recycles their buffers. The
	// file Finish returns aliases it.
	Buf []byte
	// More, when set, lets the file continue in further buffers instead
	// of growing one: when the buffer being filled cannot take the next
	// record, the writer asks More for one of capacity at least min (its
	// contents are overwritten), moves the open block's bytes so far
	// there (a block never straddles two parts) and goes on. FinishParts
	// returns the buffers as the file's parts, in order; their
	// concatenation is byte for byte the file one buffer would hold (a
	// part's unused tail is not part of the file; a part may be empty). A
	// More that returns less than min is not used.
	More func(min int) []byte
}

// Writer builds one container file in memory. Files are written whole to
// object storage, so there is no streaming variant.
type Writer struct {
	opts    Options
	out     []byte   // the part being filled
	parts   [][]byte // the parts filled before it (Options.More)
	base    int      // offset in the file of out[0]
	magic   [4]byte  // the preamble's first bytes, repeated in the tail
	blockAt int      // offset in out of the open block's header; its raw payload follows
	scratch []byte
	trailer formatv1.FileTrailer
	inBlock uint64 // records in the open block
	first   uint64 // index of the open block's first record
	done    bool
	probe   []byte
}

// NewWriter starts a file of the given kind. The first record appended must be
// the kind's header message.
func NewWriter(kind Kind, opts Options) *Writer {
	if opts.BlockSize <= 0 {
		opts.BlockSize = DefaultBlockSize
	}
	if opts.BlockSize > MaxBlockRaw {
		opts.BlockSize = MaxBlockRaw
	}
	if opts.Observer != nil {
		opts.Index = true
	}
	w := &Writer{opts: opts}
	if cap(opts.Buf) >= preambleLen {
		w.out = opts.Buf[:preambleLen]
		w.opts.Buf = nil
	} else {
		w.out = make([]byte, preambleLen, max(4096, opts.SizeHint+opts.SizeHint/16+1024))
	}
	putPreamble(w.out, kind)
	copy(w.magic[:], w.out)
	return w
}

// Append adds one record. The bytes are copied.
func (w *Writer) Append(rec []byte) error {
	if err := w.begin(len(rec)); err != nil {
		return err
	}
	w.out = binary.AppendUvarint(w.out, uint64(len(rec)))
	w.out = append(w.out, rec...)
	w.end(rec)
	return nil
}

// A Record encodes itself into a file: RecordSize bytes, appended by
// AppendRecord.
type Record interface {
	RecordSize() int
	AppendRecord(dst []byte) []byte
}

// AppendRecord adds one record encoded straight into the file, without
// the copy Append makes of bytes encoded elsewhere.
func (w *Writer) AppendRecord(r Record) error {
	n := r.RecordSize()
	if err := w.begin(n); err != nil {
		return err
	}
	w.out = binary.AppendUvarint(w.out, uint64(n))
	start := len(w.out)
	w.out = r.AppendRecord(w.out)
	if got := len(w.out) - start; got != n {
		// The record is inside the open block: the file is unusable.
		w.done = true
		return fmt.Errorf("container: a %T record of size %d encoded %d bytes", r, n, got)
	}
	w.end(w.out[start:])
	return nil
}

// begin makes room for a record of n bytes: it closes the open block if
// the record does not fit, and opens one if none is.
func (w *Writer) begin(n int) error {
	if w.done {
		return fmt.Errorf("container: append after Finish")
	}
	need := binary.MaxVarintLen64 + n
	if need > MaxBlockRaw {
		return fmt.Errorf("container: record of %d bytes exceeds the %d-byte block limit", n, MaxBlockRaw)
	}
	if w.inBlock > 0 && len(w.out)-w.blockAt-blockHeaderLen+need > w.opts.BlockSize {
		w.flushBlock()
	}
	if w.inBlock > 0 {
		w.room(need)
	} else {
		w.room(blockHeaderLen + need)
		// The block's records go straight into out, after room for its
		// header: an uncompressed block is never copied again (but once
		// if it moves to a new part).
		w.blockAt = len(w.out)
		w.out = append(w.out, make([]byte, blockHeaderLen)...)
	}
	return nil
}

// room makes sure the part being filled can take n more bytes without
// growing: with Options.More, by going on in a new part, into which the
// open block's bytes so far move (a block is compressed and checksummed
// whole, so it never straddles two parts); without it, append grows the
// one buffer as before.
func (w *Writer) room(n int) {
	if w.opts.More == nil || cap(w.out)-len(w.out) >= n {
		return
	}
	end := len(w.out) // where the part ends: before the open block, if any
	if w.inBlock > 0 {
		end = w.blockAt
	}
	carry := len(w.out) - end
	next := w.opts.More(carry + n)
	if cap(next) < carry+n {
		next = make([]byte, 0, carry+n)
	}
	next = append(next[:0], w.out[end:]...)
	w.parts = append(w.parts, w.out[:end])
	w.base += end
	w.out = next
	w.blockAt = 0
}

// end counts the record just written.
func (w *Writer) end(rec []byte) {
	w.inBlock++
	w.trailer.RecordCount++
	if w.opts.Observer != nil {
		w.opts.Observer.Record(rec)
	}
}

// AppendMessage marshals m and appends it as one record.
func (w *Writer) AppendMessage(m proto.Message) error {
	var err error
	w.scratch, err = proto.MarshalOptions{}.MarshalAppend(w.scratch[:0], m)
	if err != nil {
		return fmt.Errorf("container: marshal %T: %w", m, err)
	}
	return w.Append(w.scratch)
}

// Records is the number of records appended so far, the header included.
func (w *Writer) Records() uint64 { return w.trailer.RecordCount }

// Size is the number of bytes the file would have if finished now, roughly.
func (w *Writer) Size() int { return w.base + len(w.out) }

func (w *Writer) flushBlock() {
	if w.inBlock == 0 {
		return
	}
	offset := w.blockAt
	raw := w.out[offset+blockHeaderLen:]
	rawLen := len(raw)
	payload, codec := raw, CodecNone
	if w.opts.Codec == CodecZstd && w.compressible(raw) {
		// Compress aside, then keep it in place of the raw bytes only if
		// it saves space.
		z := scratchPool.Get().(*[]byte)
		*z = compress((*z)[:0], raw)
		if len(*z) < rawLen-rawLen/32 {
			w.out = append(w.out[:offset+blockHeaderLen], *z...)
			payload, codec = w.out[offset+blockHeaderLen:], CodecZstd
		}
		scratchPool.Put(z)
	}
	hdr := w.out[offset : offset+blockHeaderLen]
	h := blockHeader{typ: blockRecords, codec: codec, storedLen: uint32(len(payload)), rawLen: uint32(rawLen)}
	putBlockHeader(hdr, h)
	h.crc = blockCRC(hdr[:12], payload)
	putBlockHeader(hdr, h)

	w.trailer.BlockCount++
	w.trailer.RawBytes += uint64(rawLen)
	if w.opts.Index {
		e := &formatv1.BlockIndexEntry{
			Offset:      uint64(w.base + offset),
			Length:      uint64(len(w.out) - offset),
			FirstRecord: w.first,
			RecordCount: w.inBlock,
		}
		if w.opts.Observer != nil {
			w.opts.Observer.Seal(e)
		}
		w.trailer.Blocks = append(w.trailer.Blocks, e)
	}
	w.first += w.inBlock
	w.inBlock = 0
}

// scratchPool holds buffers for compressed blocks, shared by all writers.
var scratchPool = sync.Pool{New: func() any { return new([]byte) }}

// probeLen is how much of a large block is test-compressed before the whole.
const probeLen = 4 << 10

// compressible tells whether the open block is worth compressing: a large
// block is compressed only if a sample of it shrinks by at least 1/8, so
// incompressible rows (encrypted or random values) cost a 4 KiB probe
// instead of a full zstd pass that is then thrown away.
func (w *Writer) compressible(raw []byte) bool {
	if len(raw) < 4*probeLen {
		return true
	}
	w.probe = compress(w.probe[:0], raw[len(raw)/2:len(raw)/2+probeLen])
	return len(w.probe) < probeLen-probeLen/8
}

// Finish closes the last block, writes trailer and tail, and returns the
// file (its parts joined, if it has several: see FinishParts).
func (w *Writer) Finish() ([]byte, error) {
	parts, err := w.FinishParts()
	switch {
	case err != nil:
		return nil, err
	case len(parts) == 1:
		return parts[0], nil // in Options.Buf's memory, if given
	}
	return slices.Concat(parts...), nil
}

// FinishParts closes the last block, writes trailer and tail, and returns
// the file as its parts (one, unless Options.More gave it more).
func (w *Writer) FinishParts() ([][]byte, error) {
	if w.done {
		return nil, fmt.Errorf("container: Finish called twice")
	}
	if w.trailer.RecordCount == 0 {
		return nil, fmt.Errorf("container: a file needs at least its header record")
	}
	w.flushBlock()
	w.done = true
	tb, err := proto.Marshal(&w.trailer)
	if err != nil {
		return nil, fmt.Errorf("container: marshal trailer: %w", err)
	}
	w.room(blockHeaderLen + len(tb) + tailLen)
	at := len(w.out)
	offset := uint64(w.base + at)
	w.out = append(w.out, make([]byte, blockHeaderLen)...)
	w.out = append(w.out, tb...)
	hdr := w.out[at : at+blockHeaderLen]
	h := blockHeader{typ: blockTrailer, codec: CodecNone, storedLen: uint32(len(tb)), rawLen: uint32(len(tb))}
	putBlockHeader(hdr, h)
	h.crc = blockCRC(hdr[:12], tb)
	putBlockHeader(hdr, h)

	var tail [tailLen]byte
	binary.LittleEndian.PutUint64(tail[0:8], offset)
	binary.LittleEndian.PutUint32(tail[8:12], crc32Castagnoli(tail[0:8]))
	copy(tail[12:16], w.magic[:])
	w.out = append(w.out, tail[:]...)
	return append(w.parts, w.out), nil
}
