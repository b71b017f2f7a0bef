package txnmatch

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/sortbuf"
)

type spillEntry struct {
	startTs    uint64
	key, value []byte
}

// saveSpill copies a spill store out, as the sorter's snapshot code does.
func saveSpill(t *testing.T, sp sortbuf.SpillStore) []spillEntry {
	var out []spillEntry
	require.NoError(t, sp.ForEach(func(startTs uint64, key, value []byte) error {
		out = append(out, spillEntry{startTs, bytes.Clone(key), bytes.Clone(value)})
		return nil
	}))
	return out
}

// TestSnapshotMidway stops every scenario halfway, snapshots the matcher
// and its spill store, restores both into fresh ones and goes on: the
// output must be the uninterrupted run's.
func TestSnapshotMidway(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		sc := genScenario(seed, 80, seed%2 == 0)
		budget := int64(1 << 40)
		if seed%3 == 0 {
			budget = 2 << 10 // with spilled transactions in the snapshot
		}
		ref := newHarness(t, budget)
		ref.applyAll(sc.events)

		half := len(sc.events) / 2
		a := newHarness(t, budget)
		a.applyAll(sc.events[:half])
		var snap bytes.Buffer
		require.NoError(t, a.m.Snapshot(&snap))
		spilled := saveSpill(t, a.spill)

		b := newHarness(t, budget)
		b.out.rows = a.out.rows // what a emitted before the snapshot was flushed downstream
		for _, e := range spilled {
			require.NoError(t, b.spill.Put(e.startTs, e.key, e.value))
		}
		require.NoError(t, b.m.Restore(bytes.NewReader(snap.Bytes())))
		st, bst := a.m.Stats(), b.m.Stats()
		st.Emitted, st.Spills, st.Superseded, st.Reemitted = 0, 0, 0, 0 // counters, not state
		bst.Emitted, bst.Spills, bst.Superseded, bst.Reemitted = 0, 0, 0, 0
		require.Equal(t, st, bst, "seed %d: restored state", seed)
		require.Equal(t, a.used(), b.used())
		var again bytes.Buffer
		require.NoError(t, b.m.Snapshot(&again))
		require.Equal(t, snap.Bytes(), again.Bytes(), "seed %d: equal states encode equally", seed)

		b.applyAll(sc.events[half:])
		require.Equal(t, ref.out.ids(), b.out.ids(), "seed %d", seed)
		require.Equal(t, ref.m.MinPendingCommit(), b.m.MinPendingCommit())
		b.requireConsistent()
	}
}

func TestRestoreIntoUsedMatcher(t *testing.T) {
	h := newUnlimited(t)
	var snap bytes.Buffer
	require.NoError(t, h.m.Snapshot(&snap))
	h.rollback("k", 1)
	require.Error(t, h.m.Restore(bytes.NewReader(snap.Bytes())))
}

// validSnapshot has a bit of every section: prewrites with and without a
// generation, and correction index entries of generations, with and without
// the commit's op.
func validSnapshot(t testing.TB) []byte {
	out := &sink{}
	m := New(sortbuf.NewMemory().Buffer(1).Spill(), NewBudget(1<<40), out.emit)
	require.NoError(t, m.Prewrite([]byte("a"), sortbuf.OpPut, []byte("v"), []byte("o"), 10, 0))
	require.NoError(t, m.Prewrite([]byte("b"), sortbuf.OpDelete, nil, nil, 10, 0))
	require.NoError(t, m.Prewrite([]byte(""), sortbuf.OpPut, []byte("e"), nil, 11, 300))
	require.NoError(t, m.Commit([]byte("c"), sortbuf.OpPut, 12, 20))
	require.NoError(t, m.Commit([]byte("d"), 0, 12, 21))
	require.NoError(t, m.Rollback([]byte("e"), 13))
	require.NoError(t, m.DropCommit([]byte("h"), 17, 40))
	require.NoError(t, m.Prewrite([]byte("f"), sortbuf.OpPut, []byte("f1"), nil, 15, 1))
	require.NoError(t, m.Commit([]byte("f"), 0, 15, 30))
	require.NoError(t, m.Commit([]byte("g"), sortbuf.OpDelete, 16, 31))
	require.NoError(t, m.Prewrite([]byte("g"), sortbuf.OpPut, []byte("g2"), nil, 16, 2))
	require.Equal(t, 2, m.Stats().Corrections)
	m.spilled[14] = &spilledTxn{keys: 3}
	var buf bytes.Buffer
	require.NoError(t, m.Snapshot(&buf))
	return buf.Bytes()
}

func TestRestoreRejectsDamage(t *testing.T) {
	good := validSnapshot(t)
	restore := func(b []byte) error {
		return New(sortbuf.NewMemory().Buffer(1).Spill(), NewBudget(1<<40), (&sink{}).emit).Restore(bytes.NewReader(b))
	}
	require.NoError(t, restore(good))
	for n := 0; n < len(good); n++ {
		require.ErrorIs(t, restore(good[:n]), ErrCorruptSnapshot, "truncated to %d", n)
	}
	for i := 0; i < len(good); i++ {
		for _, bit := range []byte{1, 0x80} {
			b := bytes.Clone(good)
			b[i] ^= bit
			require.ErrorIs(t, restore(b), ErrCorruptSnapshot, "byte %d bit %x", i, bit)
		}
	}
}

// withCRC appends the checksum, so tests and the fuzzer reach the parser
// behind it.
func withCRC(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
}

// snapshotBody is a checksummed snapshot of the given version and sections.
func snapshotBody(version byte, parts ...[]byte) []byte {
	b := append([]byte(snapshotMagic), version)
	for _, p := range parts {
		b = append(b, p...)
	}
	return withCRC(b)
}

func TestRestoreRejectsForgedContent(t *testing.T) {
	body := func(parts ...[]byte) []byte { return snapshotBody(1, parts...) }
	body2 := func(parts ...[]byte) []byte { return snapshotBody(2, parts...) }
	body3 := func(parts ...[]byte) []byte { return snapshotBody(3, parts...) }
	none := []byte{0}
	cases := map[string][]byte{
		"version":          withCRC(append([]byte(snapshotMagic), 9, 0, 0, 0, 0)),
		"huge txn count":   body([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}),
		"txn without rows": body([]byte{1, 10, 0}, none, none, none),
		"bad op":           body([]byte{1, 10, 1, 7, 1, 'k', 0, 0}, none, none, none),
		"key twice":        body([]byte{1, 10, 2, 1, 1, 'k', 0, 0, 1, 1, 'k', 0, 0}, none, none, none),
		"key too long":     body([]byte{1, 10, 1, 1, 100, 'k', 0, 0}, none, none, none),
		"spilled zero":     body(none, []byte{1, 10, 0}, none, none),
		"commit ts zero":   body(none, none, []byte{1, 1, 'k', 10, 0, 1}, none),
		"commit bad op":    body(none, none, []byte{1, 1, 'k', 10, 20, 9}, none),
		"rollback twice":   body(none, none, none, []byte{2, 1, 'k', 10, 1, 'k', 10}),
		"trailing bytes":   body(none, none, none, none, []byte{0}),

		"v2 without corrections":        body2(none, none, none, none),
		"v2 trailing bytes":             body2(none, none, none, none, none, []byte{0}),
		"v2 row without generation":     body2([]byte{1, 10, 1, 1}),
		"v2 bad generation":             body2([]byte{1, 10, 1, 1, 0x80}),
		"v2 key twice":                  body2([]byte{1, 10, 2, 1, 5, 1, 'k', 0, 0, 1, 6, 1, 'k', 0, 0}, none, none, none, none),
		"correction commit ts zero":     body2(none, none, none, none, []byte{1, 1, 'k', 10, 0, 1, 1, 0}),
		"correction of an ordinary row": body2(none, none, none, none, []byte{1, 1, 'k', 10, 20, 0, 1, 0}),
		"correction content 2":          body2(none, none, none, none, []byte{1, 1, 'k', 10, 20, 1, 2, 0}),
		"correction bad op":             body2(none, none, none, none, []byte{1, 1, 'k', 10, 20, 1, 1, 9}),
		"correction twice":              body2(none, none, none, none, []byte{2, 1, 'k', 10, 20, 1, 1, 0, 1, 'k', 10, 21, 1, 1, 0}),
		"correction count beyond input": body2(none, none, none, none, []byte{9, 1, 'k', 10, 20, 1, 1, 0}),
		"correction truncated":          body2(none, none, none, none, []byte{1, 1, 'k', 10, 20, 1}),

		"v3 rollback without commit ts": body3(none, none, none, []byte{1, 1, 'k', 10}, none),
		"v3 rollback twice":             body3(none, none, none, []byte{2, 1, 'k', 10, 0, 1, 'k', 10, 20}, none),
		"v3 commit ts runs off the end": body3(none, none, none, []byte{1, 1, 'k', 10, 0x80}),
		"v4":                            snapshotBody(4, none, none, none, none, none),
	}
	for name, b := range cases {
		m := New(sortbuf.NewMemory().Buffer(1).Spill(), NewBudget(1<<40), (&sink{}).emit)
		require.ErrorIs(t, m.Restore(bytes.NewReader(b)), ErrCorruptSnapshot, name)
		require.Equal(t, Stats{}, m.Stats(), "%s: a failed restore leaves the matcher empty", name)
	}
	require.NoError(t, New(nil, NewBudget(1), nil).Restore(bytes.NewReader(body(none, none, none, none))))
	require.NoError(t, New(nil, NewBudget(1), nil).Restore(bytes.NewReader(body2(none, none, none, none, none))))
	require.NoError(t, New(nil, NewBudget(1), nil).Restore(bytes.NewReader(body3(none, none, none, none, none))))
}

// v1Snapshot is a version 1 snapshot (before generations and the correction
// index): a prewrite of a at 10, a spilled transaction 14 of one key, a
// commit of c waiting at 12/20 and a rollback of e waiting at 13.
func v1Snapshot() []byte {
	return snapshotBody(1,
		[]byte{1, 10, 1, byte(sortbuf.OpPut), 1, 'a', 1, 'v', 1, 'o'},
		[]byte{1, 14, 1},
		[]byte{1, 1, 'c', 12, 20, 0},
		[]byte{1, 1, 'e', 13})
}

// A version 1 snapshot and version 1 spilled values still restore: their
// prewrites are generation 0 (so a generation 1 prewrite outranks them) and
// the correction index is empty. The state is written back as version 2.
func TestRestoreVersion1(t *testing.T) {
	for _, budget := range []int64{1 << 40, 1} {
		h := newHarness(t, budget)
		// The spilled prewrite of transaction 14, in the version 1 layout.
		require.NoError(t, h.spill.Put(14, []byte("s"), []byte{spillV1, byte(sortbuf.OpPut), 2, 'x', 'y', 'o'}))
		require.NoError(t, h.m.Restore(bytes.NewReader(v1Snapshot())))
		st := h.m.Stats()
		st.Bytes = 0
		require.Equal(t, Stats{Txns: 1, Prewrites: 1, SpilledTxns: 1, SpilledPrewrites: 1, PendingCommits: 1, PendingRollbacks: 1}, st)
		h.requireConsistent()

		var again bytes.Buffer
		require.NoError(t, h.m.Snapshot(&again))
		require.Equal(t, byte(snapshotVersion), again.Bytes()[len(snapshotMagic)])

		require.NoError(t, h.m.Prewrite([]byte("a"), sortbuf.OpPut, []byte("gen1"), nil, 10, 1))
		require.NoError(t, h.m.Prewrite([]byte("s"), sortbuf.OpPut, []byte("gen1"), nil, 14, 1))
		require.NoError(t, h.m.Prewrite([]byte("t"), sortbuf.OpPut, []byte("t"), nil, 14, 0))
		h.commit("a", 10, 30)
		h.commit("s", 14, 31)
		require.NoError(t, h.m.Prewrite([]byte("c"), sortbuf.OpPut, []byte("c"), nil, 12, 0))
		require.Equal(t, []string{"30/10/a=gen1", "31/14/s=gen1", "20/12/c=c"}, h.out.ids(), "budget %d", budget)
	}
}

func TestSpillValueVersions(t *testing.T) {
	var r sortbuf.Row
	gen, err := decodeSpillValue(appendSpillValue(nil, sortbuf.OpDelete, 1<<40, []byte("v"), []byte("old")), &r)
	require.NoError(t, err)
	require.Equal(t, uint64(1<<40), gen)
	require.Equal(t, sortbuf.Row{Op: sortbuf.OpDelete, Value: []byte("v"), OldValue: []byte("old")}, r)
	gen, err = decodeSpillValue([]byte{spillV1, byte(sortbuf.OpPut), 1, 'v', 'o'}, &r)
	require.NoError(t, err)
	require.Zero(t, gen)
	require.Equal(t, sortbuf.Row{Op: sortbuf.OpPut, Value: []byte("v"), OldValue: []byte("o")}, r)
	for _, bad := range [][]byte{
		nil, {spillV2, 1}, {3, 1, 0, 0}, {spillV2, 9, 0, 0},
		{spillV2, 1, 0x80, 0x80}, // generation varint runs off the end
		{spillV2, 1, 0, 5, 'v'},  // value longer than the rest
		{spillV1, 1, 0x80},
	} {
		_, err := decodeSpillValue(bad, &r)
		require.ErrorIs(t, err, errCorruptSpill, "%x", bad)
	}
}

// FuzzRestore feeds arbitrary bodies (checksummed, so the parser is
// reached): Restore must never panic, and whatever it accepts must encode
// back to the same bytes.
func FuzzRestore(f *testing.F) {
	good := validSnapshot(f)
	f.Add(good[:len(good)-4])
	f.Add(append([]byte(snapshotMagic), snapshotVersion, 0, 0, 0, 0, 0))
	v1 := v1Snapshot()
	f.Add(v1[:len(v1)-4])
	f.Add(append([]byte(snapshotMagic), 1, 0, 0, 0, 0))
	v2 := v2Snapshot()
	f.Add(v2[:len(v2)-4])
	f.Fuzz(func(t *testing.T, body []byte) {
		in := withCRC(body)
		m := New(sortbuf.NewMemory().Buffer(1).Spill(), NewBudget(1<<40), (&sink{}).emit)
		if m.Restore(bytes.NewReader(in)) != nil {
			require.Equal(t, Stats{}, m.Stats())
			return
		}
		var out bytes.Buffer
		require.NoError(t, m.Snapshot(&out))
		m2 := New(sortbuf.NewMemory().Buffer(1).Spill(), NewBudget(1<<40), (&sink{}).emit)
		require.NoError(t, m2.Restore(bytes.NewReader(out.Bytes())))
		var again bytes.Buffer
		require.NoError(t, m2.Snapshot(&again))
		require.Equal(t, out.Bytes(), again.Bytes())
	})
}
