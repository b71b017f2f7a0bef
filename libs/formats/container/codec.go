package container

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

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

// compress appends the zstd frame of src to dst.
func compress(dst, src []byte) []byte {
	e := encoderPool.Get().(*zstd.Encoder)
	dst = e.EncodeAll(src, dst)
	encoderPool.Put(e)
	return dst
}

// decompress decodes one zstd payload into dst[:0], refusing output larger
// than want bytes.
func decompress(dst, src []byte, want int) ([]byte, error) {
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
