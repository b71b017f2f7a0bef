package txnmatch

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/tistream/tistream/libs/sortbuf"
)

// Spilled prewrites are stored under (start_ts, key) with this value:
//
//	version[1]=0x02  op[1]  uvarint(generation)  uvarint(len(value))  value  old_value
//
// Version 0x01 (written before generations) has no generation field and is
// read as generation 0. The caller's snapshot code copies spill entries
// verbatim, so this encoding is part of the snapshot format and carries a
// version.
const (
	spillV1 byte = 0x01
	spillV2 byte = 0x02
)

var errCorruptSpill = errors.New("txnmatch: corrupt spilled prewrite")

func appendSpillValue(dst []byte, op sortbuf.Op, gen uint64, value, old []byte) []byte {
	dst = append(dst, spillV2, byte(op))
	dst = binary.AppendUvarint(dst, gen)
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	dst = append(dst, value...)
	return append(dst, old...)
}

// decodeSpillValue fills r's op, value and old value from b (which the
// SpillStore handed out as a copy, so r may alias it) and returns the
// generation.
func decodeSpillValue(b []byte, r *sortbuf.Row) (uint64, error) {
	if len(b) < 3 || (b[0] != spillV1 && b[0] != spillV2) || !sortbuf.Op(b[1]).Valid() {
		return 0, fmt.Errorf("%w: header", errCorruptSpill)
	}
	rest := b[2:]
	var gen uint64
	if b[0] == spillV2 {
		var n int
		if gen, n = binary.Uvarint(rest); n <= 0 {
			return 0, fmt.Errorf("%w: generation", errCorruptSpill)
		}
		rest = rest[n:]
	}
	vlen, n := binary.Uvarint(rest)
	rest = rest[max(n, 0):]
	if n <= 0 || vlen > uint64(len(rest)) {
		return 0, fmt.Errorf("%w: value length", errCorruptSpill)
	}
	r.Op = sortbuf.Op(b[1])
	r.Value = nilIfEmpty(rest[:vlen:vlen])
	r.OldValue = nilIfEmpty(rest[vlen:])
	return gen, nil
}

// putSpilled stores a prewrite of a spilled transaction unless one of
// equal or higher rank is there.
func (m *Matcher) putSpilled(st *spilledTxn, startTs uint64, key []byte, op sortbuf.Op, value, old []byte, gen uint64) error {
	// A repeated prewrite must not count twice, or the transaction's span
	// would never be found empty.
	prev, existed, err := m.spill.Get(startTs, key)
	if err != nil {
		return fmt.Errorf("txnmatch: spill lookup: %w", err)
	}
	if existed {
		var r sortbuf.Row
		pgen, err := decodeSpillValue(prev, &r)
		if err != nil {
			return err
		}
		m.superseded++
		if !rankOf(pgen).less(rankOf(gen)) {
			return nil
		}
	}
	m.scratch = appendSpillValue(m.scratch[:0], op, gen, value, old)
	if err := m.spill.Put(startTs, key, m.scratch); err != nil {
		return fmt.Errorf("txnmatch: spill put: %w", err)
	}
	if !existed {
		st.keys++
		m.spilledN++
	}
	return nil
}

// takeSpilled removes key's spilled prewrite, returning it as a row
// (without commit_ts) and its generation if want.
func (m *Matcher) takeSpilled(st *spilledTxn, startTs uint64, key []byte, want bool) (sortbuf.Row, uint64, bool, error) {
	v, ok, err := m.spill.Get(startTs, key)
	if err != nil {
		return sortbuf.Row{}, 0, false, fmt.Errorf("txnmatch: spill get: %w", err)
	}
	if !ok {
		return sortbuf.Row{}, 0, false, nil
	}
	r := sortbuf.Row{StartTs: startTs, Key: key}
	var gen uint64
	if want {
		if gen, err = decodeSpillValue(v, &r); err != nil {
			return sortbuf.Row{}, 0, false, err
		}
	}
	st.keys--
	m.spilledN--
	if st.keys <= 0 {
		// The last key: drop the transaction's whole span at once.
		delete(m.spilled, startTs)
		err = m.spill.DeleteTxn(startTs)
	} else {
		err = m.spill.Delete(startTs, key)
	}
	if err != nil {
		return sortbuf.Row{}, 0, false, fmt.Errorf("txnmatch: spill delete: %w", err)
	}
	return r, gen, true, nil
}

// spillLargest moves this matcher's largest in-memory transactions to the
// spill store until the budget is back under its low-water mark or nothing
// is left in memory.
func (m *Matcher) spillLargest() error {
	need := m.used() - m.budget.lowWater()
	if need <= 0 || m.txns.len() == 0 {
		return nil
	}
	type cand struct {
		startTs uint64
		bytes   int64
	}
	cands := make([]cand, 0, m.txns.len())
	m.txns.each(func(ts uint64, t *txn) bool {
		cands = append(cands, cand{ts, t.bytes})
		return true
	})
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(b.bytes, a.bytes) })
	for _, c := range cands {
		if need <= 0 {
			break
		}
		freed, err := m.spillTxn(c.startTs)
		if err != nil {
			return err
		}
		need -= freed
	}
	return nil
}

// spillTxn moves one transaction to the spill store and returns the bytes
// it freed.
func (m *Matcher) spillTxn(startTs uint64) (int64, error) {
	t := m.txns.get(startTs)
	st := &spilledTxn{}
	// Registered first: if a Put fails midway, the rows already written
	// are accounted to the spilled transaction, the rest stay in memory.
	m.spilled[startTs] = st
	var freed int64
	var err error
	t.rows.each(func(p prewrite) bool {
		m.scratch = appendSpillValue(m.scratch[:0], p.op, p.gen, p.value(), p.old())
		if err = m.spill.Put(startTs, p.key(), m.scratch); err != nil {
			err = fmt.Errorf("txnmatch: spill put: %w", err)
			return false
		}
		st.keys++
		m.spilledN++
		t.rows.remove(p.key())
		t.bytes -= p.size()
		m.prewrites--
		m.charge(-p.size())
		freed += p.size()
		return true
	})
	if err != nil {
		return freed, err
	}
	m.txns.remove(startTs)
	m.pool.put(t)
	m.spills++
	return freed, nil
}
