package pbwire

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The fields are written as proto.Marshal writes generated messages' proto3
// fields: zero and empty left out, the rest in full; sizes are the bytes
// written.
func TestFieldsAreProtoMarshals(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 1 << 40, ^uint64(0)} {
		want, err := proto.Marshal(wrapperspb.UInt64(v))
		require.NoError(t, err)
		got := AppendUint([]byte{}, 1, v)
		require.Equal(t, want, got, "varint %d", v)
		require.Equal(t, len(got), SizeUint(1, v))
	}
	for _, v := range [][]byte{nil, {}, {0}, make([]byte, 200)} {
		want, err := proto.Marshal(wrapperspb.Bytes(v))
		require.NoError(t, err)
		got := AppendBytes([]byte{}, 1, v)
		require.Equal(t, want, got, "bytes of %d", len(v))
		require.Equal(t, len(got), SizeBytes(1, v))
	}
	// A message field is written whatever its length, empty included.
	for _, s := range []string{"", "x"} {
		inner, err := proto.Marshal(structpb.NewStringValue(s))
		require.NoError(t, err)
		want, err := proto.Marshal(&structpb.ListValue{Values: []*structpb.Value{structpb.NewStringValue(s)}})
		require.NoError(t, err)
		got := append(AppendFieldHead(nil, 1, len(inner)), inner...)
		require.Equal(t, want, got)
		require.Equal(t, len(got), SizeField(1, len(inner)))
	}
}
