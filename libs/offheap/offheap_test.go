package offheap

import (
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

const block = 256 << 10

func TestBlocksAreDistinctAlignedAndWritable(t *testing.T) {
	p, err := New(block, Options{})
	require.NoError(t, err)
	seen := map[uintptr]bool{}
	var blocks [][]byte
	for i := 0; i < 3*PageSize/block; i++ { // more than one page, into a second region's worth of pages
		b, err := p.Get()
		require.NoError(t, err)
		require.Len(t, b, block)
		require.Equal(t, block, cap(b), "a block's capacity ends at the block: appends cannot run into the next one")
		if supported {
			require.Zero(t, base(b)%block, "blocks are aligned to their size")
		}
		require.False(t, seen[base(b)], "block handed out twice")
		seen[base(b)] = true
		for j := range b {
			b[j] = byte(i)
		}
		blocks = append(blocks, b)
	}
	for i, b := range blocks {
		for j := 0; j < len(b); j += 4093 {
			require.Equal(t, byte(i), b[j], "block %d was written by another", i)
		}
	}
	require.Equal(t, int64(len(blocks)*block), p.Stats().InUse)
	for _, b := range blocks {
		p.Put(b)
	}
	require.Zero(t, p.Stats().InUse)
}

func TestFreePagesGoBackToTheKernel(t *testing.T) {
	if !supported {
		t.Skip("blocks come from the Go heap here")
	}
	p, err := New(block, Options{KeepPages: 1})
	require.NoError(t, err)
	per := PageSize / block
	var blocks [][]byte
	for i := 0; i < 3*per; i++ { // three pages in use
		b, err := p.Get()
		require.NoError(t, err)
		b[0], b[len(b)-1] = 0xAA, 0xBB
		blocks = append(blocks, b)
	}
	st := p.Stats()
	require.Equal(t, int64(regionPages*PageSize), st.Mapped)
	require.Equal(t, int64(3*PageSize), st.Resident)
	// Partly used pages are filled first: the next block shares no page
	// with a wholly free one.
	p.Put(blocks[0])
	again, err := p.Get()
	require.NoError(t, err)
	require.Equal(t, base(blocks[0]), base(again), "the partly used page is filled first")
	for _, b := range blocks {
		p.Put(b)
	}
	st = p.Stats()
	require.Zero(t, st.InUse)
	require.Equal(t, int64(PageSize), st.Resident, "one free page kept, two returned")
	// A block of a returned page reads zeros, not the old rows.
	zeroed := 0
	for i := 0; i < 3*per; i++ {
		b, err := p.Get()
		require.NoError(t, err)
		if b[0] == 0 && b[len(b)-1] == 0 {
			zeroed++
		}
		blocks[i] = b
	}
	require.Equal(t, 2*per, zeroed, "the blocks of the two returned pages read zeros")
	require.Equal(t, int64(3*PageSize), p.Stats().Resident)
}

func TestPutRefusesWhatItDidNotHandOut(t *testing.T) {
	if !supported {
		t.Skip("blocks come from the Go heap here")
	}
	p, err := New(block, Options{})
	require.NoError(t, err)
	b, err := p.Get()
	require.NoError(t, err)
	require.PanicsWithValue(t, "offheap: Put of a slice of capacity 4096, not a block of 262144", func() { p.Put(make([]byte, 4096)) })
	require.Panics(t, func() { p.Put(make([]byte, block)) }, "a heap slice")
	require.Panics(t, func() { p.Put(b[1:]) }, "not a block's start")
	p.Put(b)
	require.Panics(t, func() { p.Put(b) }, "returned twice")
}

func TestBlockSizes(t *testing.T) {
	for _, bad := range []int{0, -1, 3 << 10, PageSize / 128, PageSize * 2} {
		_, err := New(bad, Options{})
		require.Error(t, err, "size %d", bad)
	}
	for _, good := range []int{PageSize / 64, 64 << 10, PageSize} {
		p, err := New(good, Options{})
		require.NoError(t, err, "size %d", good)
		b, err := p.Get()
		require.NoError(t, err)
		require.Len(t, b, good)
		p.Put(b)
	}
}

func TestConcurrentGetPut(t *testing.T) {
	p, err := New(64<<10, Options{})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held [][]byte
			for i := 0; i < 500; i++ {
				if len(held) < 20 {
					b, err := p.Get()
					if err != nil {
						t.Error(err)
						return
					}
					b[0] = byte(g)
					held = append(held, b)
					continue
				}
				for _, b := range held {
					if b[0] != byte(g) {
						t.Errorf("goroutine %d's block holds %d", g, b[0])
					}
					p.Put(b)
				}
				held = held[:0]
			}
			for _, b := range held {
				p.Put(b)
			}
		}()
	}
	wg.Wait()
	require.Zero(t, p.Stats().InUse)
}

// Blocks are handed out from the bottom: the lowest partly used page
// first, so blocks in use stay together and higher pages drain.
func TestLowestPartlyUsedPageFirst(t *testing.T) {
	if !supported {
		t.Skip("blocks come from the Go heap here")
	}
	p, err := New(block, Options{})
	require.NoError(t, err)
	var blocks [][]byte
	for i := 0; i < (regionPages+2)*PageSize/block; i++ { // two mappings: their order in memory is the kernel's
		b, err := p.Get()
		require.NoError(t, err)
		blocks = append(blocks, b)
	}
	slices.SortFunc(blocks, Compare)
	low, high := blocks[1], blocks[len(blocks)-2]
	p.Put(high)
	p.Put(low)
	got, err := p.Get()
	require.NoError(t, err)
	require.Equal(t, base(low), base(got), "the lowest free block's page is filled first")
	got, err = p.Get()
	require.NoError(t, err)
	require.Equal(t, base(high), base(got))
}

// WritePages leaves a slice as it was: length, capacity, elements, small
// and zero-size element types.
func TestWritePagesKeepsTheSlice(t *testing.T) {
	type row struct {
		p *int
		v [13]byte
	}
	x := 7
	for _, c := range []int{0, 1, 100, 4096, 100_000} {
		s := make([]row, 0, c)
		if c > 0 {
			s = append(s, row{p: &x, v: [13]byte{1}})
		}
		got := WritePages(s)
		require.Equal(t, len(s), len(got))
		require.Equal(t, cap(s), cap(got))
		if c > 0 {
			require.Equal(t, &x, got[0].p)
			require.Equal(t, byte(1), got[0].v[0])
		}
		for _, e := range got[len(got):cap(got)] {
			require.Zero(t, e)
		}
	}
	require.Len(t, WritePages(make([]struct{}, 3, 1<<20)), 3)
	require.Equal(t, 1<<20, cap(WritePages(make([]struct{}, 3, 1<<20))))
}
