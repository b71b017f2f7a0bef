package container

import (
	"encoding/binary"
	"fmt"

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
}

// Writer builds one container file in memory. Files are written whole to
// object storage, so there is no streaming variant.
type Writer struct {
	opts    Options
	out     []byte
	raw     []byte // open block payload
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
	w := &Writer{opts: opts, out: make([]byte, preambleLen, max(4096, opts.SizeHint+opts.SizeHint/16+1024))}
	putPreamble(w.out, kind)
	return w
}

// Append adds one record. The bytes are copied.
func (w *Writer) Append(rec []byte) error {
	if w.done {
		return fmt.Errorf("container: append after Finish")
	}
	need := binary.MaxVarintLen64 + len(rec)
	if need > MaxBlockRaw {
		return fmt.Errorf("container: record of %d bytes exceeds the %d-byte block limit", len(rec), MaxBlockRaw)
	}
	if len(w.raw) > 0 && len(w.raw)+need > w.opts.BlockSize {
		w.flushBlock()
	}
	w.raw = binary.AppendUvarint(w.raw, uint64(len(rec)))
	w.raw = append(w.raw, rec...)
	w.inBlock++
	w.trailer.RecordCount++
	if w.opts.Observer != nil {
		w.opts.Observer.Record(rec)
	}
	return nil
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
func (w *Writer) Size() int { return len(w.out) + len(w.raw) }

func (w *Writer) flushBlock() {
	if w.inBlock == 0 {
		return
	}
	offset := uint64(len(w.out))
	payload, codec := w.raw, CodecNone
	if w.opts.Codec == CodecZstd && w.compressible() {
		// Compress into the tail of out, then keep it only if it saves space.
		start := len(w.out) + blockHeaderLen
		w.out = append(w.out, make([]byte, blockHeaderLen)...)
		w.out = compress(w.out, w.raw)
		if len(w.out)-start < len(w.raw)-len(w.raw)/32 {
			payload, codec = w.out[start:], CodecZstd
		} else {
			w.out = w.out[:offset]
		}
	}
	if codec == CodecNone {
		w.out = append(w.out, make([]byte, blockHeaderLen)...)
		w.out = append(w.out, w.raw...)
		payload = w.out[int(offset)+blockHeaderLen:]
	}
	hdr := w.out[offset : offset+blockHeaderLen]
	h := blockHeader{typ: blockRecords, codec: codec, storedLen: uint32(len(payload)), rawLen: uint32(len(w.raw))}
	putBlockHeader(hdr, h)
	h.crc = blockCRC(hdr[:12], payload)
	putBlockHeader(hdr, h)

	w.trailer.BlockCount++
	w.trailer.RawBytes += uint64(len(w.raw))
	if w.opts.Index {
		e := &formatv1.BlockIndexEntry{
			Offset:      offset,
			Length:      uint64(len(w.out)) - offset,
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
	w.raw = w.raw[:0]
}

// probeLen is how much of a large block is test-compressed before the whole.
const probeLen = 4 << 10

// compressible tells whether the open block is worth compressing: a large
// block is compressed only if a sample of it shrinks by at least 1/8, so
// incompressible rows (encrypted or random values) cost a 4 KiB probe
// instead of a full zstd pass that is then thrown away.
func (w *Writer) compressible() bool {
	if len(w.raw) < 4*probeLen {
		return true
	}
	w.probe = compress(w.probe[:0], w.raw[len(w.raw)/2:len(w.raw)/2+probeLen])
	return len(w.probe) < probeLen-probeLen/8
}

// Finish closes the last block, writes trailer and tail, and returns the file.
func (w *Writer) Finish() ([]byte, error) {
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
	offset := uint64(len(w.out))
	w.out = append(w.out, make([]byte, blockHeaderLen)...)
	w.out = append(w.out, tb...)
	hdr := w.out[offset : offset+blockHeaderLen]
	h := blockHeader{typ: blockTrailer, codec: CodecNone, storedLen: uint32(len(tb)), rawLen: uint32(len(tb))}
	putBlockHeader(hdr, h)
	h.crc = blockCRC(hdr[:12], tb)
	putBlockHeader(hdr, h)

	var tail [tailLen]byte
	binary.LittleEndian.PutUint64(tail[0:8], offset)
	binary.LittleEndian.PutUint32(tail[8:12], crc32Castagnoli(tail[0:8]))
	copy(tail[12:16], w.out[0:4])
	w.out = append(w.out, tail[:]...)
	return w.out, nil
}
