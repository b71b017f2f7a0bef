package container

import (
	"encoding/binary"
	"hash/crc32"
)

// Kind is the 4-byte magic that opens a file and names its kind.
type Kind [4]byte

func (k Kind) String() string { return string(k[:]) }

// The file kinds of TiStream. Each has its own header message and record type
// (docs/formats/).
var (
	KindStoreChange    = Kind{'T', 'S', 'S', 'C'} // store change file (data_change_buffer)
	KindSchemaSnapshot = Kind{'T', 'S', 'S', 'S'} // schema snapshot
	KindCommittedData  = Kind{'T', 'S', 'C', 'D'} // committed data file
	KindRangeLog       = Kind{'T', 'S', 'R', 'L'} // range log entry
	KindManifest       = Kind{'T', 'S', 'M', 'F'} // tenant manifest
	KindSorterSnapshot = Kind{'T', 'S', 'S', 'P'} // sorter range snapshot
	KindSchemaHistory  = Kind{'T', 'S', 'S', 'H'} // schema registry history
	KindGroupPub       = Kind{'T', 'S', 'G', 'P'} // committed data pool group publication (index)
	KindGroupSegment   = Kind{'T', 'S', 'G', 'S'} // committed data pool group segment (index)
)

// Version is the container format version this package writes and reads.
const Version = 1

// Codec is how a block payload is stored.
type Codec uint8

const (
	CodecNone Codec = 0
	CodecZstd Codec = 1
)

const (
	blockRecords uint8 = 1
	blockTrailer uint8 = 2
)

const (
	preambleLen    = 8
	blockHeaderLen = 16
	tailLen        = 16
)

// MaxBlockRaw bounds the decompressed size of one block and so of one record.
// A decoder refuses larger blocks instead of allocating what a corrupt length
// field asks for.
const MaxBlockRaw = 64 << 20

// DefaultBlockSize is the raw payload size at which a writer closes a block.
const DefaultBlockSize = 256 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func putPreamble(b []byte, kind Kind) {
	copy(b[0:4], kind[:])
	b[4] = Version
	b[5] = 0
	binary.LittleEndian.PutUint16(b[6:8], 0)
}

// blockHeader is the decoded 16-byte header of a block.
type blockHeader struct {
	typ       uint8
	codec     Codec
	storedLen uint32
	rawLen    uint32
	crc       uint32
}

func putBlockHeader(b []byte, h blockHeader) {
	b[0] = h.typ
	b[1] = byte(h.codec)
	binary.LittleEndian.PutUint16(b[2:4], 0)
	binary.LittleEndian.PutUint32(b[4:8], h.storedLen)
	binary.LittleEndian.PutUint32(b[8:12], h.rawLen)
	binary.LittleEndian.PutUint32(b[12:16], h.crc)
}

func parseBlockHeader(b []byte) blockHeader {
	return blockHeader{
		typ:       b[0],
		codec:     Codec(b[1]),
		storedLen: binary.LittleEndian.Uint32(b[4:8]),
		rawLen:    binary.LittleEndian.Uint32(b[8:12]),
		crc:       binary.LittleEndian.Uint32(b[12:16]),
	}
}

// blockCRC is the CRC32C of the first 12 header bytes followed by the stored
// payload, so a flipped length or codec byte is caught as well as the data.
func blockCRC(header12, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, header12)
	return crc32.Update(c, castagnoli, payload)
}

func crc32Castagnoli(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
