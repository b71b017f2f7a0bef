package txnmatch

import (
	"unsafe"

	"github.com/tistream/tistream/libs/sortbuf"
)

// prewrite is one pending prewrite. Key, value and old value share one
// allocation; the map key of a txn's rows is a string view of its key part,
// so a prewrite costs one allocation besides its map slot.
type prewrite struct {
	op   sortbuf.Op
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
	return prewrite{op: op, buf: buf, klen: int32(len(key)), vlen: int32(len(value)), gen: gen}
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
// the common case, and a finished txn is recycled with its map and last
// chunk (see txnPool).
type txn struct {
	rows  map[string]prewrite
	bytes int64
	chunk []byte
	peak  int // most rows held at once, to keep big maps out of the pool
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

func (t *txn) put(p prewrite) {
	t.rows[p.keyString()] = p
	t.peak = max(t.peak, len(t.rows))
}

// txnPool recycles finished transactions of one matcher.
type txnPool struct{ free []*txn }

func (p *txnPool) get() *txn {
	if n := len(p.free); n > 0 {
		t := p.free[n-1]
		p.free = p.free[:n-1]
		return t
	}
	return &txn{rows: make(map[string]prewrite, 16)}
}

// put recycles t, whose rows are all gone: no emitted row or map key
// refers to its chunk any more.
func (p *txnPool) put(t *txn) {
	if len(p.free) >= maxPooledTxns || t.peak > maxPooledRows || cap(t.chunk) > maxPooledChunk {
		return
	}
	clear(t.rows)
	t.bytes, t.peak = 0, 0
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
