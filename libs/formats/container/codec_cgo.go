//go:build cgo

package container

import (
	"fmt"
	"slices"
	"sync"

	ddzstd "github.com/DataDog/zstd"
)

func init() {
	// The default: first in the list, index 0.
	codecs = append([]codec{cCodec{}}, codecs...)
}

// cCodec is libzstd (DataDog/zstd, the library Pebble links).
type cCodec struct{}

func (cCodec) name() string { return "c" }

// cLevel is libzstd's level 1: its fastest regular level, as
// zstd.SpeedFastest is klauspost's (their ratios are within 1 % on the
// simulator's rows).
const cLevel = 1

// cContexts keeps libzstd contexts for reuse: a context's tables are
// allocated by its first block, in C memory the Go collector does not see,
// so contexts are kept in a plain free list (not a sync.Pool, which would
// drop them at every collection and make new ones). The list holds at most
// maxFreeContexts; more are left to their finalizer, which frees them.
var cContexts struct {
	mu   sync.Mutex
	free []ddzstd.Ctx
}

const maxFreeContexts = 64

func getContext() ddzstd.Ctx {
	cContexts.mu.Lock()
	defer cContexts.mu.Unlock()
	if n := len(cContexts.free); n > 0 {
		c := cContexts.free[n-1]
		cContexts.free[n-1] = nil
		cContexts.free = cContexts.free[:n-1]
		return c
	}
	return ddzstd.NewCtx()
}

func putContext(c ddzstd.Ctx) {
	cContexts.mu.Lock()
	defer cContexts.mu.Unlock()
	if len(cContexts.free) < maxFreeContexts {
		cContexts.free = append(cContexts.free, c)
	}
}

func (cCodec) compress(dst, src []byte) []byte {
	bound := ddzstd.CompressBound(len(src))
	dst = slices.Grow(dst, bound)
	c := getContext()
	// CompressLevel writes into the slice it is given when it has room
	// for the bound, so the frame lands right after dst's bytes.
	out, err := c.CompressLevel(dst[len(dst):len(dst)+bound], src, cLevel)
	putContext(c)
	if err != nil {
		// Only an allocation failure inside libzstd gets here (the
		// output has room for the bound): the Go codec writes the same
		// format.
		return goCodec{}.compress(dst, src)
	}
	return dst[:len(dst)+len(out)]
}

func (cCodec) decompress(dst, src []byte, want int) ([]byte, error) {
	if want == 0 || len(src) == 0 {
		// libzstd's binding needs a byte on either side; such a payload
		// is rare (an empty block is stored as is), let the Go codec judge it.
		return goCodec{}.decompress(dst, src, want)
	}
	if cap(dst) < want {
		dst = make([]byte, want)
	}
	c := getContext()
	// The output holds exactly want bytes: libzstd refuses a frame that
	// decodes to more (dstSize_tooSmall), so a corrupt or hostile payload
	// cannot make it write or allocate beyond the header's raw length.
	n, err := c.DecompressInto(dst[:want], src)
	putContext(c)
	if err != nil {
		return nil, err
	}
	if n != want {
		return nil, fmt.Errorf("decompressed %d bytes, header says %d", n, want)
	}
	return dst[:n], nil
}
