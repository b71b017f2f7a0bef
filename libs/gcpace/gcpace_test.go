package gcpace

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	o := Options{MaxHeadroom: 128 << 20, MinPercent: 25}
	for _, c := range []struct {
		live uint64
		base int
		want int
	}{
		{0, 100, 100},
		{64 << 20, 100, 100},  // 100 % of 64 MiB is within the headroom
		{128 << 20, 100, 100}, // exactly the headroom
		{256 << 20, 100, 50},
		{400 << 20, 100, 32},
		{1 << 30, 100, 25}, // 12.5 % would be allowed; the floor holds
		{4 << 30, 100, 25},
		{256 << 20, 200, 50},
		{256 << 20, 40, 40}, // a base below the cap is kept
		{1 << 30, 10, 10},   // a base below the floor is never raised
	} {
		if got := Percent(c.live, c.base, o); got != c.want {
			t.Errorf("Percent(%d MiB, base %d) = %d, want %d", c.live>>20, c.base, got, c.want)
		}
	}
}

// waitPercent runs collections until the pacer set want (its finalizer
// runs on the finalizer goroutine after a collection), within a bound.
func waitPercent(t *testing.T, p *Pacer, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.Percent() != want {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC set by the pacer: %d, want %d", p.Percent(), want)
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	if got := debug.SetGCPercent(want); got != want {
		t.Fatalf("the process's GOGC is %d, the pacer says %d", got, want)
	}
}

var hold []byte

func TestPacerFollowsTheLiveHeap(t *testing.T) {
	base := debug.SetGCPercent(100)
	defer debug.SetGCPercent(base)
	p, release := Acquire(Options{MaxHeadroom: 4 << 20, MinPercent: 30})
	if p == nil {
		t.Fatal("no pacer with GOGC on")
	}
	defer release()
	// A second user shares the pacer; its options do not replace the first's.
	q, releaseQ := Acquire(Options{MaxHeadroom: 1 << 30})
	if q != p {
		t.Fatal("a second pacer started: GOGC has one owner")
	}
	// 64 MiB live: 4 MiB of headroom would be 6 %, the floor is 30 %.
	hold = make([]byte, 64<<20)
	waitPercent(t, p, 30)
	if p.Adjustments() == 0 {
		t.Fatal("no adjustment counted")
	}
	// The live heap drops: back to the base.
	hold = nil
	waitPercent(t, p, 100)
	// The first release leaves the pacer running for the other user.
	releaseQ()
	releaseQ() // releasing twice counts once
	hold = make([]byte, 64<<20)
	waitPercent(t, p, 30)
	// The last release stops it and restores GOGC.
	release()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC after the last release = %d, want the base 100", got)
	}
	runtime.GC()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC changed after the pacer stopped: %d", got)
	}
	hold = nil
	r, releaseR := Acquire(Options{})
	if r == nil || r == p {
		t.Fatal("no new pacer after the last one stopped")
	}
	releaseR()
}

func TestOffWhenGOGCIsOff(t *testing.T) {
	base := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(base)
	p, release := Acquire(Options{})
	defer release()
	if p != nil {
		t.Fatal("a pacer for a process whose GOGC is off")
	}
	runtime.GC()
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Fatalf("GOGC = %d, want off", got)
	}
}
