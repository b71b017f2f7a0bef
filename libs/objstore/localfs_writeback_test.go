package objstore

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPutStartsWriteBackBehindTheWrites checks that a large object is
// written back in syncBehindBytes pieces as it is written — each piece
// once, in order, none past what was written — and that what lands is
// exactly the parts' concatenation, whether they come as one part or as
// many of every size.
func TestPutStartsWriteBackBehindTheWrites(t *testing.T) {
	type call struct{ off, n int64 }
	var calls []call
	real := writeback
	writeback = func(f *os.File, off, n int64) {
		fi, err := f.Stat()
		require.NoError(t, err)
		require.LessOrEqual(t, off+n, fi.Size(), "write-back asked past what was written")
		calls = append(calls, call{off, n})
		real(f, off, n) // the real hint too: it must not disturb the file
	}
	t.Cleanup(func() { writeback = real })

	pattern := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7) ^ seed
		}
		return b
	}
	const mib = syncBehindBytes
	for _, tc := range []struct {
		name  string
		parts [][]byte
	}{
		{"small", [][]byte{pattern(100, 1)}},
		{"one large part", [][]byte{pattern(3*mib+mib/2, 2)}},
		{"exact pieces", [][]byte{pattern(2*mib, 3)}},
		{"many parts", [][]byte{pattern(10, 4), pattern(mib-5, 5), {}, pattern(mib/3, 6), pattern(2*mib+17, 7), pattern(64<<10, 8), pattern(1, 9)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls = nil
			s, err := NewLocalFS(t.TempDir())
			require.NoError(t, err)
			require.NoError(t, s.PutParts(context.Background(), "k", tc.parts))
			want := bytes.Join(tc.parts, nil)
			got, err := os.ReadFile(s.path("k"))
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "object differs from its parts")

			require.Len(t, calls, len(want)/mib, "one write-back per full piece")
			for i, c := range calls {
				require.Equal(t, call{int64(i) * mib, mib}, c)
			}
		})
	}
}
