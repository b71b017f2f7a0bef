package offheap

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pagesEnv sets the page mode of this package's test process: the tests
// run with huge pages (what most of them check) unless it says otherwise,
// as the child processes of TestSmallPages do.
const pagesEnv = "TISTREAM_OFFHEAP_TEST_PAGES"

func TestMain(m *testing.M) {
	mode := PagesHuge
	if v := os.Getenv(pagesEnv); v != "" {
		var err error
		if mode, err = ParsePageMode(v); err != nil {
			panic(err)
		}
	}
	SetPageMode(mode)
	os.Exit(m.Run())
}

func TestParsePageMode(t *testing.T) {
	for in, want := range map[string]PageMode{"": PagesAuto, "auto": PagesAuto, "on": PagesHuge, "HUGE": PagesHuge, " off": PagesSmall, "small": PagesSmall} {
		got, err := ParsePageMode(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err := ParsePageMode("yes")
	require.ErrorContains(t, err, `"yes"`)
}

// The auto rule: huge pages only where 4 KiB faults are expensive and
// 2 MiB ones cheaper — the guests of docs/benchmarks.md both ways round.
func TestDecide(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	for _, c := range []struct {
		small, huge float64 // ms per MiB
		want        bool
	}{
		{0.3, 10, false},   // small faults cheap, huge ones backed anew: base pages
		{0.3, 0.1, false},  // small faults cheap: huge pages gain little, cost memory
		{3, 0.2, true},     // small faults expensive (9-16 µs each), huge cheap
		{3, 5, false},      // both expensive, huge more so
		{0.7, 0.1, false},  // the cheap guest's figure under load
		{1.5, 0.6, true},   // at the threshold
		{1.5, 0.75, false}, // huge pages must cost under half
		{3, 2, false},
	} {
		require.Equal(t, c.want, Decide(ms(c.small), ms(c.huge)), "small %v huge %v ms/MiB", c.small, c.huge)
	}
}

func TestChoose(t *testing.T) {
	probed := 0
	probe := func(small, huge time.Duration, err error) func() (time.Duration, time.Duration, error) {
		return func() (time.Duration, time.Duration, error) { probed++; return small, huge, err }
	}
	expensive := probe(3*time.Millisecond, 200*time.Microsecond, nil)

	c := choose(PagesAuto, "never", expensive)
	require.False(t, c.Huge)
	require.Contains(t, c.Reason, "no transparent huge pages")
	c = choose(PagesHuge, "", expensive)
	require.True(t, c.Huge, "an unknown kernel setting counts as available, as for HugeHeap")
	c = choose(PagesHuge, "madvise", expensive)
	require.True(t, c.Huge)
	c = choose(PagesSmall, "always", expensive)
	require.False(t, c.Huge)
	require.Zero(t, probed, "a set mode measures nothing")

	c = choose(PagesAuto, "madvise", expensive)
	require.True(t, c.Huge)
	require.Equal(t, 3*time.Millisecond, c.SmallPerMiB)
	require.Contains(t, c.String(), "huge pages (--huge-pages auto): first touch measured at 3.00 ms/MiB in 4 KiB pages, 0.20 ms/MiB in 2 MiB pages")
	c = choose(PagesAuto, "always", probe(400*time.Microsecond, 10*time.Millisecond, nil))
	require.False(t, c.Huge)
	c = choose(PagesAuto, "madvise", probe(0, 0, errors.New("mmap: out of memory")))
	require.False(t, c.Huge)
	require.Contains(t, c.Reason, "out of memory")
	require.Equal(t, 3, probed)
}
