package container

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// zstd encoders and decoders are expensive to build and safe to reuse; one
// pool each, used with EncodeAll/DecodeAll (no goroutines per call).
var (
	encoderPool = sync.Pool{New: func() any {
		e, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1),
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
