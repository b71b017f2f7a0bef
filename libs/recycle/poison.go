package recycle

import (
	"os"
	"sync/atomic"
)

// poison: memory handed back for reuse is overwritten first (SetPoison).
var poison atomic.Bool

func init() { poison.Store(os.Getenv("TISTREAM_DEBUG_POISON") == "1") }

// SetPoison has Poison overwrite the bytes it is given, so that a
// reference kept past the point where its memory was handed back reads
// garbage (and a test verifying what was sent or published fails) instead
// of, by chance, the bytes it expects. TISTREAM_DEBUG_POISON=1 in a
// process's environment sets it (the end-to-end tests do).
func SetPoison(on bool) { poison.Store(on) }

// Poison overwrites b with 0xA5 when poisoning is on; owners call it on
// bytes they are about to reuse or hand back for reuse.
func Poison(b []byte) {
	if poison.Load() {
		for i := range b {
			b[i] = 0xA5
		}
	}
}
