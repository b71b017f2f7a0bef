package pool

import (
	"fmt"

	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	"google.golang.org/protobuf/encoding/protowire"
)

// CommittedRow is the hottest message of the pool: every row is encoded once
// by a flush and decoded by every reader. These hand-written codecs produce
// and accept exactly the protobuf encoding of formatv1.CommittedRow (tests
// compare them with the generated code) without reflection or allocation.

// appendRow appends r encoded as a formatv1.CommittedRow.
func appendRow(b []byte, r *Row) []byte {
	if r.CommitTs != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, r.CommitTs)
	}
	if r.StartTs != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, r.StartTs)
	}
	if r.Op != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(r.Op))
	}
	for _, f := range [...]struct {
		num protowire.Number
		v   []byte
	}{{4, r.Key}, {5, r.Value}, {6, r.OldValue}} {
		if len(f.v) > 0 {
			b = protowire.AppendTag(b, f.num, protowire.BytesType)
			b = protowire.AppendBytes(b, f.v)
		}
	}
	return b
}

// rowSize is len(appendRow(nil, r)).
func rowSize(r *Row) int {
	n := 0
	if r.CommitTs != 0 {
		n += 1 + protowire.SizeVarint(r.CommitTs)
	}
	if r.StartTs != 0 {
		n += 1 + protowire.SizeVarint(r.StartTs)
	}
	if r.Op != 0 {
		n += 1 + protowire.SizeVarint(uint64(r.Op))
	}
	for _, v := range [...][]byte{r.Key, r.Value, r.OldValue} {
		if len(v) > 0 {
			n += 1 + protowire.SizeBytes(len(v))
		}
	}
	return n
}

// rowRecord is a Row as a container record, encoded straight into the file.
type rowRecord Row

func (r *rowRecord) RecordSize() int                { return rowSize((*Row)(r)) }
func (r *rowRecord) AppendRecord(dst []byte) []byte { return appendRow(dst, (*Row)(r)) }

// parseRow decodes a formatv1.CommittedRow into r; r's slices alias b.
// Unknown fields are skipped, as protobuf requires.
func parseRow(b []byte, r *Row) error {
	*r = Row{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("bad field tag: %w", protowire.ParseError(n))
		}
		if !num.IsValid() {
			return fmt.Errorf("field number %d out of range", num)
		}
		b = b[n:]
		switch {
		case num >= 1 && num <= 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case 1:
				r.CommitTs = v
			case 2:
				r.StartTs = v
			case 3:
				r.Op = formatv1.Op(int32(v))
			}
		case num >= 4 && num <= 6 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case 4:
				r.Key = v
			case 5:
				r.Value = v
			case 6:
				r.OldValue = v
			}
		case num >= 1 && num <= 6:
			return fmt.Errorf("field %d has wire type %d", num, typ)
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return nil
}
