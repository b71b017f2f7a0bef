package pool

import (
	"bytes"
	"cmp"

	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// Row is one committed row change.
type Row struct {
	CommitTs uint64
	StartTs  uint64
	Op       formatv1.Op
	Key      []byte
	Value    []byte
	OldValue []byte
}

// Compare orders rows as the pool stores them: commit_ts, then start_ts (so a
// transaction's rows are contiguous even when async commit gives two
// transactions one commit_ts), then key.
func Compare(a, b *Row) int {
	if c := cmp.Compare(a.CommitTs, b.CommitTs); c != 0 {
		return c
	}
	if c := cmp.Compare(a.StartTs, b.StartTs); c != 0 {
		return c
	}
	return bytes.Compare(a.Key, b.Key)
}

// Clone copies the row's byte slices.
func (r Row) Clone() Row {
	r.Key = bytes.Clone(r.Key)
	r.Value = bytes.Clone(r.Value)
	r.OldValue = bytes.Clone(r.OldValue)
	return r
}
