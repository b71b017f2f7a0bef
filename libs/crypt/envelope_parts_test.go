package crypt

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/objstore/objstoretest"
)

// Sealing the parts of a plaintext gives the very bytes sealing it whole
// does, however the parts cut the chunks, and the envelope opens to the
// plaintext.
func TestSealPartsEqualsWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dek := bytes.Repeat([]byte{9}, DataKeyLen)
	for _, chunk := range []int64{16, 100, DefaultChunkSize} {
		for _, size := range []int{0, 1, 15, 16, 17, 99, 100, 101, 1000, 3*DefaultChunkSize + 5} {
			plain := make([]byte, size)
			for i := range plain {
				plain[i] = byte(rng.Uint32())
			}
			h := &header{chunkSize: chunk, plainLen: int64(size), ref: "local:k", wrapped: []byte("wrapped")}
			h.encode()
			sl, err := newSealer(dek, h, "tenant/key")
			require.NoError(t, err)
			orig := bytes.Clone(plain)
			whole := sl.seal(nil, [][]byte{plain})
			require.Len(t, whole, int(h.objectLen()))
			opened, err := sl.open(nil, whole[len(h.raw):], 0)
			require.NoError(t, err)
			require.True(t, bytes.Equal(plain, opened), "chunk %d size %d", chunk, size)
			for trial := range 20 {
				parts := objstoretest.RandomParts(rng.Uint64(), plain, trial+1)
				require.True(t, bytes.Equal(plain, slices.Concat(parts...)))
				got := sl.seal(make([]byte, 0, rng.IntN(2)*int(h.objectLen())), parts) // in place, or growing
				require.True(t, bytes.Equal(whole, got), "chunk %d size %d parts %d", chunk, size, len(parts))
				require.True(t, bytes.Equal(orig, plain), "the parts are left as they were")
			}
		}
	}
}
