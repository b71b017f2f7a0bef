package sortbuf

import "fmt"

// Op is what a committed row does to its key.
type Op uint8

// The numbering follows TiKV's cdcpb.Event_Row_OpType (PUT=1, DELETE=2) so a
// dispatcher can convert without a table; 0 means "not given".
const (
	OpPut    Op = 1
	OpDelete Op = 2
)

// Valid reports whether o is OpPut or OpDelete.
func (o Op) Valid() bool { return o == OpPut || o == OpDelete }

func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	default:
		return fmt.Sprintf("op(%d)", uint8(o))
	}
}

// Row is one committed row change. Rows of a range sort by (CommitTs,
// StartTs, Key); StartTs identifies the transaction, so the rows of one
// transaction are contiguous.
//
// A nil and an empty Value (or OldValue) are the same thing: "none".
type Row struct {
	CommitTs uint64
	StartTs  uint64
	Op       Op
	Key      []byte
	Value    []byte
	OldValue []byte
}

// Size is the row's payload in bytes (key, value and old value), the unit of
// the byte statistics.
func (r *Row) Size() int { return len(r.Key) + len(r.Value) + len(r.OldValue) }

// Clone returns a deep copy, for callers that keep a row past a Scan
// callback.
func (r Row) Clone() Row {
	buf := make([]byte, 0, r.Size())
	buf = append(buf, r.Key...)
	buf = append(buf, r.Value...)
	buf = append(buf, r.OldValue...)
	k := len(r.Key)
	v := k + len(r.Value)
	r.Key = nilIfEmpty(buf[:k:k])
	r.Value = nilIfEmpty(buf[k:v:v])
	r.OldValue = nilIfEmpty(buf[v:])
	return r
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
