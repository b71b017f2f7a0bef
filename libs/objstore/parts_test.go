package objstore

import (
	"context"
	"io"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// partsCases are part layouts whose concatenation is "abcdefghij" (or
// empty): single bytes, empty parts in every position, one part.
var partsCases = [][][]byte{
	nil,
	{{}},
	{nil, {}, nil},
	{[]byte("abcdefghij")},
	{[]byte("a"), []byte("bcd"), []byte("efghij")},
	{nil, []byte("ab"), {}, {}, []byte("c"), []byte("defghi"), nil, []byte("j"), {}},
	{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e"), []byte("f"), []byte("g"), []byte("h"), []byte("i"), []byte("j")},
}

func TestPartsBody(t *testing.T) {
	for _, parts := range partsCases {
		want := slices.Concat(parts...)
		body, n := partsBody(parts)
		require.Equal(t, int64(len(want)), n, "%q", parts)
		got, err := io.ReadAll(body)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "%q", parts)
		// Rewound and read again in small pieces from every offset, as a
		// retry after a partial send does.
		for off := range len(want) + 1 {
			_, err := body.Seek(int64(off), io.SeekStart)
			require.NoError(t, err)
			var got []byte
			buf := make([]byte, 3)
			for {
				k, err := body.Read(buf)
				got = append(got, buf[:k]...)
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
			}
			require.Equal(t, string(want[off:]), string(got), "%q from %d", parts, off)
		}
		if ra, ok := body.(io.ReaderAt); ok {
			_, err := ra.ReadAt(make([]byte, 1), -1)
			require.Error(t, err)
		}
	}
}

func TestEqualParts(t *testing.T) {
	for _, parts := range partsCases {
		want := slices.Concat(parts...)
		require.True(t, equalParts(want, parts), "%q", parts)
		require.Equal(t, string(want), string(joinParts(parts)))
		require.Equal(t, len(want), PartsLen(parts))
		if len(want) > 0 {
			require.False(t, equalParts(want[1:], parts), "%q shorter", parts)
			require.False(t, equalParts(append(slices.Clone(want), 'x'), parts), "%q longer", parts)
			other := slices.Clone(want)
			other[len(other)-1]++
			require.False(t, equalParts(other, parts), "%q other bytes", parts)
		} else {
			require.False(t, equalParts([]byte("x"), parts))
		}
	}
}

// recordingStore records which method wrote.
type recordingStore struct {
	Store
	calls []string
}

func (r *recordingStore) Put(ctx context.Context, key string, data []byte) error {
	r.calls = append(r.calls, "Put")
	return r.Store.Put(ctx, key, data)
}

func (r *recordingStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	r.calls = append(r.calls, "PutIfAbsent")
	return r.Store.PutIfAbsent(ctx, key, data)
}

func (r *recordingStore) PutParts(ctx context.Context, key string, parts [][]byte) error {
	r.calls = append(r.calls, "PutParts")
	return r.Store.(PartsPutter).PutParts(ctx, key, parts)
}

func (r *recordingStore) PutIfAbsentParts(ctx context.Context, key string, parts [][]byte) error {
	r.calls = append(r.calls, "PutIfAbsentParts")
	return r.Store.(PartsPutter).PutIfAbsentParts(ctx, key, parts)
}

// The package functions use a PartsPutter's methods for anything but a
// single part, which goes to the one-slice method as it is.
func TestPartsDispatch(t *testing.T) {
	ctx := context.Background()
	r := &recordingStore{Store: NewMemory()}
	require.NoError(t, PutParts(ctx, r, "a", []byte("x"), []byte("y")))
	require.NoError(t, PutIfAbsentParts(ctx, r, "b", []byte("x"), []byte("y")))
	require.NoError(t, PutParts(ctx, r, "c", []byte("x")))
	require.NoError(t, PutIfAbsentParts(ctx, r, "d", []byte("x")))
	require.NoError(t, PutIfAbsentParts(ctx, r, "e"))
	require.Equal(t, []string{"PutParts", "PutIfAbsentParts", "Put", "PutIfAbsent", "PutIfAbsentParts"}, r.calls)
}
