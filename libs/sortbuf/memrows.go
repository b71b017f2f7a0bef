package sortbuf

import (
	"bytes"
	"cmp"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/tistream/tistream/libs/offheap"
	"github.com/tistream/tistream/libs/recycle"
)

// memRow is one row held in memory: its identity and op, and where its
// bytes (key, value, old value, back to back) are in an arena chunk.
type memRow struct {
	commitTs, startTs uint64
	c                 *chunk
	off               uint32
	klen, vlen, olen  uint32
	op                Op
	// seq is the row's place in the order rows were added to its index
	// (wrapping): among rows of one identity in the unsorted tail, the
	// later one wins, and seq lets the tail be sorted by an unstable
	// sort. It fits the struct's padding.
	seq uint32
}

// memRowSize is what one entry of the row index costs.
const memRowSize = int64(unsafe.Sizeof(memRow{}))

func (r *memRow) key() []byte {
	o := r.off
	return r.c.buf[o : o+r.klen : o+r.klen]
}

// row returns the row; its slices alias the arena.
func (r *memRow) row() Row {
	k := r.off + r.klen
	v := k + r.vlen
	e := v + r.olen
	buf := r.c.buf
	return Row{CommitTs: r.commitTs, StartTs: r.startTs, Op: r.op,
		Key: buf[r.off:k:k], Value: nilIfEmpty(buf[k:v:v]), OldValue: nilIfEmpty(buf[v:e:e])}
}

// compareIdent orders a row against (commitTs, startTs, key): the buffer's
// order, the same as Engine's key encoding.
func compareIdent(a *memRow, commitTs, startTs uint64, key []byte) int {
	if c := cmp.Compare(a.commitTs, commitTs); c != 0 {
		return c
	}
	if c := cmp.Compare(a.startTs, startTs); c != 0 {
		return c
	}
	return bytes.Compare(a.key(), key)
}

func compareMemRows(a, b memRow) int { return compareIdent(&a, b.commitTs, b.startTs, b.key()) }

// compareArrivals orders rows as compareMemRows, and rows of one identity
// by when they were added: base is the seq of the first of them added
// (seqs wrap; the rows compared were added fewer than 2^32 apart).
func compareArrivals(a, b *memRow, base uint32) int {
	if a.commitTs != b.commitTs {
		return cmp.Compare(a.commitTs, b.commitTs)
	}
	if a.startTs != b.startTs {
		return cmp.Compare(a.startTs, b.startTs)
	}
	if c := bytes.Compare(a.key(), b.key()); c != 0 {
		return c
	}
	return cmp.Compare(a.seq-base, b.seq-base)
}

// chunk is a piece of arena. Its buf never changes after creation (rows
// slice into it); used is how much of it is taken.
type chunk struct {
	buf  []byte
	used int
	// live counts the rows referring to the chunk, those of open batches
	// included; a chunk with none that is no longer the one being filled
	// is released.
	live int32
	// pool, when not nil, is the arena pool buf is a block of, returned by
	// drop or, for a chunk left to the garbage collector (released while
	// a scan shared it, or abandoned with its buffer), by cleanup once
	// unreachable.
	pool    *offheap.Pool
	cleanup runtime.Cleanup
}

// arena holds the full-size chunks outside the Go heap (package offheap):
// rows waiting for a flush are most of a sorter's memory, and on the heap
// they would raise the heap the collector lets grow, every new page of it
// first touched through a page fault; there they sit in huge pages and
// the collector neither counts nor scans them. Smaller chunks (idle
// ranges) and single large rows stay on the heap.
var arena = func() *offheap.Pool {
	p, err := offheap.New(maxChunk, offheap.Options{})
	if err != nil {
		panic(err) // maxChunk is a constant that divides a huge page
	}
	return p
}()

// ArenaStats is what the arena pool of every memory-first store of the
// process holds.
func ArenaStats() offheap.Stats { return arena.Stats() }

// newFullChunk makes a full-size chunk in pool, or on the heap if the
// kernel maps no more memory.
func newFullChunk(pool *offheap.Pool) *chunk {
	buf, err := pool.Get()
	if err != nil {
		return &chunk{buf: make([]byte, maxChunk)}
	}
	c := &chunk{buf: buf, pool: pool}
	c.cleanup = runtime.AddCleanup(c, pool.Put, buf)
	return c
}

// drop returns a chunk nothing refers to any more (no row, no scan) to the
// arena at once, instead of waiting for the collector.
func (c *chunk) drop() {
	if c.pool != nil {
		c.cleanup.Stop()
		c.pool.Put(c.buf)
		c.pool, c.buf = nil, nil
	}
}

// Arena chunks grow from minChunk to maxChunk as a buffer fills (doubling
// per chunk), so that an idle range costs little and a busy one allocates
// rarely; after a flush empties a range, its chunks start from a quarter of
// what it stored in the last cycle. A row larger than maxChunk/4 gets a
// chunk of its own.
const (
	minChunk = 1 << 10
	maxChunk = 256 << 10
)

// chunkCache keeps full-size chunks released while no scan could still
// read them, for the next ones a store needs: a sorter fills and empties
// its buffers every flush, and a recycled chunk costs neither the zeroing
// of a new allocation nor the garbage collector's work. It holds chunks
// only while the store's memory in use and the cache together stay within
// the budget (and the cache within maxCached), so the budget bounds both.
type chunkCache struct {
	used    *atomic.Int64
	budget  int64
	cached  atomic.Int64 // bytes in free and indexes
	mu      sync.Mutex
	free    []*chunk
	indexes [][]memRow // emptied ranges' index arrays, their rows cleared
	// arena hands out the full-size chunks (the process's, arena; tests
	// give a store one of its own).
	arena *offheap.Pool
}

const maxCached = 256 << 20

// Index arrays of emptied ranges are recycled too, the smallest one large
// enough first; small ones are not worth it, and at most maxIndexes are
// held (the search is linear).
const (
	minCachedIndex = 1024
	maxIndexes     = 256
)

// getIndex returns an empty index array with room for n rows; a new one
// has room for a quarter more.
func (cc *chunkCache) getIndex(n int) []memRow {
	if cc != nil && n >= minCachedIndex {
		cc.mu.Lock()
		a, ok := recycle.Smallest(&cc.indexes, n, 0)
		if ok {
			cc.cached.Add(-int64(cap(a)) * memRowSize)
		}
		cc.mu.Unlock()
		if ok {
			return a
		}
	}
	return newIndex(n + n/4)
}

// newIndex makes an empty index array with room for n rows. Workers fill
// the indexes of different ranges at once, and a large one's first and
// last page may be those of another's: offheap.Touch has them faulted
// once, not by two workers at a time. Then every page is written
// (offheap.WritePages): the collector scans the array to its capacity
// while rows fill it.
func newIndex(n int) []memRow {
	a := make([]memRow, 0, n)
	offheap.Touch(unsafe.Pointer(unsafe.SliceData(a)), uintptr(n)*uintptr(memRowSize))
	return offheap.WritePages(a)
}

// room makes room in rows for one more row: a full array moves to a new
// one, growing as append would (from one row, doubling while small, a
// quarter more when large); the old array is left as it was (a scan may
// still read it).
func room(rows []memRow) []memRow {
	if len(rows) < cap(rows) {
		return rows
	}
	c := cap(rows)
	switch {
	case c == 0:
		c = 1
	case c < 256:
		c *= 2
	default:
		c += (c + 3*256) / 4
	}
	return append(newIndex(c), rows...)
}

// putIndex keeps an index array whose rows are all cleared, within the
// same bounds as chunks.
func (cc *chunkCache) putIndex(a []memRow) {
	if cc == nil || cap(a) < minCachedIndex {
		return
	}
	size := int64(cap(a)) * memRowSize
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if len(cc.indexes) < maxIndexes && cc.cached.Load()+size <= cc.limit() {
		clear(a[:cap(a)]) // rows cut while a scan shared them were not cleared
		cc.indexes = append(cc.indexes, a[:0])
		cc.cached.Add(size)
	}
}

// get hands out the lowest cached chunk (in the arena's address order, so
// the chunks in use stay together and the arena's higher pages can drain),
// or a new one.
func (cc *chunkCache) get() *chunk {
	if cc != nil {
		cc.mu.Lock()
		if n := len(cc.free); n > 0 {
			low := 0
			for i := 1; i < n; i++ {
				if offheap.Compare(cc.free[i].buf, cc.free[low].buf) < 0 {
					low = i
				}
			}
			c := cc.free[low]
			cc.free[low] = cc.free[n-1]
			cc.free[n-1] = nil
			cc.free = cc.free[:n-1]
			cc.cached.Add(-maxChunk)
			cc.mu.Unlock()
			return c
		}
		cc.mu.Unlock()
		return newFullChunk(cc.arena)
	}
	return newFullChunk(arena)
}

// put keeps a released full-size chunk for reuse, or drops it.
func (cc *chunkCache) put(c *chunk) {
	if cc == nil {
		c.drop()
		return
	}
	c.used, c.live = 0, 0
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.cached.Load()+maxChunk <= cc.limit() {
		cc.free = append(cc.free, c)
		cc.cached.Add(maxChunk)
		return
	}
	c.drop()
}

// limit is what the cache may hold: no more than the memory in use (or
// minKeep), so that what a busy cycle released does not stay held once
// the ranges go quiet (it would only raise the heap the collector lets
// grow, in new memory); within maxCached and what the budget leaves.
func (cc *chunkCache) limit() int64 {
	used := cc.used.Load()
	return max(0, min(maxCached, cc.budget-used, max(used, minKeep)))
}

// minKeep is what the cache may hold however little is in use.
const minKeep = 16 << 20

// trim drops cached index arrays, then chunks, while the cache holds more
// than its limit: memory in use comes first, and the cache follows it down.
func (cc *chunkCache) trim() {
	if cc == nil || cc.cached.Load() <= cc.limit() {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for n := len(cc.indexes); n > 0 && cc.cached.Load() > cc.limit(); n-- {
		cc.cached.Add(-int64(cap(cc.indexes[n-1])) * memRowSize)
		cc.indexes[n-1] = nil
		cc.indexes = cc.indexes[:n-1]
	}
	if cc.cached.Load() > cc.limit() {
		// The highest chunks go first (see get).
		slices.SortFunc(cc.free, func(a, b *chunk) int { return offheap.Compare(a.buf, b.buf) })
	}
	for n := len(cc.free); n > 0 && cc.cached.Load() > cc.limit(); n-- {
		cc.free[n-1].drop()
		cc.free[n-1] = nil
		cc.free = cc.free[:n-1]
		cc.cached.Add(-maxChunk)
	}
}

// memRows is one range's rows in memory, sorted by (commit_ts, start_ts,
// key). Rows are mostly added in order, so adding appends; rows added out
// of order wait in an unsorted tail that the next read sorts and merges.
// It is not safe for concurrent use: the buffer's mutex guards it.
type memRows struct {
	rows []memRow
	// rows[:lo] are deleted (zeroed); rows[lo:sorted] are sorted without
	// two of one identity; rows[sorted:] were added since, in arrival order.
	lo, sorted int
	cur        *chunk // the chunk being filled
	hint       int    // rows the index held before it was last emptied
	stored     int    // bytes stored since the index was last emptied
	nextChunk  int
	chunkBytes int64
	cache      *chunkCache // nil: no recycling
	nextSeq    uint32      // the seq of the next row inserted
	// shared counts scans in progress: their views alias rows[lo:sorted]
	// and the chunks, so these are then replaced instead of changed in
	// place, and released chunks are left to the garbage collector instead
	// of being recycled.
	shared int
}

// charged is what the rows hold in memory: arena chunks and the index.
func (m *memRows) charged() int64 {
	return m.chunkBytes + int64(cap(m.rows))*memRowSize
}

func (m *memRows) count() int { return len(m.rows) - m.lo }

// store copies r's bytes into the arena and returns its entry, counted as
// a reference to its chunk; the caller inserts or releases it.
func (m *memRows) store(r *Row) memRow {
	n := r.Size()
	c := m.cur
	switch {
	case n > maxChunk/4:
		// A large row alone; the chunk being filled stays.
		c = &chunk{buf: make([]byte, n)}
		m.chunkBytes += int64(n)
	case c == nil || c.used+n > len(c.buf):
		c = m.newChunk(n)
	}
	m.stored += n
	off := c.used
	c.used += copy(c.buf[off:], r.Key)
	c.used += copy(c.buf[c.used:], r.Value)
	c.used += copy(c.buf[c.used:], r.OldValue)
	c.live++
	return memRow{commitTs: r.CommitTs, startTs: r.StartTs, c: c, off: uint32(off),
		klen: uint32(len(r.Key)), vlen: uint32(len(r.Value)), olen: uint32(len(r.OldValue)), op: r.Op}
}

// newChunk starts filling a new chunk with room for n bytes.
func (m *memRows) newChunk(n int) *chunk {
	size := max(m.nextChunk, minChunk)
	for size < n {
		size *= 2
	}
	var c *chunk
	if size == maxChunk {
		c = m.cache.get()
	} else {
		c = &chunk{buf: make([]byte, size)}
	}
	m.chunkBytes += int64(size)
	m.nextChunk = min(size*2, maxChunk)
	prev := m.cur
	m.cur = c
	if prev != nil && prev.live == 0 {
		m.free(prev)
	}
	return c
}

// free releases a chunk no row refers to any more.
func (m *memRows) free(c *chunk) {
	m.chunkBytes -= int64(len(c.buf))
	if len(c.buf) == maxChunk && m.shared == 0 {
		m.cache.put(c)
	}
}

// release drops one reference to r's chunk.
func (m *memRows) release(r *memRow) {
	c := r.c
	c.live--
	if c.live == 0 && c != m.cur {
		m.free(c)
	}
}

// insert adds a stored row; one of the same identity is replaced.
func (m *memRows) insert(r memRow) {
	r.seq = m.nextSeq
	m.nextSeq++
	if m.rows == nil && m.hint > 0 {
		// A range is emptied by every flush: size the index for at least
		// as many rows as last time (a recycled one, or a new one with a
		// quarter more) instead of growing it again.
		m.rows = m.cache.getIndex(m.hint)
	}
	if len(m.rows) == cap(m.rows) && m.lo > 0 && m.lo >= len(m.rows)/4 && m.shared == 0 {
		// A full index whose front holds deleted rows (a range flushed
		// while rows above the flush kept coming) moves its rows to the
		// front rather than growing into a new array, when that frees a
		// quarter of it or more.
		m.compact()
	}
	n := len(m.rows)
	switch {
	case m.sorted < n: // an unsorted tail already waits
	case n == m.lo || compareMemRows(m.rows[n-1], r) < 0:
		m.sorted++
	case m.shared == 0 && m.insertNear(r):
		return
	}
	m.rows = append(room(m.rows), r)
}

// compact moves the live rows to the front of the index; not while shared.
func (m *memRows) compact() {
	n := copy(m.rows, m.rows[m.lo:])
	clear(m.rows[n:])
	m.rows = m.rows[:n]
	m.sorted -= m.lo
	m.lo = 0
}

// insertNear puts r at its place among the last few sorted rows, where a
// transaction's rows land when its keys come out of order; it reports
// false (nothing done) if r belongs further back.
func (m *memRows) insertNear(r memRow) bool {
	const window = 16
	n := len(m.rows)
	p := n - 1
	for ; p > m.lo && n-p < window; p-- {
		if compareMemRows(m.rows[p-1], r) < 0 {
			break
		}
	}
	switch c := compareMemRows(m.rows[p], r); {
	case c == 0: // the same identity: the later row replaces it
		m.release(&m.rows[p])
		m.rows[p] = r
		return true
	case p > m.lo && compareMemRows(m.rows[p-1], r) >= 0:
		return false // further back than the window
	}
	m.rows = append(room(m.rows), memRow{})
	copy(m.rows[p+1:], m.rows[p:n])
	m.rows[p] = r
	m.sorted++
	return true
}

// normalize sorts and merges the rows added out of order, the last added
// of one identity winning.
func (m *memRows) normalize() {
	n := len(m.rows)
	if m.sorted == n {
		return
	}
	// The tail is past every scan's view (views end at sorted): it is
	// sorted into scratch memory and merged back from there.
	sc := tailScratches.Get().(*tailScratch)
	defer sc.put()
	tail := sc.sort(m.rows[m.sorted:])
	k := 0
	for i := range tail {
		if i+1 < len(tail) && compareMemRows(tail[i], tail[i+1]) == 0 {
			m.release(&tail[i]) // the later of one identity follows it
			continue
		}
		tail[k] = tail[i]
		k++
	}
	clear(tail[k:])
	tail = tail[:k]
	// Where the tail starts within the sorted rows.
	p := m.lo + sort.Search(m.sorted-m.lo, func(i int) bool {
		return compareMemRows(m.rows[m.lo+i], tail[0]) >= 0
	})
	dst := m.rows
	if p < m.sorted && m.shared > 0 {
		// Scans read rows[lo:sorted]: build the result in a new array.
		dst = newIndex(cap(m.rows))[:n]
		copy(dst[m.lo:p], m.rows[m.lo:p])
	}
	end := m.mergeBack(dst, p, tail)
	clear(dst[end:n])
	m.rows = dst[:end]
	m.sorted = end
	clear(tail) // no chunk kept alive by the scratch
}

// mergeBack merges the sorted rows[p:sorted] with tail (sorted, each
// identity once) into dst[p:], from the back, and returns where the rows
// end in dst. Of two rows of one identity the tail's wins. dst is rows
// itself or a new array: from the back, no row of rows[p:sorted] is
// overwritten before it is read, and only the tail (not the sorted rows
// after p, usually many more) is copied out of the way.
func (m *memRows) mergeBack(dst []memRow, p int, tail []memRow) int {
	i, j := m.sorted-1, len(tail)-1
	w := m.sorted + len(tail) - 1
	dups := 0
	for j >= 0 {
		if i >= p {
			switch c := compareMemRows(m.rows[i], tail[j]); {
			case c > 0:
				dst[w] = m.rows[i]
				i, w = i-1, w-1
				continue
			case c == 0:
				m.release(&m.rows[i])
				i--
				dups++
			}
		}
		dst[w] = tail[j]
		j, w = j-1, w-1
	}
	// rows[p:i+1] are what is left: in place unless a duplicate moved
	// them or dst is another array. The merged rows are dst[p+dups:].
	copy(dst[p+dups:i+1+dups], m.rows[p:i+1])
	end := m.sorted + len(tail)
	if dups > 0 {
		end -= dups
		copy(dst[p:end], dst[p+dups:end+dups])
	}
	return end
}

// radixMin is the least tail sorted by radix on commit ts; shorter ones go
// to a comparison sort.
const radixMin = 64

// tsIndex is a row's commit ts and its place in the tail, what the radix
// passes move.
type tsIndex struct {
	ts uint64
	i  uint32
}

// tailScratch is the memory a tail is sorted in: a copy of its rows and
// two arrays for the radix passes. The buffers of a process share them
// (ranges sort their tails on different workers at once).
type tailScratch struct {
	rows        []memRow
	ents, spare []tsIndex
}

var tailScratches = sync.Pool{New: func() any { return new(tailScratch) }}

// put gives the scratch back, unless it grew past maxTailScratch; its
// rows must be cleared.
func (sc *tailScratch) put() {
	if cap(sc.rows) <= maxTailScratch {
		tailScratches.Put(sc)
	}
}

// maxTailScratch bounds the tail a scratch is kept for (in rows; 80 bytes
// each).
const maxTailScratch = 1 << 18

// sort returns the tail's rows (in arrival order) sorted by identity and
// then arrival, in sc.rows. In the fleet a range's tail is thousands of
// rows from many regions in nearly random order, and what orders them is
// mostly the commit ts: they are sorted by a stable radix sort of their
// commit ts's bytes that differ (a tail spans a few seconds: three or four
// of the eight), and the rows of one commit ts, a transaction's, by start
// ts, key and arrival. Rows of one identity stay in arrival order in both
// steps, the last added last.
func (sc *tailScratch) sort(tail []memRow) []memRow {
	n := len(tail)
	base := tail[0].seq
	byArrival := func(a, b memRow) int { return compareArrivals(&a, &b, base) }
	out := slices.Grow(sc.rows[:0], n)[:n]
	sc.rows = out
	if n < radixMin || n > math.MaxUint32 {
		copy(out, tail)
		slices.SortFunc(out, byArrival)
		return out
	}
	ents, spare := slices.Grow(sc.ents[:0], n)[:n], slices.Grow(sc.spare[:0], n)[:n]
	first := tail[0].commitTs
	var differ uint64
	for i := range tail {
		ts := tail[i].commitTs
		ents[i] = tsIndex{ts, uint32(i)}
		differ |= ts ^ first
	}
	for shift := 0; shift < 64; shift += 8 {
		if (differ>>shift)&0xff == 0 {
			continue // every row has the same byte here
		}
		var at [256]uint32
		for _, e := range ents {
			at[byte(e.ts>>shift)]++
		}
		sum := uint32(0)
		for d, c := range at {
			at[d] = sum
			sum += c
		}
		for _, e := range ents {
			d := byte(e.ts >> shift)
			spare[at[d]] = e
			at[d]++
		}
		ents, spare = spare, ents
	}
	for k, e := range ents {
		out[k] = tail[e.i]
	}
	sc.ents, sc.spare = ents[:0], spare[:0]
	for lo := 0; lo < n; {
		hi := lo + 1
		for hi < n && out[hi].commitTs == out[lo].commitTs {
			hi++
		}
		if g := out[lo:hi]; len(g) > 12 {
			slices.SortFunc(g, byArrival)
		} else {
			for a := 1; a < len(g); a++ {
				for b := a; b > 0 && compareArrivals(&g[b-1], &g[b], base) > 0; b-- {
					g[b-1], g[b] = g[b], g[b-1]
				}
			}
		}
		lo = hi
	}
	return out
}

// view returns the rows with commit_ts <= upTo; call normalize first.
func (m *memRows) view(upTo uint64) []memRow {
	end := m.upper(upTo)
	return m.rows[m.lo:end:end]
}

// upper is the index of the first row with commit_ts > ts.
func (m *memRows) upper(ts uint64) int {
	return m.lo + sort.Search(len(m.rows)-m.lo, func(i int) bool { return m.rows[m.lo+i].commitTs > ts })
}

// has reports whether a row of this identity is held; call normalize first.
func (m *memRows) has(commitTs, startTs uint64, key []byte) bool {
	i := m.lo + sort.Search(len(m.rows)-m.lo, func(i int) bool {
		return compareIdent(&m.rows[m.lo+i], commitTs, startTs, key) >= 0
	})
	return i < len(m.rows) && compareIdent(&m.rows[i], commitTs, startTs, key) == 0
}

// deleteUpTo removes the rows with commit_ts <= ts.
func (m *memRows) deleteUpTo(ts uint64) {
	m.normalize()
	cut := m.upper(ts)
	m.cut(cut)
}

// cut removes rows[lo:end] (sorted rows) and reclaims what it can.
func (m *memRows) cut(end int) {
	for i := m.lo; i < end; i++ {
		m.release(&m.rows[i])
	}
	if m.shared == 0 {
		clear(m.rows[m.lo:end])
	}
	m.lo = end
	switch {
	case m.lo == len(m.rows):
		m.reset()
	case m.lo > len(m.rows)/2 && m.shared == 0:
		m.compact()
	}
}

// reset forgets an empty index, so that an idle range holds no memory; the
// chunk being filled goes too unless an open batch still refers to it.
func (m *memRows) reset() {
	if m.rows == nil {
		// Already empty (a batch without rows committed): the hint is
		// still the last cycle's.
		m.freeCur()
		return
	}
	m.hint = len(m.rows)
	if m.shared == 0 {
		// Its rows are cleared (cut): another range's next cycle can
		// take it rather than allocate one.
		m.cache.putIndex(m.rows)
	}
	m.rows = nil
	m.lo, m.sorted = 0, 0
	m.freeCur()
	// The next cycle's chunks start at a quarter of what this one stored:
	// a busy range goes straight to full (recycled) chunks, an idle one
	// holds a small one.
	m.nextChunk = minChunk
	for m.nextChunk < maxChunk && m.nextChunk < m.stored/4 {
		m.nextChunk *= 2
	}
	m.stored = 0
}

// freeCur frees the chunk being filled unless an open batch refers to it.
func (m *memRows) freeCur() {
	if c := m.cur; c != nil && c.live == 0 {
		m.cur = nil
		m.free(c)
	}
}

// tidy frees what an empty index still holds (after released batch rows).
func (m *memRows) tidy() {
	if m.count() == 0 {
		m.reset()
	}
}

// clearAll removes every row (sorted or not).
func (m *memRows) clearAll() {
	m.normalize()
	m.cut(len(m.rows))
}
