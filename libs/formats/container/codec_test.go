package container

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
)

// The writers' encoder compresses a block of DefaultBlockSize to what an
// encoder with the level's default window does (give or take the frame
// header), and a new one — the pool makes them again after every
// collection — costs well under the 8 MiB history buffer the default
// window allocated on the first block over 64 KiB.
func TestEncoderWindowIsABlock(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	block := make([]byte, 0, DefaultBlockSize)
	words := []string{"INSERT", "tidb", "row", "2026-12-06", "0000", "value", "k", "commit_ts"}
	for len(block) < DefaultBlockSize-16 {
		block = append(block, words[rng.IntN(len(words))]...)
		block = append(block, byte(rng.Uint32()))
	}
	def, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
	require.NoError(t, err)
	want := len(def.EncodeAll(block, nil))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e := encoderPool.New().(*zstd.Encoder)
	got := e.EncodeAll(block, nil)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d raw bytes: %d compressed (default window: %d); a new encoder and its first block allocated %d KiB", len(block), len(got), want, alloc>>10)
	require.Less(t, len(got), len(block)/2, "compresses")
	require.InDelta(t, want, len(got), 8, "compressed size against the default window's")
	require.Less(t, alloc, uint64(3<<20), "bytes allocated by a new encoder's first block")

	out, err := decompress(nil, got, len(block))
	require.NoError(t, err)
	require.Equal(t, block, out)
}
