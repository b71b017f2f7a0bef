package offheap

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// hugeHeapChild, when set in the environment, makes TestHugeHeapChild the
// body of a fresh process: HugeHeap(value) if positive, then a new heap
// buffer whose mapping's advice the child reports by its exit.
const hugeHeapChild = "TISTREAM_OFFHEAP_HUGE_HEAP_CHILD"

// The heap grows into the advised range: in a fresh process, a buffer
// allocated after HugeHeap lies in a mapping advised for huge pages, and
// without HugeHeap it does not (the runtime does not advise its heap, so
// this fails if HugeHeap does nothing). Each case runs in a process of its
// own, whose heap has no free space of earlier tests.
func TestHugeHeap(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil || !HugeHeapAvailable() {
		t.Skip("HugeHeap does nothing here (no transparent huge pages, or strict overcommit)")
	}
	for _, c := range []struct {
		reserve int64
		advised bool
	}{{64 << 20, true}, {0, false}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHugeHeapChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), hugeHeapChild+"="+strconv.FormatInt(c.reserve, 10))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "child with HugeHeap(%d): %s", c.reserve, out)
		require.Contains(t, string(out), "advised="+strconv.FormatBool(c.advised), "HugeHeap(%d)", c.reserve)
	}
}

func TestHugeHeapChild(t *testing.T) {
	v := os.Getenv(hugeHeapChild)
	if v == "" {
		t.Skip("run by TestHugeHeap")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	require.NoError(t, err)
	got := HugeHeap(n)
	if n > 0 {
		require.Equal(t, n, got)
		require.Zero(t, HugeHeap(n), "the second call does nothing")
	}
	b := make([]byte, 8<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	// The buffer's middle lies in one mapping whatever its alignment.
	os.Stdout.WriteString("advised=" + strconv.FormatBool(advised(t, base(b)+4<<20)) + "\n")
	runtime.KeepAlive(b)
}
