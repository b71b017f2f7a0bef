// Package offheap hands out fixed-size blocks of memory mapped outside the
// Go heap, for large byte buffers whose owner knows when they are free
// (the sorter buffer's arena chunks).
//
// Why: rows waiting in a sorter's memory are hundreds of MiB of plain bytes.
// On the Go heap they raise the heap the collector lets grow (its goal is a
// multiple of the live heap), and every page of that growth is first
// touched through a minor page fault: ~9 µs each on a virtual machine,
// about a quarter of a second per 100 MiB. Here the blocks live in 2 MiB
// pages mapped with MADV_HUGEPAGE (where the kernel's transparent huge
// pages are "madvise" or "always"), so a page of rows costs one fault
// instead of 512, and the collector neither counts nor scans them.
//
// Whether huge pages are used is the process's decision (Pages, the
// services' --huge-pages): where 4 KiB faults are cheap and 2 MiB pages
// must be backed anew by the host, huge pages cost up to 30 times more a
// MiB, so by default the process measures both at its first use and takes
// base pages unless huge ones are clearly cheaper (Decide). With base
// pages the pool's blocks come from mappings advised against huge pages,
// Slabs hands out plain allocations, the heap is left unadvised, and
// Touch does nothing.
//
// Blocks are carved from 2 MiB-aligned pages; a block is returned with Put
// exactly once. A page whose blocks are all free stays resident while at
// most Options.KeepPages such pages do; beyond that its memory goes back to
// the kernel (MADV_DONTNEED), and the address range stays mapped for later
// blocks, so a stray read of a returned block reads zeros, never faults.
// Nothing is unmapped while the process runs.
//
// On systems other than Linux, blocks come from the Go heap and Put does
// nothing.
//
// Slabs serves buffers whose owners have no single point where they are
// known to be free: they stay on the Go heap, in slabs whose pages are
// advised for huge pages the same way (see Slabs). HugeHeap advises the
// Go heap's own growth, once per process. Touch takes the page faults of
// a new buffer's pages that other buffers share one thread at a time; the
// pool's blocks and Slabs' buffers come touched.
package offheap

import (
	"cmp"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"
)

// PageSize is the page blocks are carved from: a transparent huge page on
// x86-64 and arm64 with 4 KiB base pages.
const PageSize = 2 << 20

// regionPages is how many pages one mapping holds: address space is cheap,
// and pages become resident only when a block of theirs is first written.
const regionPages = 8

// Options of a Pool.
type Options struct {
	// KeepPages is how many wholly free pages stay resident for the next
	// blocks (default 2); more go back to the kernel.
	KeepPages int
}

// Pool hands out blocks of one size. It is safe for concurrent use.
type Pool struct {
	block, perPage int
	opts           Options

	mu       sync.Mutex
	pages    []*page
	byBase   map[uintptr]*page
	keptFree int // resident pages with no block in use

	mapped, resident, inUse atomic.Int64
}

// page is one 2 MiB page of a mapping.
type page struct {
	mem      []byte
	used     uint64 // bit i: block i is handed out
	n        int    // blocks handed out
	resident bool   // touched since it was last returned to the kernel
}

// New returns a pool of blocks of size bytes, a divisor of PageSize of at
// least PageSize/64.
func New(size int, opts Options) (*Pool, error) {
	if size <= 0 || PageSize%size != 0 || PageSize/size > 64 {
		return nil, fmt.Errorf("offheap: block size %d must divide %d into at most 64 blocks", size, PageSize)
	}
	if opts.KeepPages <= 0 {
		opts.KeepPages = 2
	}
	return &Pool{block: size, perPage: PageSize / size, opts: opts, byBase: make(map[uintptr]*page)}, nil
}

// Get returns a free block, of the pool's block size, its contents unspecified
// (zeros for memory never used or returned to the kernel). The error is
// the kernel's refusal to map more memory.
func (p *Pool) Get() ([]byte, error) {
	if !supported {
		p.inUse.Add(int64(p.block))
		return make([]byte, p.block), nil
	}
	b, err := p.get()
	if err == nil {
		// Blocks of one page go to different workers, who write them
		// at once: the first to arrive takes the page fault.
		TouchBytes(b)
	}
	return b, err
}

func (p *Pool) get() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pg := p.pick()
	if pg == nil {
		if err := p.grow(); err != nil {
			return nil, err
		}
		pg = p.pick()
	}
	if pg.n == 0 && pg.resident {
		p.keptFree--
	}
	if !pg.resident {
		pg.resident = true
		p.resident.Add(PageSize)
	}
	i := 0
	for pg.used&(1<<i) != 0 {
		i++
	}
	pg.used |= 1 << i
	pg.n++
	p.inUse.Add(int64(p.block))
	off := i * p.block
	return pg.mem[off : off+p.block : off+p.block], nil
}

// pick chooses the page of the next block: the lowest partly used one
// first, then the lowest resident free one, then the lowest one not
// resident; nil when every page is full. Filling from the bottom keeps
// the blocks in use together, so pages higher up drain and go back to the
// kernel (address-ordered first fit, against fragmentation).
func (p *Pool) pick() *page {
	var part, free, cold *page
	lower := func(a, b *page) bool { return b == nil || base(a.mem) < base(b.mem) }
	for _, pg := range p.pages {
		switch {
		case pg.n == p.perPage:
		case pg.n > 0:
			if lower(pg, part) {
				part = pg
			}
		case pg.resident:
			if lower(pg, free) {
				free = pg
			}
		case lower(pg, cold):
			cold = pg
		}
	}
	switch {
	case part != nil:
		return part
	case free != nil:
		return free
	}
	return cold
}

// Compare orders blocks by address (-1 when a lies below b): a cache of
// free blocks that hands out and keeps its lowest ones helps the pool keep
// the blocks in use together.
func Compare(a, b []byte) int { return cmp.Compare(base(a), base(b)) }

// grow maps a region of 2 MiB-aligned pages.
func (p *Pool) grow() error {
	mem, err := mapAligned(regionPages * PageSize)
	if err != nil {
		return fmt.Errorf("offheap: mapping %d MiB: %w", regionPages*PageSize>>20, err)
	}
	for i := 0; i < regionPages; i++ {
		pg := &page{mem: mem[i*PageSize : (i+1)*PageSize : (i+1)*PageSize]}
		p.pages = append(p.pages, pg)
		p.byBase[base(pg.mem)] = pg
	}
	p.mapped.Add(regionPages * PageSize)
	return nil
}

// Put returns a block Get handed out. It panics on a slice that is not
// such a block or on a block already returned: both are bugs of the
// caller that would otherwise corrupt other blocks' data.
func (p *Pool) Put(b []byte) {
	if !supported {
		p.inUse.Add(-int64(p.block))
		return
	}
	if cap(b) < p.block {
		panic(fmt.Sprintf("offheap: Put of a slice of capacity %d, not a block of %d", cap(b), p.block))
	}
	b = b[:p.block]
	addr := base(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	pg := p.byBase[addr&^(PageSize-1)]
	off := int(addr & (PageSize - 1))
	if pg == nil || off%p.block != 0 {
		panic(fmt.Sprintf("offheap: Put of %#x, not a block of this pool", addr))
	}
	bit := uint64(1) << (off / p.block)
	if pg.used&bit == 0 {
		panic(fmt.Sprintf("offheap: block %#x returned twice", addr))
	}
	pg.used &^= bit
	pg.n--
	p.inUse.Add(-int64(p.block))
	if pg.n > 0 {
		return
	}
	if p.keptFree < p.opts.KeepPages {
		p.keptFree++
		return
	}
	if release(pg.mem) == nil {
		pg.resident = false
		p.resident.Add(-PageSize)
	} else {
		p.keptFree++ // still resident: keep counting it as such
	}
}

// Stats is what a pool holds, in bytes.
type Stats struct {
	Mapped   int64 // address space mapped
	Resident int64 // pages touched and not returned to the kernel (an upper bound of its RSS)
	InUse    int64 // blocks handed out
}

// Stats reads the pool's counters.
func (p *Pool) Stats() Stats {
	return Stats{Mapped: p.mapped.Load(), Resident: p.resident.Load(), InUse: p.inUse.Load()}
}

func base(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
