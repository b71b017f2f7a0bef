package txnmatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/tistream/tistream/libs/sortbuf"
)

// ErrCorruptSnapshot is returned by Restore for input this package did not
// write (or that was damaged since).
var ErrCorruptSnapshot = errors.New("txnmatch: corrupt snapshot")

// decoded is a snapshot's content before it is installed.
type decoded struct {
	txns        map[uint64]*txn
	spilled     map[uint64]*spilledTxn
	commits     []*pendingCommit
	rollbacks   pendingRollbacks
	corrections []*pendingCommit
	prewrites   int
	spilledN    int64
}

func decodeSnapshot(data []byte) (*decoded, error) {
	if len(data) < len(snapshotMagic)+1+4 || string(data[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: no magic", ErrCorruptSnapshot)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorruptSnapshot)
	}
	v := body[len(snapshotMagic)]
	if v < 1 || v > snapshotVersion {
		return nil, fmt.Errorf("%w: version %d", ErrCorruptSnapshot, v)
	}
	d := decoder{b: body[len(snapshotMagic)+1:], version: v}
	st := &decoded{
		txns:      make(map[uint64]*txn),
		spilled:   make(map[uint64]*spilledTxn),
		rollbacks: newPendingRollbacks(),
	}
	d.txns(st)
	d.spilledTxns(st)
	d.commits(st)
	d.rollbacks(st)
	if d.version >= 2 {
		d.corrections(st)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return st, nil
}

// decoder reads the snapshot body; the first error sticks and every later
// read returns zero values, so callers check d.err once per loop.
type decoder struct {
	b       []byte
	err     error
	version byte
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrCorruptSnapshot}, args...)...)
	}
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes() []byte {
	n := d.uint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("length %d beyond the %d bytes left", n, len(d.b))
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

// count reads an entry count, rejecting one that the remaining bytes cannot
// hold at minSize bytes an entry, so that no loop or allocation is sized
// by a forged number.
func (d *decoder) count(minSize int) int {
	n := d.uint()
	if d.err == nil && n > uint64(len(d.b)/minSize) {
		d.fail("count %d beyond the %d bytes left", n, len(d.b))
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

func (d *decoder) op(allowZero bool) sortbuf.Op {
	op := sortbuf.Op(d.byte())
	if d.err == nil && !op.Valid() && !(allowZero && op == 0) {
		d.fail("op %d", op)
	}
	return op
}

func (d *decoder) txns(st *decoded) {
	n := d.count(2)
	for i := 0; i < n && d.err == nil; i++ {
		startTs := d.uint()
		rows := d.count(4)
		if d.err == nil && rows == 0 {
			d.fail("transaction %d without rows", startTs)
		}
		if _, dup := st.txns[startTs]; dup && d.err == nil {
			d.fail("transaction %d twice", startTs)
		}
		t := &txn{}
		for j := 0; j < rows && d.err == nil; j++ {
			op := d.op(false)
			var gen uint64
			if d.version >= 2 {
				gen = d.uint()
			}
			key, value, old := d.bytes(), d.bytes(), d.bytes()
			if d.err != nil {
				break
			}
			if _, dup := t.rows.get(key); dup {
				d.fail("key %q of transaction %d twice", key, startTs)
				break
			}
			p := newPrewrite(key, op, gen, value, old)
			t.rows.set(p, false)
			t.bytes += p.size()
			st.prewrites++
		}
		st.txns[startTs] = t
	}
}

func (d *decoder) spilledTxns(st *decoded) {
	n := d.count(2)
	for i := 0; i < n && d.err == nil; i++ {
		startTs, keys := d.uint(), d.uint()
		if d.err != nil {
			break
		}
		if _, dup := st.spilled[startTs]; dup || keys == 0 || keys > 1<<62 {
			d.fail("spilled transaction %d with %d keys", startTs, keys)
			break
		}
		st.spilled[startTs] = &spilledTxn{keys: int64(keys)}
		st.spilledN += int64(keys)
	}
}

func (d *decoder) commits(st *decoded) {
	n := d.count(4)
	seen := make(map[uint64]map[string]bool)
	for i := 0; i < n && d.err == nil; i++ {
		key := d.bytes()
		startTs, commitTs := d.uint(), d.uint()
		op := d.op(true)
		if d.err != nil {
			break
		}
		if commitTs == 0 || seen[startTs][string(key)] {
			d.fail("commit of %q at %d/%d", key, startTs, commitTs)
			break
		}
		if seen[startTs] == nil {
			seen[startTs] = make(map[string]bool)
		}
		seen[startTs][string(key)] = true
		st.commits = append(st.commits, &pendingCommit{key: string(key), startTs: startTs, commitTs: commitTs, op: op})
	}
}

func (d *decoder) rollbacks(st *decoded) {
	n := d.count(2)
	for i := 0; i < n && d.err == nil; i++ {
		key := d.bytes()
		startTs := d.uint()
		var commitTs uint64 // a rollback; version 3 also has dropped commits
		if d.version >= 3 {
			commitTs = d.uint()
		}
		if d.err != nil {
			break
		}
		if !st.rollbacks.add(startTs, string(key), commitTs) {
			d.fail("rollback of %q at %d twice", key, startTs)
		}
	}
}

func (d *decoder) corrections(st *decoded) {
	n := d.count(6)
	seen := make(map[uint64]map[string]bool)
	for i := 0; i < n && d.err == nil; i++ {
		key := d.bytes()
		startTs, commitTs, gen := d.uint(), d.uint(), d.uint()
		op := d.op(true)
		if d.err != nil {
			break
		}
		r := rankOf(gen)
		// An entry the matcher cannot have made is rejected, so that every
		// accepted snapshot encodes back to the same bytes.
		if commitTs == 0 || !r.supersedable() || seen[startTs][string(key)] {
			d.fail("correction of %q at %d/%d", key, startTs, commitTs)
			break
		}
		if seen[startTs] == nil {
			seen[startTs] = make(map[string]bool)
		}
		seen[startTs][string(key)] = true
		st.corrections = append(st.corrections, &pendingCommit{key: string(key), startTs: startTs, commitTs: commitTs, op: op, rank: r})
	}
}

// install makes st the matcher's state and charges it to the budget.
func (m *Matcher) install(st *decoded) {
	m.spilled, m.rollbacks = st.spilled, st.rollbacks
	m.prewrites, m.spilledN = st.prewrites, st.spilledN
	m.txns = txnTable{}
	var bytes int64
	for ts, t := range st.txns {
		m.txns.add(ts, t)
		bytes += t.bytes
	}
	for _, c := range st.commits {
		m.commits.add(c)
		bytes += commitSize(c.key)
	}
	for _, keys := range m.rollbacks.byTxn {
		for k := range keys {
			bytes += rollbackSize(len(k))
		}
	}
	for _, c := range st.corrections {
		m.corrections.add(c)
		bytes += commitSize(c.key)
	}
	m.charge(bytes)
	m.Settle()
}
