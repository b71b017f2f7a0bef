package pool

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	"google.golang.org/protobuf/proto"
)

// The hand-written row codec is byte-identical to the generated protobuf code.
func TestRowCodecMatchesProtobuf(t *testing.T) {
	for _, r := range []Row{
		{CommitTs: 463267590320947200, StartTs: 463267590320947100, Op: formatv1.Op_OP_PUT, Key: []byte("t\x80k"), Value: []byte("value")},
		{CommitTs: 5, StartTs: 4, Op: formatv1.Op_OP_DELETE, Key: []byte("k"), OldValue: []byte("old")},
		{CommitTs: 1, Key: []byte("k"), Value: bytes.Repeat([]byte{7}, 300)},
	} {
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(&formatv1.CommittedRow{CommitTs: r.CommitTs, StartTs: r.StartTs,
			Op: r.Op, Key: r.Key, Value: r.Value, OldValue: r.OldValue})
		require.NoError(t, err)
		require.Equal(t, want, appendRow(nil, &r))
		require.Equal(t, len(want), rowSize(&r))
		var got Row
		require.NoError(t, parseRow(want, &got))
		require.Equal(t, 0, Compare(&r, &got))
		require.Equal(t, r.Op, got.Op)
		require.Equal(t, r.Value, got.Value)
		require.Equal(t, r.OldValue, got.OldValue)
	}
}

func FuzzParseRow(f *testing.F) {
	b, _ := proto.Marshal(&formatv1.CommittedRow{CommitTs: 9, StartTs: 8, Op: formatv1.Op_OP_PUT, Key: []byte("k"), Value: []byte("v")})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Row
		if parseRow(b, &r) != nil {
			return
		}
		// What we accept, protobuf accepts with the same values.
		var m formatv1.CommittedRow
		require.NoError(t, proto.Unmarshal(b, &m))
		require.Equal(t, m.CommitTs, r.CommitTs)
		require.Equal(t, m.StartTs, r.StartTs)
		require.Equal(t, string(m.Key), string(r.Key))
		require.Equal(t, string(m.Value), string(r.Value))
	})
}
