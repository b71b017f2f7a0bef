package tidbcodec

import (
	"strconv"
	"strings"
)

// The meta range. TiDB keeps its catalog as small data structures (TiDB's
// pkg/structure) under the prefix 'm':
//
//	string : 'm' EncodeBytes(key) EncodeUint('s')
//	hash   : 'm' EncodeBytes(key) EncodeUint('h') EncodeBytes(field)   one key per field
//	list   : 'm' EncodeBytes(key) EncodeUint('l') EncodeInt(index)
//	         'm' EncodeBytes(key) EncodeUint('L')                      list meta
//	         'm' EncodeBytes(key) EncodeUint('H')                      hash meta (v5.1 and earlier only)
//
// The type is a whole 8-byte EncodeUint, not one byte: TiDB writes it so.
//
// Databases live in hash "DBs", field "DB:{dbID}", value DBInfo JSON. The
// tables of a database live in hash "DB:{dbID}", field "Table:{tableID}",
// value TableInfo JSON; the same hash also holds the auto-id counters
// ("TID:", "IID:", "TARID:", "SID:", "SequenceCycle:" + table id), which a
// schema reader skips.

const metaKeyPrefix = 'm'

// MetaKeyType is the structure-type tag of a meta key.
type MetaKeyType byte

// Structure types of TiDB's meta keys.
const (
	MetaStringData MetaKeyType = 's'
	MetaStringMeta MetaKeyType = 'S' // defined by TiDB, never written
	MetaHashData   MetaKeyType = 'h'
	MetaHashMeta   MetaKeyType = 'H' // hash length, written by TiDB v5.1 and earlier
	MetaListData   MetaKeyType = 'l'
	MetaListMeta   MetaKeyType = 'L'
)

// Well-known meta keys and field prefixes (TiDB pkg/meta).
const (
	MetaDBs              = "DBs"              // hash: DB:{id} -> DBInfo JSON
	MetaSchemaVersion    = "SchemaVersionKey" // string: decimal schema version
	MetaNextGlobalID     = "NextGlobalID"     // string: decimal last allocated id
	MetaDDLJobHistory    = "DDLJobHistory"    // hash: 8-byte big-endian job id -> Job JSON
	metaDBFieldPrefix    = "DB:"
	metaTableFieldPrefix = "Table:"
	metaSchemaDiffPrefix = "Diff:"
)

func appendMetaHead(dst []byte, key []byte, tp MetaKeyType) []byte {
	dst = append(dst, metaKeyPrefix)
	dst = EncodeBytes(dst, key)
	return EncodeUint(dst, uint64(tp))
}

// EncodeMetaStringKey is the key of string key.
func EncodeMetaStringKey(key []byte) []byte {
	return appendMetaHead(make([]byte, 0, 1+EncodedBytesLen(len(key))+8), key, MetaStringData)
}

// EncodeMetaHashKey is the key of field in hash key.
func EncodeMetaHashKey(key, field []byte) []byte {
	dst := make([]byte, 0, 1+EncodedBytesLen(len(key))+8+EncodedBytesLen(len(field)))
	return EncodeBytes(appendMetaHead(dst, key, MetaHashData), field)
}

// EncodeMetaHashPrefix is the common prefix of all fields of hash key: scan
// [prefix, PrefixEnd(prefix)) to list the hash.
func EncodeMetaHashPrefix(key []byte) []byte {
	return appendMetaHead(make([]byte, 0, 1+EncodedBytesLen(len(key))+8), key, MetaHashData)
}

// EncodeMetaHashMetaKey is the legacy length key of hash key.
func EncodeMetaHashMetaKey(key []byte) []byte {
	return appendMetaHead(nil, key, MetaHashMeta)
}

// EncodeMetaListKey is the key of element index of list key.
func EncodeMetaListKey(key []byte, index int64) []byte {
	return EncodeInt(appendMetaHead(nil, key, MetaListData), index)
}

// EncodeMetaListMetaKey is the meta (length and bounds) key of list key.
func EncodeMetaListMetaKey(key []byte) []byte {
	return appendMetaHead(nil, key, MetaListMeta)
}

// DBField is the field "DB:{dbID}" naming a database in hash DBs (and the
// key of the database's own hash of tables).
func DBField(dbID int64) string { return metaDBFieldPrefix + strconv.FormatInt(dbID, 10) }

// TableField is the field "Table:{tableID}" in hash DB:{dbID}.
func TableField(tableID int64) string {
	return metaTableFieldPrefix + strconv.FormatInt(tableID, 10)
}

// MetaDBKey is the key holding DBInfo JSON of database dbID.
func MetaDBKey(dbID int64) []byte {
	return EncodeMetaHashKey([]byte(MetaDBs), []byte(DBField(dbID)))
}

// MetaTableKey is the key holding TableInfo JSON of table tableID in
// database dbID.
func MetaTableKey(dbID, tableID int64) []byte {
	return EncodeMetaHashKey([]byte(DBField(dbID)), []byte(TableField(tableID)))
}

// MetaTablesPrefix is the prefix of every field of database dbID's hash.
func MetaTablesPrefix(dbID int64) []byte {
	return EncodeMetaHashPrefix([]byte(DBField(dbID)))
}

// MetaSchemaVersionKey is the string key whose value is the global schema
// version; every DDL bumps it in the same transaction as its meta writes.
func MetaSchemaVersionKey() []byte {
	return EncodeMetaStringKey([]byte(MetaSchemaVersion))
}

// MetaSchemaDiffKey is the string key holding the SchemaDiff JSON of one
// schema version.
func MetaSchemaDiffKey(version int64) []byte {
	return EncodeMetaStringKey([]byte(metaSchemaDiffPrefix + strconv.FormatInt(version, 10)))
}

// MetaDDLJobHistoryKey is the key of a finished DDL job in hash
// DDLJobHistory. Its field is the job id as 8 raw big-endian bytes (not the
// sign-flipped EncodeInt form). TiDB also inserts the job into the table
// mysql.tidb_ddl_history; both copies are written.
func MetaDDLJobHistoryKey(jobID int64) []byte {
	return EncodeMetaHashKey([]byte(MetaDDLJobHistory), DDLJobField(jobID))
}

// MetaKey is a decoded meta key. Field is set for hash data keys, Index for
// list data keys.
type MetaKey struct {
	Type  MetaKeyType
	Key   []byte
	Field []byte
	Index int64
}

// DecodeMetaKey decodes any key of the meta range.
func DecodeMetaKey(key []byte) (MetaKey, error) {
	const what = "meta key"
	if len(key) == 0 || key[0] != metaKeyPrefix {
		return MetaKey{}, malformed(what, 0, "does not start with 'm'")
	}
	name, rest, err := DecodeBytes(key[1:])
	if err != nil {
		return MetaKey{}, within(err, what, 1, "key")
	}
	off := len(key) - len(rest)
	tp, rest, err := DecodeUint(rest)
	if err != nil {
		return MetaKey{}, within(err, what, off, "type")
	}
	// TiDB's own decoders look only at the low byte of the 8-byte type;
	// its writers always zero the rest, so anything else is not a meta key.
	if tp > 0xFF {
		return MetaKey{}, malformed(what, off, "unknown structure type 0x%016x", tp)
	}
	mk := MetaKey{Type: MetaKeyType(tp), Key: name}
	switch mk.Type {
	case MetaStringData, MetaStringMeta, MetaHashMeta, MetaListMeta:
	case MetaHashData:
		off = len(key) - len(rest)
		if mk.Field, rest, err = DecodeBytes(rest); err != nil {
			return MetaKey{}, within(err, what, off, "field")
		}
	case MetaListData:
		off = len(key) - len(rest)
		if mk.Index, rest, err = DecodeInt(rest); err != nil {
			return MetaKey{}, within(err, what, off, "list index")
		}
	default:
		return MetaKey{}, malformed(what, off, "unknown structure type 0x%016x", tp)
	}
	if len(rest) != 0 {
		return MetaKey{}, malformed(what, len(key)-len(rest), "%d unexpected trailing bytes", len(rest))
	}
	return mk, nil
}

// ParseDBField returns the id in a "DB:{id}" field or hash key.
func ParseDBField(field string) (int64, error) {
	return parseIDField(field, metaDBFieldPrefix, "DB field")
}

// ParseTableField returns the id in a "Table:{id}" field.
func ParseTableField(field string) (int64, error) {
	return parseIDField(field, metaTableFieldPrefix, "table field")
}

func parseIDField(field, prefix, what string) (int64, error) {
	digits, ok := strings.CutPrefix(field, prefix)
	if !ok {
		return 0, malformed(what, 0, "%q does not start with %q", field, prefix)
	}
	id, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, malformed(what, len(prefix), "%q is not a decimal int64", digits)
	}
	return id, nil
}
