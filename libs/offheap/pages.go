package offheap

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// PageMode is how the process's large buffers (the pool's blocks, Slabs,
// the Go heap's growth under HugeHeap) take their memory from the kernel:
// in transparent huge pages (one page fault per 2 MiB) or in the kernel's
// base pages (one per 4 KiB).
type PageMode int

const (
	// PagesAuto measures both at the first use (Pages) and takes the
	// cheaper, favouring base pages (see Decide).
	PagesAuto PageMode = iota
	// PagesHuge advises huge pages.
	PagesHuge
	// PagesSmall advises against them (MADV_NOHUGEPAGE on the pool's own
	// mappings; the Go heap is left to the kernel's setting).
	PagesSmall
)

func (m PageMode) String() string {
	switch m {
	case PagesHuge:
		return "huge"
	case PagesSmall:
		return "small"
	}
	return "auto"
}

// ParsePageMode reads a --huge-pages setting: auto, on (or huge), off (or
// small).
func ParsePageMode(s string) (PageMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return PagesAuto, nil
	case "on", "huge":
		return PagesHuge, nil
	case "off", "small":
		return PagesSmall, nil
	}
	return PagesAuto, fmt.Errorf("huge pages %q: want auto, on or off", s)
}

// SmallPagesCheap is the cost of first touching a MiB of base pages under
// which Decide keeps base pages whatever huge pages cost: ~6 µs a 4 KiB
// fault, between the guests measured (0.3–0.7 ms a MiB in the probing
// thread's CPU time on one, loaded or not; 2.3–4 ms on the other). Below
// it huge pages can save at most this much per MiB (a sorter touches a
// few hundred MiB when it starts), while they cost resident memory (a
// 2 MiB page is resident whole) and, where the host must back a whole
// 2 MiB page anew, up to 10 ms a MiB (docs/benchmarks.md, "Huge pages,
// chosen by measuring").
const SmallPagesCheap = 1500 * time.Microsecond

// Decide is the auto mode's rule, given what first touching a MiB cost in
// base pages and in huge pages: huge pages only where base pages are
// expensive (at least SmallPagesCheap a MiB) and huge pages cost less than
// half as much. It leans to base pages because a wrong choice costs more
// that way round: huge pages where the host backs them anew cost up to
// ~30 times what base pages do, base pages where they are expensive ~5
// times what huge pages do (docs/benchmarks.md).
func Decide(smallPerMiB, hugePerMiB time.Duration) bool {
	return smallPerMiB >= SmallPagesCheap && 2*hugePerMiB < smallPerMiB
}

// PageChoice is what the process decided, and on what.
type PageChoice struct {
	Mode PageMode // as set (PagesAuto unless SetPageMode said otherwise)
	Huge bool     // huge pages advised
	// What a MiB cost to touch first in each kind of page (auto mode,
	// when measured; 0 otherwise), and why Huge is what it is.
	SmallPerMiB, HugePerMiB time.Duration
	Reason                  string
}

func (c PageChoice) String() string {
	kind := "small"
	if c.Huge {
		kind = "huge"
	}
	return fmt.Sprintf("%s pages (--huge-pages %s): %s", kind, c.Mode, c.Reason)
}

var pages struct {
	sync.Mutex
	set    bool
	mode   PageMode
	once   sync.Once
	choice PageChoice
}

// SetPageMode sets the process's page mode. It acts only before the first
// decision (Pages, or any buffer of this package): the first caller wins,
// as the first service of a process to start sets it for all. It reports
// whether it acted.
func SetPageMode(m PageMode) bool {
	pages.Lock()
	defer pages.Unlock()
	if pages.set {
		return false
	}
	pages.set, pages.mode = true, m
	return true
}

// Pages returns the process's decision, making it on the first call.
func Pages() PageChoice {
	pages.once.Do(func() {
		pages.Lock()
		pages.set = true // later SetPageMode calls find it decided
		m := pages.mode
		pages.Unlock()
		pages.choice = choose(m, thpSetting(), probeFaults)
	})
	return pages.choice
}

// hugePages is Pages().Huge, for the hot paths.
func hugePages() bool { return Pages().Huge }

// thpSetting is the kernel's transparent huge page setting ("always",
// "madvise", "never"; "" where there is none or it cannot be read).
func thpSetting() string {
	if !supported {
		return ""
	}
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		return ""
	}
	s := string(b)
	if i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']'); i >= 0 && j > i {
		return s[i+1 : j]
	}
	return ""
}

// choose makes the decision for mode m on a kernel whose setting is thp,
// measuring with probe in auto mode.
func choose(m PageMode, thp string, probe func() (small, huge time.Duration, err error)) PageChoice {
	c := PageChoice{Mode: m}
	switch {
	case !supported || thp == "never":
		// An unknown setting ("": no file to read) counts as available,
		// as for HugeHeap: the advice is refused harmlessly where there is
		// nothing to advise, and auto's probe measures what the kernel does.
		c.Reason = "the kernel has no transparent huge pages to advise"
		return c
	case m == PagesHuge:
		c.Huge, c.Reason = true, "set"
		return c
	case m == PagesSmall:
		c.Reason = "set"
		return c
	}
	small, huge, err := probe()
	if err != nil {
		c.Reason = fmt.Sprintf("could not measure page faults (%v); base pages", err)
		return c
	}
	c.SmallPerMiB, c.HugePerMiB, c.Huge = small, huge, Decide(small, huge)
	c.Reason = fmt.Sprintf("first touch measured at %.2f ms/MiB in 4 KiB pages, %.2f ms/MiB in 2 MiB pages",
		small.Seconds()*1e3, huge.Seconds()*1e3)
	return c
}
