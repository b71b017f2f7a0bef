package txnmatch

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
)

// Snapshot layout (all counts and integers uvarint, byte strings as
// uvarint length + bytes, sections in a fixed order and sorted, so equal
// states encode to equal bytes):
//
//	magic "TXMS"  version[1]=3
//	n_txns         { start_ts  n_rows { op[1] generation key value old_value } }
//	n_spilled      { start_ts  n_keys }
//	n_commits      { key start_ts commit_ts op[1] }
//	n_rollbacks    { key start_ts commit_ts }
//	n_corrections  { key start_ts commit_ts generation op[1] }
//	crc32c[4, little-endian] of everything before
//
// In n_rollbacks, commit_ts is 0 for a rollback waiting for its prewrite,
// and the commit_ts of a commit dropped as late (DropCommit) otherwise.
// Version 2 (still read) has no commit_ts in n_rollbacks (all rollbacks);
// version 1 (still read) has, besides, no generation in n_txns
// (generation 0) and no n_corrections section (an empty correction index).
// op is the commit's, 0 if it gave none.
//
// Spilled rows themselves are not here: the caller saves them through the
// SpillStore's ForEach and puts them back before using the restored matcher.
const (
	snapshotMagic   = "TXMS"
	snapshotVersion = 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Snapshot writes the matcher's in-memory state to w.
func (m *Matcher) Snapshot(w io.Writer) error {
	e := encoder{buf: append(make([]byte, 0, 4096), snapshotMagic...)}
	e.buf = append(e.buf, snapshotVersion)

	starts := m.txns.sortedStarts()
	e.uint(uint64(len(starts)))
	for _, ts := range starts {
		t := m.txns.get(ts)
		rows := t.rows.sorted()
		e.uint(ts)
		e.uint(uint64(len(rows)))
		for _, p := range rows {
			e.buf = append(e.buf, byte(p.op))
			e.uint(p.gen)
			e.bytes(p.key())
			e.bytes(p.value())
			e.bytes(p.old())
		}
		if err := e.flushIfLarge(w); err != nil {
			return err
		}
	}

	spilled := sortedKeys(m.spilled)
	e.uint(uint64(len(spilled)))
	for _, ts := range spilled {
		e.uint(ts)
		e.uint(uint64(m.spilled[ts].keys))
	}

	commits := sortedCommits(m.commits.heap)
	e.uint(uint64(len(commits)))
	for _, c := range commits {
		e.bytes([]byte(c.key))
		e.uint(c.startTs)
		e.uint(c.commitTs)
		e.buf = append(e.buf, byte(c.op))
	}

	rollbackTxns := sortedKeys(m.rollbacks.byTxn)
	e.uint(uint64(m.rollbacks.n))
	for _, ts := range rollbackTxns {
		keys := m.rollbacks.byTxn[ts]
		for _, k := range sortedKeys(keys) {
			e.bytes([]byte(k))
			e.uint(ts)
			e.uint(keys[k])
		}
	}

	corrections := sortedCommits(m.corrections.heap)
	e.uint(uint64(len(corrections)))
	for _, c := range corrections {
		e.bytes([]byte(c.key))
		e.uint(c.startTs)
		e.uint(c.commitTs)
		e.uint(c.rank.gen)
		e.buf = append(e.buf, byte(c.op))
		if err := e.flushIfLarge(w); err != nil { // a pipelined transaction indexes every key
			return err
		}
	}
	e.crc = crc32.Update(e.crc, castagnoli, e.buf)
	e.buf = binary.LittleEndian.AppendUint32(e.buf, e.crc)
	_, err := w.Write(e.buf)
	return err
}

// encoder builds the snapshot, writing it out in pieces so a large
// in-memory state is not copied whole; crc covers what was written.
type encoder struct {
	buf []byte
	crc uint32
}

func (e *encoder) uint(v uint64)  { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) bytes(b []byte) { e.uint(uint64(len(b))); e.buf = append(e.buf, b...) }

func (e *encoder) flushIfLarge(w io.Writer) error {
	if len(e.buf) < 1<<20 {
		return nil
	}
	e.crc = crc32.Update(e.crc, castagnoli, e.buf)
	if _, err := w.Write(e.buf); err != nil {
		return err
	}
	e.buf = e.buf[:0]
	return nil
}

func sortedCommits(h commitHeap) []*pendingCommit {
	out := slices.Clone(h)
	slices.SortFunc(out, func(a, b *pendingCommit) int {
		return cmp.Or(cmp.Compare(a.startTs, b.startTs), cmp.Compare(a.key, b.key))
	})
	return out
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Restore loads a snapshot into a new, empty matcher. r is read to its end;
// bound it (io.LimitReader) when its source is not trusted to be small.
// Any malformed input is an error and leaves the matcher empty.
func (m *Matcher) Restore(r io.Reader) error {
	if m.txns.len() > 0 || len(m.spilled) > 0 || m.commits.len() > 0 || m.rollbacks.n > 0 || m.corrections.len() > 0 {
		return fmt.Errorf("txnmatch: restore into a matcher that is not empty")
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("txnmatch: read snapshot: %w", err)
	}
	st, err := decodeSnapshot(data)
	if err != nil {
		return err
	}
	m.install(st)
	return nil
}
