package container

import (
	"encoding/binary"
	"io"

	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	"google.golang.org/protobuf/proto"
)

// Reader walks the records of a whole file held in memory. It checks the
// preamble, the tail and the trailer when opened, every block's checksum as it
// reaches it, and the trailer's counts at the end, so truncation and
// corruption anywhere surface as a *CorruptError.
type Reader struct {
	name    string
	data    []byte
	trailer formatv1.FileTrailer
	trailAt int64 // offset of the trailer block

	pos      int64              // offset of the next block
	block    []byte             // raw payload of the current block
	blockOff int64              // offset of the current block
	inBlock  int                // read position in block
	buf      []byte             // decompression buffer, reused (unless keep)
	decoded  bool               // block is in buf, not in data
	keep     bool               // every block decompressed into memory of its own (KeepBlocks)
	alloc    func(n int) []byte // with keep: where a block's memory comes from (KeepBlocksIn)

	records uint64
	blocks  uint64
	raw     uint64
	done    bool
}

// Open checks the framing of a file of the given kind and returns a reader
// positioned before its first (header) record. name is used in errors.
func Open(name string, data []byte, kind Kind) (*Reader, error) {
	r := &Reader{name: name, data: data}
	if err := r.open(kind); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reader) open(kind Kind) error {
	n := int64(len(r.data))
	if n < preambleLen+blockHeaderLen+tailLen {
		return corrupt(r.name, n, nil, "file is %d bytes, shorter than the smallest valid file (%d)", n, preambleLen+blockHeaderLen+tailLen)
	}
	if got := Kind(r.data[0:4]); got != kind {
		return corrupt(r.name, 0, nil, "magic %q, want %q (%s file)", got[:], kind[:], kind)
	}
	if v := r.data[4]; v != Version {
		return corrupt(r.name, 4, nil, "format version %d, this reader knows version %d", v, Version)
	}
	if r.data[5] != 0 || r.data[6] != 0 || r.data[7] != 0 {
		return corrupt(r.name, 5, nil, "reserved preamble bytes are not zero")
	}
	tail := r.data[n-tailLen:]
	if Kind(tail[12:16]) != kind {
		return corrupt(r.name, n-4, nil, "tail magic %q, want %q: file truncated or overwritten", tail[12:16], kind[:])
	}
	if crc32Castagnoli(tail[0:8]) != binary.LittleEndian.Uint32(tail[8:12]) {
		return corrupt(r.name, n-tailLen, nil, "tail checksum mismatch")
	}
	at := binary.LittleEndian.Uint64(tail[0:8])
	if at < preambleLen || at > uint64(n-tailLen-blockHeaderLen) {
		return corrupt(r.name, n-tailLen, nil, "trailer offset %d outside the file", at)
	}
	r.trailAt = int64(at)
	h, payload, err := r.readBlock(r.trailAt, n-tailLen)
	if err != nil {
		return err
	}
	if h.typ != blockTrailer {
		return corrupt(r.name, r.trailAt, nil, "tail points at a block of type %d, not the trailer", h.typ)
	}
	if r.trailAt+blockHeaderLen+int64(h.storedLen) != n-tailLen {
		return corrupt(r.name, r.trailAt, nil, "trailer block does not end where the tail starts")
	}
	if err := proto.Unmarshal(payload, &r.trailer); err != nil {
		return corrupt(r.name, r.trailAt+blockHeaderLen, err, "trailer does not decode")
	}
	r.pos = preambleLen
	return nil
}

// readBlock decodes the block at off, which must end at or before limit, and
// returns its header and raw payload.
func (r *Reader) readBlock(off, limit int64) (blockHeader, []byte, error) {
	if off+blockHeaderLen > limit {
		return blockHeader{}, nil, corrupt(r.name, off, nil, "block header runs past the end of the data (%d bytes left)", limit-off)
	}
	hb := r.data[off : off+blockHeaderLen]
	h := parseBlockHeader(hb)
	if hb[2] != 0 || hb[3] != 0 {
		return h, nil, corrupt(r.name, off+2, nil, "reserved block header bytes are not zero")
	}
	if h.typ != blockRecords && h.typ != blockTrailer {
		return h, nil, corrupt(r.name, off, nil, "unknown block type %d", h.typ)
	}
	if h.rawLen > MaxBlockRaw {
		return h, nil, corrupt(r.name, off+8, nil, "block raw length %d exceeds the limit %d", h.rawLen, MaxBlockRaw)
	}
	end := off + blockHeaderLen + int64(h.storedLen)
	if end > limit {
		return h, nil, corrupt(r.name, off+4, nil, "block of %d stored bytes runs past the end of the data (%d bytes left)", h.storedLen, limit-off-blockHeaderLen)
	}
	stored := r.data[off+blockHeaderLen : end]
	if got := blockCRC(hb[:12], stored); got != h.crc {
		return h, nil, corrupt(r.name, off, nil, "block checksum mismatch (stored %08x, computed %08x)", h.crc, got)
	}
	switch h.codec {
	case CodecNone:
		if h.rawLen != h.storedLen {
			return h, nil, corrupt(r.name, off+8, nil, "uncompressed block with raw length %d != stored length %d", h.rawLen, h.storedLen)
		}
		return h, stored, nil
	case CodecZstd:
		dst := r.buf
		if r.keep {
			dst = nil
			if r.alloc != nil {
				dst = r.alloc(int(h.rawLen))
			}
		}
		out, err := decompress(dst, stored, int(h.rawLen))
		if err != nil {
			return h, nil, corrupt(r.name, off+blockHeaderLen, err, "zstd block does not decompress")
		}
		r.buf = out
		return h, out, nil
	default:
		return h, nil, corrupt(r.name, off+1, nil, "unknown block codec %d", h.codec)
	}
}

// KeepBlocks makes the reader decompress every block into memory of its
// own instead of one reused buffer, so that the records Next returns stay
// valid for as long as the caller keeps them (a decoder whose results
// point into them; the file's own data must not change either).
func (r *Reader) KeepBlocks() { r.keep = true }

// KeepBlocksIn is KeepBlocks with each block decompressed into
// alloc(raw length) (a caller that reuses the memory once done with the
// records: storefile.Stream).
func (r *Reader) KeepBlocksIn(alloc func(n int) []byte) { r.keep, r.alloc = true, alloc }

// Next returns the next record. The slice is valid until the following call
// to Next (for as long as it is kept, after KeepBlocks). At the end of the
// file it verifies the trailer's counts and returns io.EOF.
func (r *Reader) Next() ([]byte, error) {
	for r.block == nil || r.inBlock >= len(r.block) {
		if r.done {
			return nil, io.EOF
		}
		if r.pos == r.trailAt {
			return nil, r.finish()
		}
		h, payload, err := r.readBlock(r.pos, r.trailAt)
		if err != nil {
			return nil, err
		}
		if h.typ != blockRecords {
			return nil, corrupt(r.name, r.pos, nil, "trailer block before the end of the file")
		}
		if len(payload) == 0 {
			return nil, corrupt(r.name, r.pos, nil, "empty records block")
		}
		r.blockOff = r.pos
		r.pos += blockHeaderLen + int64(h.storedLen)
		r.block, r.inBlock = payload, 0
		r.decoded = h.codec != CodecNone
		r.blocks++
		r.raw += uint64(len(payload))
	}
	n, k := binary.Uvarint(r.block[r.inBlock:])
	if k <= 0 || n > uint64(len(r.block)-r.inBlock-k) {
		return nil, corrupt(r.name, r.blockOff, nil, "record %d: bad length prefix at byte %d of the block's raw payload", r.records, r.inBlock)
	}
	start := r.inBlock + k
	r.inBlock = start + int(n)
	r.records++
	return r.block[start:r.inBlock], nil
}

func (r *Reader) finish() error {
	r.done = true
	t := &r.trailer
	if t.RecordCount != r.records || t.BlockCount != r.blocks || t.RawBytes != r.raw {
		return corrupt(r.name, r.trailAt, nil, "trailer says %d records in %d blocks (%d raw bytes), file has %d in %d (%d)",
			t.RecordCount, t.BlockCount, t.RawBytes, r.records, r.blocks, r.raw)
	}
	if r.records == 0 {
		return corrupt(r.name, r.trailAt, nil, "file has no header record")
	}
	return io.EOF
}

// NextMessage decodes the next record into m. It returns io.EOF at the end.
func (r *Reader) NextMessage(m proto.Message) error {
	rec, err := r.Next()
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(rec, m); err != nil {
		return corrupt(r.name, r.blockOff, err, "record %d does not decode as %T", r.records-1, m)
	}
	return nil
}

// InPlace reports whether the last record returned lies in the data the
// reader was opened on (its block is stored uncompressed), so it stays
// valid as long as that data does, after later calls to Next too; a record
// of a compressed block is in the reader's own buffer, valid until the next
// call.
func (r *Reader) InPlace() bool { return !r.decoded }

// Offset is the file offset of the block holding the last record returned,
// for error messages of the file kinds.
func (r *Reader) Offset() int64 { return r.blockOff }

// RecordIndex is the index of the last record returned (header = 0).
func (r *Reader) RecordIndex() uint64 { return r.records - 1 }

// Trailer is the file's trailer, checked against the tail when opened.
func (r *Reader) Trailer() *formatv1.FileTrailer { return &r.trailer }

// Name is the object name used in errors.
func (r *Reader) Name() string { return r.name }

// Corrupt builds a *CorruptError for the last record returned, for callers
// that find a record's content wrong.
func (r *Reader) Corrupt(err error, format string, args ...any) *CorruptError {
	return corrupt(r.name, r.blockOff, err, "record %d: "+format, append([]any{r.records - 1}, args...)...)
}
