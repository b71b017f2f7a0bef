package sim

// TSO layout, as PD allocates it: physical milliseconds above 18 logical bits.
const logicalBits = 18

// ComposeTS builds a TSO from physical milliseconds and a logical counter.
func ComposeTS(physicalMs int64, logical int64) uint64 {
	return uint64(physicalMs)<<logicalBits | uint64(logical)
}

// PhysicalMs is the physical (wall clock) part of a TSO in Unix milliseconds.
func PhysicalMs(ts uint64) int64 { return int64(ts >> logicalBits) }

// tso hands out strictly increasing timestamps for the simulated clock.
type tso struct {
	physical int64 // ms of the last timestamp
	logical  int64
}

// next returns a timestamp whose physical part is at least nowMs.
func (t *tso) next(nowMs int64) uint64 {
	if nowMs > t.physical {
		t.physical, t.logical = nowMs, 0
	} else {
		t.logical++
		if t.logical >= 1<<logicalBits {
			t.physical++
			t.logical = 0
		}
	}
	return ComposeTS(t.physical, t.logical)
}

// last is the most recent timestamp handed out.
func (t *tso) last() uint64 { return ComposeTS(t.physical, t.logical) }
