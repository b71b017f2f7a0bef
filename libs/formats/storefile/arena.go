package storefile

import (
	"unsafe"

	"github.com/pingcap/kvproto/pkg/cdcpb"
)

// A file's blocks are decompressed, and its change data event records
// decoded, into arrays (blocks; events, rows and the pointers the
// generated types want) carved from chunks that the stream reuses file
// after file once its caller gives them back (Stream.Recycle): a
// dispatcher decodes hundreds of thousands of rows a second into arrays
// that are garbage once the file's batches are encoded, and new ones are
// memory the runtime zeroes and the kernel faults in. Without Recycle
// every file's chunks are new, as before.

// carver hands out arrays of E carved from chunks of chunkLen elements.
type carver[E any] struct {
	chunkLen int
	dirty    bool  // take's arrays hold what they last held (bytes their user overwrites)
	cur      []E   // the chunk being carved: cur[:len(cur)] handed out
	used     [][]E // chunks carved since the last recycle, cur included
	free     [][]E // chunks given back, zeroed
}

// take returns n zeroed elements (unless dirty); a request larger than
// half a chunk gets an array of its own (not recycled).
func (c *carver[E]) take(n int) []E {
	if n == 0 {
		return nil
	}
	if n > c.chunkLen/2 {
		return make([]E, n)
	}
	if len(c.cur)+n > cap(c.cur) {
		if k := len(c.free); k > 0 {
			c.cur, c.free[k-1] = c.free[k-1], nil
			c.free = c.free[:k-1]
		} else {
			c.cur = make([]E, 0, c.chunkLen)
		}
		c.used = append(c.used, c.cur)
	}
	at := len(c.cur)
	c.cur = c.cur[:at+n]
	c.used[len(c.used)-1] = c.cur
	return c.cur[at : at+n : at+n]
}

// maxFreeBytes bounds what a carver keeps for the next files: a usual
// file's worth and more (a dispatcher has a stream per store and tenant,
// each holding its last file's chunks; the much larger files of a backlog
// leave the rest to the collector).
const maxFreeBytes = 8 << 20

// recycle takes every chunk handed out back: nothing may use their
// elements any more.
func (c *carver[E]) recycle() {
	for i, ch := range c.used {
		if (len(c.free)+1)*cap(ch)*int(unsafe.Sizeof(ch[0])) <= maxFreeBytes {
			if !c.dirty {
				clear(ch)
			}
			c.free = append(c.free, ch[:0])
		}
		c.used[i] = nil
	}
	c.used, c.cur = c.used[:0], nil
}

// forget drops the chunks handed out (their arrays stay the caller's, for
// the collector) and goes on with new ones.
func (c *carver[E]) forget() {
	clear(c.used)
	c.used, c.cur = c.used[:0], nil
}

// recordArena carves a change data event record's arrays.
type recordArena struct {
	events   carver[cdcpb.Event]
	ptrs     carver[*cdcpb.Event]
	entries  carver[cdcpb.Event_Entries]
	wraps    carver[cdcpb.Event_Entries_]
	rows     carver[cdcpb.Event_Row]
	rowPtrs  carver[*cdcpb.Event_Row]
	resolved carver[cdcpb.Event_ResolvedTs]
	blocks   carver[byte] // the file's decompressed blocks, which rows point into
	all      []chunks     // the carvers above
}

// chunks is what the arena does with each of its carvers.
type chunks interface {
	recycle()
	forget()
}

func newRecordArena() *recordArena {
	a := &recordArena{
		events: carver[cdcpb.Event]{chunkLen: 1024}, ptrs: carver[*cdcpb.Event]{chunkLen: 1024},
		entries: carver[cdcpb.Event_Entries]{chunkLen: 1024}, wraps: carver[cdcpb.Event_Entries_]{chunkLen: 1024},
		rows: carver[cdcpb.Event_Row]{chunkLen: 4096}, rowPtrs: carver[*cdcpb.Event_Row]{chunkLen: 4096},
		resolved: carver[cdcpb.Event_ResolvedTs]{chunkLen: 1024},
		// Blocks are written with 256 KiB of records or less: eight to a
		// chunk; a larger one (a record over the block size) is its own.
		blocks: carver[byte]{chunkLen: 2 << 20, dirty: true},
	}
	a.all = []chunks{&a.events, &a.ptrs, &a.entries, &a.wraps, &a.rows, &a.rowPtrs, &a.resolved, &a.blocks}
	return a
}

// recycle takes back every array handed out since the last recycle or
// forget (nil: nothing to do).
func (a *recordArena) recycle() {
	if a != nil {
		for _, c := range a.all {
			c.recycle()
		}
	}
}

// forget leaves the arrays handed out to their user.
func (a *recordArena) forget() {
	if a != nil {
		for _, c := range a.all {
			c.forget()
		}
	}
}

// take returns arrays for one record of shape sh, carved, or new ones
// when a is nil.
func (a *recordArena) take(sh cdeShape) ([]cdcpb.Event, []*cdcpb.Event, []cdcpb.Event_Entries, []cdcpb.Event_Entries_, []cdcpb.Event_Row, []*cdcpb.Event_Row, []cdcpb.Event_ResolvedTs) {
	if a == nil {
		return make([]cdcpb.Event, sh.events), make([]*cdcpb.Event, sh.events), make([]cdcpb.Event_Entries, sh.entries),
			make([]cdcpb.Event_Entries_, sh.entries), make([]cdcpb.Event_Row, sh.rows), make([]*cdcpb.Event_Row, sh.rows),
			make([]cdcpb.Event_ResolvedTs, sh.resolved)
	}
	return a.events.take(sh.events), a.ptrs.take(sh.events), a.entries.take(sh.entries), a.wraps.take(sh.entries),
		a.rows.take(sh.rows), a.rowPtrs.take(sh.rows), a.resolved.take(sh.resolved)
}
