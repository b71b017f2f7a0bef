package container

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// A zstd codec compresses blocks into standard zstd frames and decodes
// them. Two implement it: the reference library, libzstd, through cgo
// (codec_cgo.go; the default wherever the binary is built with cgo, as
// Pebble already links it), and klauspost/compress in Go. Their frames are
// the same format, so either reads what the other wrote (TestCodecsAgree);
// only the bytes of a compressed block differ.
//
// Why two: at the same ratio libzstd's level 1 compresses the simulator's
// rows about 1.5 times as fast as klauspost's fastest level, and decodes
// them about 1.8 times as fast (`go test ./libs/formats/container -run '^$'
// -bench Codec`); the pool writer's compression was the largest single
// item of the fleet's CPU. The Go codec stays for builds without cgo and
// as the reference the tests hold the other to.
type codec interface {
	name() string
	// compress appends the zstd frame of src to dst.
	compress(dst, src []byte) []byte
	// decompress decodes a zstd payload into dst[:0] (or a new buffer if
	// dst is smaller than want), refusing output larger than want bytes.
	decompress(dst, src []byte, want int) ([]byte, error)
}

// codecs are the available codecs, the default first (set up by init
// functions, never changed after).
var codecs = []codec{goCodec{}}

// active is the index in codecs of the codec writers and readers use.
var active atomic.Int32

func activeCodec() codec { return codecs[active.Load()] }

// Codecs names the available zstd codecs, the default first: "c"
// (libzstd through cgo, where the binary was built with cgo) and "go".
func Codecs() []string {
	names := make([]string, len(codecs))
	for i, c := range codecs {
		names[i] = c.name()
	}
	return names
}

// UseCodec makes every writer and reader of the process use the named
// codec (see Codecs) from now on and returns a function that restores the
// one before. It is meant for tests and benchmarks that compare the two;
// a file written while it switches has blocks of both (which every reader
// reads, but whose bytes no golden hash pins).
func UseCodec(name string) (restore func(), err error) {
	for i, c := range codecs {
		if c.name() == name {
			prev := active.Swap(int32(i))
			return func() { active.Store(prev) }, nil
		}
	}
	return nil, fmt.Errorf("container: no zstd codec %q (have %v)", name, Codecs())
}

func compress(dst, src []byte) []byte { return activeCodec().compress(dst, src) }

func decompress(dst, src []byte, want int) ([]byte, error) {
	return activeCodec().decompress(dst, src, want)
}

// goCodec is klauspost/compress's zstd.
type goCodec struct{}

func (goCodec) name() string { return "go" }

// zstd encoders and decoders are expensive to build and safe to reuse; one
// pool each, used with EncodeAll/DecodeAll (no goroutines per call).
//
// An encoder's window is the block size: with the level's default (4 MiB)
// every encoder allocated an 8 MiB history buffer on its first block over
// 64 KiB, and the pool makes new encoders after every collection — in the
// in-process fleet's CPU profile 2 % of all CPU went to zeroing those
// buffers. A frame holds one block, so a block of up to DefaultBlockSize
// compresses to as many bytes as before (only the frame header's window
// differs); a larger one (a record over the block size) finds no match
// further back than DefaultBlockSize.
var (
	encoderPool = sync.Pool{New: func() any {
		e, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(DefaultBlockSize),
			zstd.WithLowerEncoderMem(true),
			zstd.WithZeroFrames(true))
		if err != nil {
			panic(fmt.Sprintf("zstd encoder with static options: %v", err))
		}
		return e
	}}
	decoderPool = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(MaxBlockRaw),
			zstd.WithDecoderMaxWindow(MaxBlockRaw))
		if err != nil {
			panic(fmt.Sprintf("zstd decoder with static options: %v", err))
		}
		return d
	}}
)

func (goCodec) compress(dst, src []byte) []byte {
	e := encoderPool.Get().(*zstd.Encoder)
	dst = e.EncodeAll(src, dst)
	encoderPool.Put(e)
	return dst
}

func (goCodec) decompress(dst, src []byte, want int) ([]byte, error) {
	d := decoderPool.Get().(*zstd.Decoder)
	defer decoderPool.Put(d)
	if cap(dst) < want {
		dst = make([]byte, 0, want)
	}
	out, err := d.DecodeAll(src, dst[:0])
	if err != nil {
		return nil, err
	}
	if len(out) != want {
		return nil, fmt.Errorf("decompressed %d bytes, header says %d", len(out), want)
	}
	return out, nil
}
