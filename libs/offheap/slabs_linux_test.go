package offheap

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The kernel records the advice in the mapping's flags ("hg" in smaps'
// VmFlags): a slab's pages are advised, a small buffer's are not.
func TestSlabsAreAdvisedForHugePages(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skip("no transparent huge pages here")
	}
	s := NewSlabs(4 << 20)
	carved := s.Make(512 << 10)
	own := s.Make(3 << 20)
	require.True(t, advised(t, base(carved)), "a carved buffer's mapping is advised for huge pages")
	require.True(t, advised(t, base(own)), "a large buffer's mapping is advised for huge pages")
	runtime.KeepAlive(carved)
	runtime.KeepAlive(own)
}

// advised reports whether the mapping holding addr has VM_HUGEPAGE.
func advised(t *testing.T, addr uintptr) bool { return vmFlag(t, addr, "hg") }

// vmFlag reports whether the mapping holding addr has the flag (two
// letters, as smaps' VmFlags spells them).
func vmFlag(t *testing.T, addr uintptr, flag string) bool {
	f, err := os.Open("/proc/self/smaps")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			in = lo <= addr && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.Contains(" "+line+" ", " "+flag+" ")
		}
	}
	require.NoError(t, sc.Err())
	t.Fatalf("no mapping holds %#x", addr)
	return false
}
