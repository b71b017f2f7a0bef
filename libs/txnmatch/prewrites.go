package txnmatch

import (
	"bytes"
	"encoding/binary"
	"slices"
	"unsafe"

	"github.com/tistream/tistream/libs/sortbuf"
)

// prewrite is one pending prewrite. Key, value and old value share one
// allocation, carved from the txn's chunk (txn.alloc); a txn's rows find
// a prewrite by its key part (txnRows).
type prewrite struct {
	op sortbuf.Op
	// tail is the key's last bytes (keyTail): rows searched in a slice
	// compare it before the key.
	tail uint32
	buf  []byte
	klen int32
	vlen int32
	gen  uint64 // pipelined DML generation, 0 if not pipelined
}

// rowOverhead approximates the bookkeeping of one in-memory prewrite (map
// slot, string and slice headers), charged to the budget on top of the
// payload so that many tiny rows are not free.
const rowOverhead = 96

func newPrewrite(key []byte, op sortbuf.Op, gen uint64, value, old []byte) prewrite {
	return makePrewrite(make([]byte, 0, len(key)+len(value)+len(old)), key, op, gen, value, old)
}

// makePrewrite copies key, value and old into buf, which has room for them.
func makePrewrite(buf []byte, key []byte, op sortbuf.Op, gen uint64, value, old []byte) prewrite {
	buf = append(buf, key...)
	buf = append(buf, value...)
	buf = append(buf, old...)
	return prewrite{op: op, tail: keyTail(key), buf: buf, klen: int32(len(key)), vlen: int32(len(value)), gen: gen}
}

// keyTail is the last four bytes of key (fewer when it is shorter): where
// the keys of one transaction's rows differ most often (a record key ends
// with its handle), so two keys with the same tail are likely the same.
func keyTail(key []byte) uint32 {
	if n := len(key); n >= 4 {
		return binary.LittleEndian.Uint32(key[n-4:])
	}
	var t uint32
	for _, b := range key {
		t = t<<8 | uint32(b)
	}
	return t
}

// keyString is a string view of the key bytes, which are never modified.
func (p *prewrite) keyString() string {
	if p.klen == 0 {
		return ""
	}
	return unsafe.String(&p.buf[0], int(p.klen))
}

func (p *prewrite) key() []byte   { return p.buf[:p.klen:p.klen] }
func (p *prewrite) value() []byte { return p.buf[p.klen : p.klen+p.vlen : p.klen+p.vlen] }
func (p *prewrite) old() []byte   { return p.buf[p.klen+p.vlen:] }
func (p *prewrite) size() int64   { return int64(len(p.buf)) + rowOverhead }
func (p *prewrite) rank() rank    { return rankOf(p.gen) }

// txn holds the in-memory prewrites of one transaction. Their bytes are
// carved out of chunks owned by the txn, so a prewrite allocates nothing in
// the common case, and a finished txn is recycled with its rows' memory
// and last chunk (see txnPool).
type txn struct {
	rows  txnRows
	bytes int64
	chunk []byte
}

const (
	chunkSize     = 4 << 10
	maxPooledTxns = 32
	// Transactions whose map or chunk grew past these are not recycled:
	// an idle pool must not pin memory the budget no longer counts.
	maxPooledRows  = 64
	maxPooledChunk = 64 << 10
)

// alloc returns an empty slice with room for n bytes.
func (t *txn) alloc(n int) []byte {
	if cap(t.chunk)-len(t.chunk) < n {
		t.chunk = make([]byte, 0, max(n, chunkSize))
	}
	start := len(t.chunk)
	t.chunk = t.chunk[:start+n]
	return t.chunk[start : start : start+n]
}

// txnRows are a transaction's in-memory prewrites by key. Most
// transactions have a few rows, each prewritten and then committed once:
// up to fewRows they are a slice searched in order, which costs less than
// a map's hashing, and nothing when the last one goes (a Go map draws a
// new hash seed each time it is emptied). Past fewRows they move to a map
// for good (until the transaction is recycled).
type txnRows struct {
	few  []prewrite
	many map[string]prewrite // holds the rows when big
	big  bool
	peak int // most rows held at once, to keep big maps out of the pool
}

// fewRows is the most rows kept in the slice.
const fewRows = 16

func (r *txnRows) len() int {
	if r.big {
		return len(r.many)
	}
	return len(r.few)
}

// find returns the place of key's row in few, or -1.
func (r *txnRows) find(key []byte) int {
	tail := keyTail(key)
	for i := range r.few {
		if p := &r.few[i]; p.tail == tail && int(p.klen) == len(key) && string(p.key()) == string(key) {
			return i
		}
	}
	return -1
}

// get returns key's row.
func (r *txnRows) get(key []byte) (prewrite, bool) {
	if r.big {
		p, ok := r.many[string(key)]
		return p, ok
	}
	if i := r.find(key); i >= 0 {
		return r.few[i], true
	}
	return prewrite{}, false
}

// set adds p, or replaces the row of its key; held says whether there is
// one (the caller has just looked it up).
func (r *txnRows) set(p prewrite, held bool) {
	switch {
	case r.big:
		r.many[p.keyString()] = p
	case held:
		r.few[r.find(p.key())] = p
		return
	case len(r.few) < fewRows:
		r.few = append(r.few, p)
	default:
		if r.many == nil {
			r.many = make(map[string]prewrite, 2*fewRows)
		}
		for i := range r.few {
			r.many[r.few[i].keyString()] = r.few[i]
		}
		clear(r.few)
		r.few = r.few[:0]
		r.big = true
		r.many[p.keyString()] = p
	}
	r.peak = max(r.peak, r.len())
}

// remove deletes key's row, if any.
func (r *txnRows) remove(key []byte) {
	if r.big {
		delete(r.many, string(key))
		return
	}
	if i := r.find(key); i >= 0 {
		last := len(r.few) - 1
		r.few[i] = r.few[last]
		r.few[last] = prewrite{}
		r.few = r.few[:last]
	}
}

// each calls fn for every row, in no particular order, until fn returns
// false. fn may remove the row it is given, and no other.
func (r *txnRows) each(fn func(p prewrite) bool) {
	if r.big {
		for _, p := range r.many {
			if !fn(p) {
				return
			}
		}
		return
	}
	for i := len(r.few) - 1; i >= 0; i-- { // from the back: fn may remove few[i]
		if !fn(r.few[i]) {
			return
		}
	}
}

// sorted returns the rows in key order.
func (r *txnRows) sorted() []prewrite {
	out := make([]prewrite, 0, r.len())
	r.each(func(p prewrite) bool {
		out = append(out, p)
		return true
	})
	slices.SortFunc(out, func(a, b prewrite) int { return bytes.Compare(a.key(), b.key()) })
	return out
}

// reset empties the rows for a recycled transaction.
func (r *txnRows) reset() {
	clear(r.few)
	r.few = r.few[:0]
	if r.many != nil {
		clear(r.many)
	}
	r.big, r.peak = false, 0
}

// txnTable is a matcher's in-memory transactions by start_ts. A range's
// transactions mostly begin and end within a batch, a few open at a time:
// up to fewTxns they are a slice searched in order (no hashing, and no new
// hash seed drawn each time the last one ends, as a Go map does when
// emptied); more move to a map, and back to the slice once at most
// fewTxns/4 are left.
type txnTable struct {
	few  []txnEntry
	many map[uint64]*txn // holds the transactions when big
	big  bool
}

type txnEntry struct {
	startTs uint64
	t       *txn
}

// fewTxns is the most transactions kept in the slice.
const fewTxns = 8

func (tt *txnTable) len() int {
	if tt.big {
		return len(tt.many)
	}
	return len(tt.few)
}

// get returns the transaction of startTs, or nil.
func (tt *txnTable) get(startTs uint64) *txn {
	if tt.big {
		return tt.many[startTs]
	}
	for i := range tt.few {
		if tt.few[i].startTs == startTs {
			return tt.few[i].t
		}
	}
	return nil
}

// add adds t as the transaction of startTs, which has none.
func (tt *txnTable) add(startTs uint64, t *txn) {
	switch {
	case tt.big:
		tt.many[startTs] = t
	case len(tt.few) < fewTxns:
		tt.few = append(tt.few, txnEntry{startTs, t})
	default:
		if tt.many == nil {
			tt.many = make(map[uint64]*txn, 4*fewTxns)
		}
		for _, e := range tt.few {
			tt.many[e.startTs] = e.t
		}
		clear(tt.few)
		tt.few = tt.few[:0]
		tt.big = true
		tt.many[startTs] = t
	}
}

// remove drops the transaction of startTs, if any.
func (tt *txnTable) remove(startTs uint64) {
	if tt.big {
		delete(tt.many, startTs)
		if len(tt.many) <= fewTxns/4 {
			for ts, t := range tt.many {
				tt.few = append(tt.few, txnEntry{ts, t})
			}
			clear(tt.many)
			tt.big = false
		}
		return
	}
	for i := range tt.few {
		if tt.few[i].startTs == startTs {
			last := len(tt.few) - 1
			tt.few[i] = tt.few[last]
			tt.few[last] = txnEntry{}
			tt.few = tt.few[:last]
			return
		}
	}
}

// each calls fn for every transaction, in no particular order, until fn
// returns false. fn must not add or remove transactions.
func (tt *txnTable) each(fn func(startTs uint64, t *txn) bool) {
	if tt.big {
		for ts, t := range tt.many {
			if !fn(ts, t) {
				return
			}
		}
		return
	}
	for _, e := range tt.few {
		if !fn(e.startTs, e.t) {
			return
		}
	}
}

// sortedStarts returns the start_ts of every transaction, ascending.
func (tt *txnTable) sortedStarts() []uint64 {
	out := make([]uint64, 0, tt.len())
	tt.each(func(ts uint64, _ *txn) bool {
		out = append(out, ts)
		return true
	})
	slices.Sort(out)
	return out
}

// txnPool recycles finished transactions of one matcher.
type txnPool struct{ free []*txn }

func (p *txnPool) get() *txn {
	if n := len(p.free); n > 0 {
		t := p.free[n-1]
		p.free = p.free[:n-1]
		return t
	}
	return &txn{}
}

// put recycles t, whose rows are all gone: no emitted row or map key
// refers to its chunk any more.
func (p *txnPool) put(t *txn) {
	if len(p.free) >= maxPooledTxns || t.rows.peak > maxPooledRows || cap(t.chunk) > maxPooledChunk {
		return
	}
	t.rows.reset()
	t.bytes = 0
	t.chunk = t.chunk[:0]
	p.free = append(p.free, t)
}

// spilledTxn is what memory keeps of a transaction moved to the spill store:
// how many of its keys are there, so the store's span can be deleted once
// the last one is matched.
type spilledTxn struct {
	keys int64
}

// row builds the emitted row of p.
func (p *prewrite) row(op sortbuf.Op, startTs, commitTs uint64) sortbuf.Row {
	if !op.Valid() {
		op = p.op
	}
	return sortbuf.Row{
		CommitTs: commitTs, StartTs: startTs, Op: op,
		Key: p.key(), Value: nilIfEmpty(p.value()), OldValue: nilIfEmpty(p.old()),
	}
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
