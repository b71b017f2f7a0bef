package container

import "encoding/binary"

// FirstRecord returns the first record of a file (the kind's header) from
// data, a prefix of the file that holds at least its first block: a reader
// that needs only a header fetches that much with ranged reads instead of
// the whole object. The preamble and the first block are checked as Open
// checks them (magic, version, checksum, codec); nothing after the first
// block is read. When data ends before the first block does, the error is
// a *ShortError saying how many bytes from the start are needed. The slice
// may alias data.
func FirstRecord(name string, data []byte, kind Kind) ([]byte, error) {
	if len(data) < preambleLen+blockHeaderLen {
		return nil, &ShortError{Need: preambleLen + blockHeaderLen}
	}
	if got := Kind(data[0:4]); got != kind {
		return nil, corrupt(name, 0, nil, "magic %q, want %q (%s file)", got[:], kind[:], kind)
	}
	if v := data[4]; v != Version {
		return nil, corrupt(name, 4, nil, "format version %d, this reader knows version %d", v, Version)
	}
	if data[5] != 0 || data[6] != 0 || data[7] != 0 {
		return nil, corrupt(name, 5, nil, "reserved preamble bytes are not zero")
	}
	h := parseBlockHeader(data[preambleLen : preambleLen+blockHeaderLen])
	if h.typ != blockRecords {
		return nil, corrupt(name, preambleLen, nil, "the first block is of type %d, not a records block", h.typ)
	}
	need := int64(preambleLen+blockHeaderLen) + int64(h.storedLen)
	if int64(len(data)) < need {
		return nil, &ShortError{Need: need}
	}
	r := &Reader{name: name, data: data[:need]}
	_, payload, err := r.readBlock(preambleLen, need)
	if err != nil {
		return nil, err
	}
	n, k := binary.Uvarint(payload)
	if k <= 0 || n > uint64(len(payload)-k) {
		return nil, corrupt(name, preambleLen, nil, "record 0: bad length prefix at byte 0 of the block's raw payload")
	}
	return payload[k : k+int(n)], nil
}
