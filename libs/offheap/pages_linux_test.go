package offheap

import (
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestProbeFaultsMeasures(t *testing.T) {
	small, huge, err := probeFaults()
	require.NoError(t, err)
	require.Positive(t, small)
	require.Positive(t, huge)
	t.Logf("first touch: %v a MiB in 4 KiB pages, %v in 2 MiB pages", small, huge)
}

// With base pages decided (--huge-pages off, or auto on a machine where
// they are cheap), nothing is advised for huge pages: the arena's own
// mappings are advised against them, slabs and the heap are left alone,
// and Touch takes no faults. In a process of its own, as the mode is the
// process's.
func TestSmallPages(t *testing.T) {
	if thpSetting() == "" || thpSetting() == "never" {
		t.Skip("no transparent huge pages here")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSmallPagesChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), pagesEnv+"=off")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "--- PASS: TestSmallPagesChild", "%s", out)
}

func TestSmallPagesChild(t *testing.T) {
	if os.Getenv(pagesEnv) != "off" {
		t.Skip("run by TestSmallPages")
	}
	c := Pages()
	require.False(t, c.Huge)
	require.Equal(t, PagesSmall, c.Mode)
	require.Zero(t, HugeHeap(64<<20), "the heap is not advised")
	require.False(t, SetPageMode(PagesHuge), "decided once per process")
	require.False(t, Pages().Huge)

	mem, err := mapAligned(2 * PageSize)
	require.NoError(t, err)
	defer func() { require.NoError(t, munmap(mem)) }()
	require.False(t, advised(t, base(mem)))
	require.True(t, vmFlag(t, base(mem), "nh"), "the arena's mapping is advised against huge pages")
	TouchBytes(mem[PageSize/2 : PageSize/2 : PageSize+PageSize/2])
	require.False(t, resident(t, base(mem)+PageSize/2), "Touch has no huge page to fault")

	s := NewSlabs(4 << 20)
	carved := s.Make(512 << 10)
	require.False(t, advised(t, base(carved)), "a slab is not advised")
	runtime.KeepAlive(carved)
}
