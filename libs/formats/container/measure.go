package container

import (
	"encoding/binary"
	"fmt"
)

// ShortError is returned by Measure when data holds only the first part of
// a container: Need bytes from the start are required to know its length.
type ShortError struct{ Need int64 }

func (e *ShortError) Error() string {
	return fmt.Sprintf("container: need at least %d bytes to find its end", e.Need)
}

// Measure returns the length of the container that starts at data[0], for
// objects where a container is followed by other bytes (the committed data
// pool's publications and segments: an index container, then the sections
// it indexes). It walks the block headers from the preamble to the trailer
// block and adds the tail; it checks only what it needs to walk (the magic,
// block types and lengths), so the result must still be opened with Open.
// When data is a prefix too short to tell, the error is a *ShortError
// saying how many bytes to fetch.
func Measure(name string, data []byte, kind Kind) (int64, error) {
	if int64(len(data)) < preambleLen {
		return 0, &ShortError{Need: preambleLen + blockHeaderLen}
	}
	if got := Kind(data[0:4]); got != kind {
		return 0, corrupt(name, 0, nil, "magic %q, want %q (%s file)", got[:], kind[:], kind)
	}
	if v := data[4]; v != Version {
		return 0, corrupt(name, 4, nil, "format version %d, this reader knows version %d", v, Version)
	}
	off := int64(preambleLen)
	for {
		if off+blockHeaderLen > int64(len(data)) {
			return 0, &ShortError{Need: off + blockHeaderLen}
		}
		h := parseBlockHeader(data[off : off+blockHeaderLen])
		if h.typ != blockRecords && h.typ != blockTrailer {
			return 0, corrupt(name, off, nil, "unknown block type %d", h.typ)
		}
		if h.rawLen > MaxBlockRaw || h.storedLen > MaxBlockRaw+MaxBlockRaw/8 {
			return 0, corrupt(name, off+4, nil, "block of %d stored, %d raw bytes exceeds the limit %d", h.storedLen, h.rawLen, MaxBlockRaw)
		}
		off += blockHeaderLen + int64(h.storedLen)
		if h.typ == blockTrailer {
			end := off + tailLen
			if end > int64(len(data)) {
				return 0, &ShortError{Need: end}
			}
			if Kind(data[end-4:end]) != kind || int64(binary.LittleEndian.Uint64(data[end-tailLen:end-8])) != off-blockHeaderLen-int64(h.storedLen) {
				return 0, corrupt(name, end-tailLen, nil, "no tail after the trailer block")
			}
			return end, nil
		}
	}
}
