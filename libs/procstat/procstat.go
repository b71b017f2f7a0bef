// Package procstat measures phases of a benchmark in this process: wall
// time, CPU time (user + system of every thread, so Pebble's and the
// runtime's background work count) and Go heap allocations, plus the
// process's peak resident set.
package procstat

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Phase is what a part of a benchmark took.
type Phase struct {
	Wall, CPU time.Duration
	// Allocs and AllocBytes are the Go heap allocations (count and bytes)
	// of the whole process during the phase. Memory Pebble allocates
	// outside the Go heap (memtables, block cache) is not in them.
	Allocs, AllocBytes uint64
}

// Start marks the start of a Phase.
type Start struct {
	wall          time.Time
	cpu           time.Duration
	allocs, bytes uint64
}

// Begin starts measuring a phase. It reads the allocator's statistics, which
// briefly stops the world: call it between phases, not in a loop.
func Begin() Start {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Start{wall: time.Now(), cpu: CPU(), allocs: ms.Mallocs, bytes: ms.TotalAlloc}
}

// End returns the phase since s.
func (s Start) End() Phase {
	wall := time.Since(s.wall)
	cpu := CPU() - s.cpu
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Phase{Wall: wall, CPU: cpu, Allocs: ms.Mallocs - s.allocs, AllocBytes: ms.TotalAlloc - s.bytes}
}

// Add accumulates q into p.
func (p *Phase) Add(q Phase) {
	p.Wall += q.Wall
	p.CPU += q.CPU
	p.Allocs += q.Allocs
	p.AllocBytes += q.AllocBytes
}

// CPU is the process's CPU time so far, 0 where unknown.
func CPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PeakRSSMiB is the process's peak resident set (VmHWM), 0 where unknown.
func PeakRSSMiB() float64 { return float64(statusKiB("VmHWM:")) / 1024 }

// RSSBytes is the process's resident set now (VmRSS), 0 where unknown.
func RSSBytes() uint64 { return statusKiB("VmRSS:") * 1024 }

// statusKiB reads a "Name:  N kB" line of /proc/self/status, 0 where
// unknown.
func statusKiB(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb
			}
		}
	}
	return 0
}
