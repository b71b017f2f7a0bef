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
		st.Emitted, st.Spills, bst.Emitted, bst.Spills = 0, 0, 0, 0
		require.Equal(t, st, bst, "seed %d: restored state", seed)
		require.Equal(t, a.budget.Used(), b.budget.Used())
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

// validSnapshot has a bit of every section.
func validSnapshot(t testing.TB) []byte {
	out := &sink{}
	m := New(sortbuf.NewMemory().Buffer(1).Spill(), NewBudget(1<<40), out.emit)
	require.NoError(t, m.Prewrite([]byte("a"), sortbuf.OpPut, []byte("v"), []byte("o"), 10))
	require.NoError(t, m.Prewrite([]byte("b"), sortbuf.OpDelete, nil, nil, 10))
	require.NoError(t, m.Prewrite([]byte(""), sortbuf.OpPut, []byte("e"), nil, 11))
	require.NoError(t, m.Commit([]byte("c"), sortbuf.OpPut, 12, 20))
	require.NoError(t, m.Commit([]byte("d"), 0, 12, 21))
	require.NoError(t, m.Rollback([]byte("e"), 13))
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

func TestRestoreRejectsForgedContent(t *testing.T) {
	hdr := append([]byte(snapshotMagic), snapshotVersion)
	body := func(parts ...[]byte) []byte {
		b := bytes.Clone(hdr)
		for _, p := range parts {
			b = append(b, p...)
		}
		return withCRC(b)
	}
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
	}
	for name, b := range cases {
		m := New(sortbuf.NewMemory().Buffer(1).Spill(), NewBudget(1<<40), (&sink{}).emit)
		require.ErrorIs(t, m.Restore(bytes.NewReader(b)), ErrCorruptSnapshot, name)
		require.Equal(t, Stats{}, m.Stats(), "%s: a failed restore leaves the matcher empty", name)
	}
	require.NoError(t, New(nil, NewBudget(1), nil).Restore(bytes.NewReader(body(none, none, none, none))))
}

// FuzzRestore feeds arbitrary bodies (checksummed, so the parser is
// reached): Restore must never panic, and whatever it accepts must encode
// back to the same bytes.
func FuzzRestore(f *testing.F) {
	good := validSnapshot(f)
	f.Add(good[:len(good)-4])
	f.Add(append([]byte(snapshotMagic), snapshotVersion, 0, 0, 0, 0))
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
