package container

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"slices"
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
	e := encoderPool.New().(*zstd.Encoder) // the Go codec's
	got := e.EncodeAll(block, nil)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d raw bytes: %d compressed (default window: %d); a new encoder and its first block allocated %d KiB", len(block), len(got), want, alloc>>10)
	require.Less(t, len(got), len(block)/2, "compresses")
	require.InDelta(t, want, len(got), 8, "compressed size against the default window's")
	require.Less(t, alloc, uint64(3<<20), "bytes allocated by a new encoder's first block")

	out, err := goCodec{}.decompress(nil, got, len(block))
	require.NoError(t, err)
	require.Equal(t, block, out)
}

// codecBlocks are blocks of the kinds the writers compress: rows of
// random letters (the simulator's values), repeated words, random bytes,
// one byte, and sizes from one byte to a record larger than a block.
func codecBlocks() [][]byte {
	rng := rand.New(rand.NewPCG(8, 13))
	var blocks [][]byte
	for _, n := range []int{1, 2, 31, 4 << 10, 64 << 10, DefaultBlockSize, 3 * DefaultBlockSize} {
		letters := make([]byte, n)
		words := make([]byte, 0, n)
		random := make([]byte, n)
		for i := range letters {
			letters[i] = byte('a' + rng.IntN(26))
			random[i] = byte(rng.Uint32())
		}
		for len(words) < n {
			words = append(words, []string{"tidb ", "row ", "commit_ts ", "0000 "}[rng.IntN(4)]...)
		}
		blocks = append(blocks, letters, words[:n], random, bytes.Repeat([]byte{7}, n))
	}
	return blocks
}

// Every codec reads what every codec wrote: the frames are zstd's format,
// whichever library made them. Appending keeps dst's bytes.
func TestCodecsAgree(t *testing.T) {
	for _, w := range codecs {
		for _, r := range codecs {
			for i, block := range codecBlocks() {
				prefix := []byte("kept")
				frame := w.compress(append([]byte(nil), prefix...), block)
				require.Equal(t, prefix, frame[:len(prefix)], "%s: block %d: dst's bytes", w.name(), i)
				out, err := r.decompress(nil, frame[len(prefix):], len(block))
				require.NoError(t, err, "written by %s, read by %s, block %d", w.name(), r.name(), i)
				require.Equal(t, block, out, "written by %s, read by %s, block %d", w.name(), r.name(), i)
				// Into a buffer large enough: no new one.
				buf := make([]byte, 0, len(block)+10)
				out, err = r.decompress(buf, frame[len(prefix):], len(block))
				require.NoError(t, err)
				require.Equal(t, block, out)
				require.Same(t, &buf[:1][0], &out[:1][0], "%s decoded into a new buffer", r.name())
			}
		}
	}
}

// A payload that decodes to another length than the header says, or is not
// zstd at all, is an error under every codec; libzstd writes nothing past
// the length the header gives (the Go codec may use dst's spare capacity,
// and bounds what it allocates by MaxBlockRaw).
func TestCodecsRefuseWrongLengthsAndGarbage(t *testing.T) {
	block := bytes.Repeat([]byte("tidb row "), 1000)
	frame := goCodec{}.compress(nil, block)
	for _, c := range codecs {
		for _, want := range []int{len(block) - 1, len(block) + 1, 1} {
			guard := make([]byte, want, want+64)
			for i := range guard[:cap(guard)] {
				guard[:cap(guard)][i] = 0xEE
			}
			_, err := c.decompress(guard[:0], frame, want)
			require.Error(t, err, "%s: %d bytes decoded as %d", c.name(), len(block), want)
			if c.name() == "go" {
				continue
			}
			for i, b := range guard[want:cap(guard)] {
				require.Equal(t, byte(0xEE), b, "%s: byte %d past the %d wanted was written", c.name(), want+i, want)
			}
		}
		for _, bad := range [][]byte{{}, {0}, []byte("not a zstd frame at all"), frame[:len(frame)/2], append(slices.Clone(frame), 1, 2, 3)} {
			_, err := c.decompress(nil, bad, len(block))
			require.Error(t, err, "%s: %q accepted", c.name(), bad[:min(len(bad), 8)])
		}
	}
}

// FuzzCodecs feeds arbitrary payloads to every codec: none panics, none
// returns other than the length asked for, and where two succeed they
// agree.
func FuzzCodecs(f *testing.F) {
	for _, b := range codecBlocks()[:12] {
		f.Add(goCodec{}.compress(nil, b), uint16(len(b)))
		f.Add(codecs[0].compress(nil, b), uint16(len(b)))
	}
	f.Fuzz(func(t *testing.T, payload []byte, want uint16) {
		var first []byte
		var firstName string
		for _, c := range codecs {
			out, err := c.decompress(nil, payload, int(want))
			if err != nil {
				continue
			}
			if len(out) != int(want) {
				t.Fatalf("%s: %d bytes, asked for %d", c.name(), len(out), want)
			}
			if first != nil && !bytes.Equal(first, out) {
				t.Fatalf("%s and %s decode the payload differently", firstName, c.name())
			}
			first, firstName = out, c.name()
		}
	})
}

// BenchmarkCodec compresses and decodes a block of rows with random-letter
// values (as the simulator writes them) and one of random bytes, with
// each codec.
func BenchmarkCodec(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([]byte, 0, DefaultBlockSize+512)
	for len(rows) < DefaultBlockSize {
		rows = append(rows, 0x74, 0x80, 0, 0, 0, 0, 0, 0, 0x2a, 0x5f, 0x72)
		for i := 0; i < 8; i++ {
			rows = append(rows, byte(rng.Uint32()))
		}
		for i := 0; i < 200; i++ {
			rows = append(rows, byte('a'+rng.IntN(26)))
		}
		rows = append(rows, 8, byte(rng.IntN(4)), 0, 0, 0, 0, 0, 0)
	}
	random := make([]byte, DefaultBlockSize)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for _, in := range []struct {
		name  string
		block []byte
	}{{"letters", rows[:DefaultBlockSize]}, {"random", random}} {
		for _, c := range codecs {
			frame := c.compress(nil, in.block)
			b.Run("compress/"+in.name+"/"+c.name(), func(b *testing.B) {
				b.SetBytes(int64(len(in.block)))
				var dst []byte
				for i := 0; i < b.N; i++ {
					dst = c.compress(dst[:0], in.block)
				}
				b.ReportMetric(float64(len(dst))/float64(len(in.block)), "ratio")
			})
			b.Run("decompress/"+in.name+"/"+c.name(), func(b *testing.B) {
				b.SetBytes(int64(len(in.block)))
				dst := make([]byte, 0, len(in.block))
				for i := 0; i < b.N; i++ {
					if _, err := c.decompress(dst, frame, len(in.block)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
