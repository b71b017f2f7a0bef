package offheap

import (
	"os"
	"runtime"
	"strings"
	"sync"
)

// HugeHeap makes the Go heap's next n bytes of growth come in transparent
// huge pages: one page fault per 2 MiB where the heap would otherwise take
// one per 4 KiB page. It returns the bytes advised: 0 when n <= 0, on
// systems without the advice, when the process decided on base pages
// (Pages), or after the first call that acted (the setting is the
// process's, once).
//
// Why: a sorter's heap holds its row indexes, its staged publications and
// what it decodes, hundreds of MiB filled and emptied every flush, and the
// runtime maps new heap memory without advice, so it is first touched 4 KiB
// at a time. A page fault costs ~16 µs on the virtual machines we measure on
// (docs/benchmarks.md), a quarter of a second per 64 MiB; the sorter's
// benchmark took ~40k of them a run, and 4k with this.
//
// How: the runtime asks the kernel for heap memory as it needs it and
// never advises it, so HugeHeap allocates n bytes at once, which the
// runtime maps (without touching them: memory fresh from the kernel is
// known to be zero), advises the mapping for huge pages, and frees it
// again with a collection. The advice stays with the mapping, and the
// runtime's page allocator takes the lowest free addresses first, so the
// heap grows into the advised range before it maps more. Nothing becomes
// resident until used; the range costs address space and the collection.
//
// Call it at process start, before the heap has free space of its own
// that the allocation could take instead (it would then be zeroed, that
// is, touched). The price is memory: a 2 MiB page is resident whole once
// any of it is touched, and the heap's scattered free space stays
// resident with it (+20-130 MiB of peak RSS in the sorter's benchmark).
// The kernel's transparent huge pages must be "madvise" or "always"; on
// "never", or on other systems, HugeHeap does nothing. It also does
// nothing under strict overcommit (vm.overcommit_memory = 2), where the
// mapping would count against the commit limit for as long as the
// process runs, and its refusal would end the process.
func HugeHeap(n int64) int64 {
	hugeHeap.Lock()
	defer hugeHeap.Unlock()
	if n <= 0 || hugeHeap.done || !supported {
		return 0
	}
	hugeHeap.done = true
	if !HugeHeapAvailable() || !hugePages() {
		return 0
	}
	n = (n + PageSize - 1) &^ (PageSize - 1)
	AdviseHuge(make([]byte, n+PageSize)) // the advised pages are those wholly inside
	runtime.GC()                         // gives the range back to the runtime's free pages
	hugeHeap.bytes = n
	return n
}

// HugeHeapAvailable reports whether HugeHeap can act on this system:
// Linux, transparent huge pages not "never", overcommit not strict.
func HugeHeapAvailable() bool {
	if !supported {
		return false
	}
	thp, _ := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	overcommit, _ := os.ReadFile("/proc/sys/vm/overcommit_memory")
	return hugeHeapUseful(string(thp), string(overcommit))
}

// hugeHeapUseful tells from the kernel's settings (the contents of
// transparent_hugepage/enabled and vm/overcommit_memory) whether HugeHeap
// should act: huge pages not "never" (unknown counts as available: the
// advice is then refused harmlessly) and overcommit not strict.
func hugeHeapUseful(thp, overcommit string) bool {
	return !strings.Contains(thp, "[never]") && strings.TrimSpace(overcommit) != "2"
}

// DefaultHugeHeap is the services' default for HugeHeap (their
// --huge-page-heap) and the benchmark's: address space, not memory.
const DefaultHugeHeap = 1 << 30

// HugeHeapSetting is what a --huge-page-heap setting v asks HugeHeap
// for: DefaultHugeHeap for 0, nothing for a negative v.
func HugeHeapSetting(v int64) int64 {
	if v == 0 {
		return DefaultHugeHeap
	}
	return max(v, 0)
}

// HugeHeapBytes is what HugeHeap advised in this process (0: nothing).
func HugeHeapBytes() int64 {
	hugeHeap.Lock()
	defer hugeHeap.Unlock()
	return hugeHeap.bytes
}

var hugeHeap struct {
	sync.Mutex
	done  bool
	bytes int64
}
