package tidbcodec

// Table keys. Every key of a table starts with 't' and the memcomparable
// table id, so a table is one contiguous key range:
//
//	record (row) key : 't' tableID[8] '_' 'r' handle[8]        (int handle, 19 bytes)
//	                   't' tableID[8] '_' 'r' encodedHandle     (common handle, >= 20 bytes)
//	index key        : 't' tableID[8] '_' 'i' indexID[8] encodedValues...
//
// tableID, handle and indexID are EncodeInt forms.

const (
	tableKeyPrefix = 't'
	keySep         = '_'
	recordMarker   = 'r'
	indexMarker    = 'i'

	tablePrefixLen  = 1 + 8                  // 't' tableID
	recordPrefixLen = tablePrefixLen + 2     // 't' tableID '_' 'r'
	recordKeyLen    = recordPrefixLen + 8    // ... int handle
	indexPrefixLen  = tablePrefixLen + 2 + 8 // 't' tableID '_' 'i' indexID

	// minCommonHandleLen: TiDB zero-pads a common handle shorter than 9
	// bytes to 9, so that a record key's handle part is 8 bytes exactly when
	// the handle is an int and never otherwise.
	minCommonHandleLen = 9
)

// TablePrefix returns 't' + tableID, the prefix of every key of the table.
func TablePrefix(tableID int64) []byte {
	return EncodeInt(append(make([]byte, 0, tablePrefixLen), tableKeyPrefix), tableID)
}

// TableRecordPrefix returns 't' + tableID + "_r", the prefix of the table's
// record keys.
func TableRecordPrefix(tableID int64) []byte {
	return appendRecordPrefix(make([]byte, 0, recordKeyLen), tableID)
}

// TableIndexPrefix returns 't' + tableID + "_i", the prefix of all the
// table's index keys.
func TableIndexPrefix(tableID int64) []byte {
	return appendTableMarker(make([]byte, 0, indexPrefixLen), tableID, indexMarker)
}

// EncodeIndexPrefix returns 't' + tableID + "_i" + indexID, the prefix of one
// index's keys. (Index values are not decoded here: a change stream reads
// rows, and index entries follow from them.)
func EncodeIndexPrefix(tableID, indexID int64) []byte {
	return EncodeInt(TableIndexPrefix(tableID), indexID)
}

// EncodeRecordKey returns the record key of the row with int handle handle
// (the _tidb_rowid or an integer primary key with PKIsHandle).
func EncodeRecordKey(tableID, handle int64) []byte {
	return EncodeInt(appendRecordPrefix(make([]byte, 0, recordKeyLen), tableID), handle)
}

// EncodeCommonHandleRecordKey returns the record key of a clustered-index
// row whose handle is encodedHandle, the memcomparable encoding of the
// primary-key column values. Like TiDB, a handle shorter than 9 bytes is
// zero-padded to 9 so it can never be mistaken for an int handle.
func EncodeCommonHandleRecordKey(tableID int64, encodedHandle []byte) []byte {
	n := max(len(encodedHandle), minCommonHandleLen)
	key := appendRecordPrefix(make([]byte, 0, recordPrefixLen+n), tableID)
	key = append(key, encodedHandle...)
	for len(key) < recordPrefixLen+n {
		key = append(key, 0)
	}
	return key
}

func appendRecordPrefix(dst []byte, tableID int64) []byte {
	return appendTableMarker(dst, tableID, recordMarker)
}

func appendTableMarker(dst []byte, tableID int64, marker byte) []byte {
	dst = append(dst, tableKeyPrefix)
	dst = EncodeInt(dst, tableID)
	return append(dst, keySep, marker)
}

// Handle identifies a row within its table: an int64, or for a clustered
// (common-handle) table the encoded primary-key bytes.
type Handle struct {
	Int    int64
	Common []byte // nil for an int handle; aliases the decoded key
}

// IsCommon reports whether h is a common handle.
func (h Handle) IsCommon() bool { return h.Common != nil }

// DecodeRecordKey returns the table id and int handle of a record key. A
// record key with a common handle is an error; use DecodeRecordKeyHandle.
func DecodeRecordKey(key []byte) (tableID, handle int64, err error) {
	tableID, h, err := DecodeRecordKeyHandle(key)
	if err != nil {
		return 0, 0, err
	}
	if h.IsCommon() {
		return 0, 0, malformed("record key", recordPrefixLen, "handle is a %d-byte common handle, not an int", len(h.Common))
	}
	return tableID, h.Int, nil
}

// DecodeRecordKeyHandle returns the table id and handle of any record key.
func DecodeRecordKeyHandle(key []byte) (tableID int64, h Handle, err error) {
	const what = "record key"
	tableID, err = decodeTableMarker(key, recordMarker, what)
	if err != nil {
		return 0, Handle{}, err
	}
	rest := key[recordPrefixLen:]
	switch {
	case len(rest) == 8:
		v, _, _ := DecodeInt(rest)
		return tableID, Handle{Int: v}, nil
	case len(rest) >= minCommonHandleLen:
		return tableID, Handle{Common: rest}, nil
	default:
		return 0, Handle{}, malformed(what, recordPrefixLen, "handle is %d bytes: neither an 8-byte int nor a common handle of >= %d", len(rest), minCommonHandleLen)
	}
}

// DecodeIndexPrefix returns the table and index id of an index key and the
// encoded index values (and handle) that follow them, undecoded.
func DecodeIndexPrefix(key []byte) (tableID, indexID int64, values []byte, err error) {
	const what = "index key"
	tableID, err = decodeTableMarker(key, indexMarker, what)
	if err != nil {
		return 0, 0, nil, err
	}
	indexID, values, err = DecodeInt(key[tablePrefixLen+2:])
	if err != nil {
		return 0, 0, nil, within(err, what, tablePrefixLen+2, "index id")
	}
	return tableID, indexID, values, nil
}

// decodeTableMarker checks 't' tableID '_' marker and returns the table id.
func decodeTableMarker(key []byte, marker byte, what string) (int64, error) {
	tableID, err := decodeTableID(key, what)
	if err != nil {
		return 0, err
	}
	if len(key) < tablePrefixLen+2 {
		return 0, malformed(what, tablePrefixLen, "key ends after the table id")
	}
	if key[tablePrefixLen] != keySep || key[tablePrefixLen+1] != marker {
		return 0, malformed(what, tablePrefixLen, "want %q, have %q", []byte{keySep, marker}, key[tablePrefixLen:tablePrefixLen+2])
	}
	return tableID, nil
}

// DecodeTableID returns the table id of any key in a table's range: record,
// index or the bare table prefix.
func DecodeTableID(key []byte) (int64, error) {
	return decodeTableID(key, "table key")
}

func decodeTableID(key []byte, what string) (int64, error) {
	if len(key) == 0 || key[0] != tableKeyPrefix {
		return 0, malformed(what, 0, "does not start with 't'")
	}
	id, _, err := DecodeInt(key[1:])
	if err != nil {
		return 0, within(err, what, 1, "table id")
	}
	return id, nil
}

// KeyKind classifies a raw TiKV key of a TiDB cluster.
type KeyKind uint8

// Kinds of keys ClassifyKey tells apart.
const (
	KeyOther  KeyKind = iota // not a key of TiDB's table or meta ranges
	KeyMeta                  // 'm...': schema and global metadata
	KeyTable                 // 't' tableID with neither a record nor an index marker
	KeyRecord                // 't' tableID "_r" handle: a row
	KeyIndex                 // 't' tableID "_i" indexID values: an index entry
)

// ClassifyKey tells a change stream what a key is from its shape alone
// (without decoding the handle or index values).
func ClassifyKey(key []byte) KeyKind {
	switch {
	case len(key) > 0 && key[0] == metaKeyPrefix:
		return KeyMeta
	case len(key) < tablePrefixLen || key[0] != tableKeyPrefix:
		return KeyOther
	case len(key) >= recordKeyLen && key[tablePrefixLen] == keySep && key[tablePrefixLen+1] == recordMarker:
		return KeyRecord
	case len(key) >= indexPrefixLen && key[tablePrefixLen] == keySep && key[tablePrefixLen+1] == indexMarker:
		return KeyIndex
	default:
		return KeyTable
	}
}
