package watermark

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// randomState returns a map fed a random prefix of a random delivery, with
// the history and what is left to deliver.
func randomState(rng *rand.Rand) (*Map, *history, []int, []int) {
	h := genHistory(rng, 2+rng.IntN(3), 8+rng.IntN(24), 10+rng.IntN(90))
	span := randomSpan(rng, h)
	m, err := New(k(span.start), k(span.end))
	if err != nil {
		panic(err) // randomSpan never returns an empty span
	}
	order := interleave(rng, h)
	delivered := make([]int, len(h.streams))
	cut := rng.IntN(len(order) + 1)
	for _, s := range order[:cut] {
		h.streams[s][delivered[s]].apply(m)
		delivered[s]++
	}
	return m, h, delivered, order[cut:]
}

// TestEncodeDecodeRoundTrip: a decoded map equals the original, encodes to
// the same bytes, and behaves identically for the rest of the input.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for range 300 {
		m, h, delivered, rest := randomState(rng)
		b, err := m.MarshalBinary()
		require.NoError(t, err)
		d, err := Decode(b)
		require.NoError(t, err)
		checkInvariants(t, d)
		require.Equal(t, fingerprint(m), fingerprint(d))
		require.Equal(t, m.Stats(), d.Stats())
		again, err := d.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, b, again)
		for _, s := range rest {
			e := h.streams[s][delivered[s]]
			delivered[s]++
			e.apply(m)
			e.apply(d)
			require.Equal(t, fingerprint(m), fingerprint(d), "after %v", e)
		}
		require.Equal(t, m.Stats(), d.Stats())
	}
}

func TestUnmarshalBinary(t *testing.T) {
	m, _, _, _ := randomState(rand.New(rand.NewPCG(1, 1)))
	b, err := m.MarshalBinary()
	require.NoError(t, err)
	var d Map
	require.NoError(t, d.UnmarshalBinary(b))
	require.Equal(t, fingerprint(m), fingerprint(&d))

	before := fingerprint(&d)
	require.ErrorIs(t, d.UnmarshalBinary(b[:len(b)-1]), ErrCorrupt)
	require.Equal(t, before, fingerprint(&d), "a failed decode leaves the map as it was")
}

// TestDecodeRejectsCorruption: every truncation and every single-bit flip
// is an error, never a panic (the checksum catches flips; resealing the
// checksum still gives an error or a valid map).
func TestDecodeRejectsCorruption(t *testing.T) {
	m, _, _, _ := randomState(rand.New(rand.NewPCG(2, 3)))
	b, err := m.MarshalBinary()
	require.NoError(t, err)
	for n := range len(b) {
		_, err := Decode(b[:n])
		require.ErrorIs(t, err, ErrCorrupt, "truncated to %d", n)
	}
	for i := range len(b) * 8 {
		c := append([]byte(nil), b...)
		c[i/8] ^= 1 << (i % 8)
		_, err := Decode(c)
		require.ErrorIs(t, err, ErrCorrupt, "bit %d", i)
		require.NotPanics(t, func() { decodeResealed(t, c[:len(c)-4]) })
	}
}

// TestDecodeRejectsInconsistentState: well-formed bytes describing a state
// that breaks an invariant are rejected.
func TestDecodeRejectsInconsistentState(t *testing.T) {
	x := Ref{RegionID: 1, Version: 2, Term: 3}
	good := func() *snapshot {
		return &snapshot{start: "a", end: "z",
			incs:    []incState{{ref: x, start: "b", end: "y"}},
			entries: []entryState{{start: "a", owner: -1}, {start: "b", owner: 0}, {start: "y", owner: -1}}}
	}
	_, err := Decode(good().encode())
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		corrupt func(s *snapshot)
	}{
		{"empty span", func(s *snapshot) { s.end = "a" }},
		{"region id 0", func(s *snapshot) { s.incs[0].ref.RegionID = 0 }},
		{"incarnation twice", func(s *snapshot) { s.incs = append(s.incs, s.incs[0]) }},
		{"incarnation outside the span", func(s *snapshot) { s.incs[0].end = "" }},
		{"ready but an older owner holds its keys", func(s *snapshot) { s.entries[1].owner = -1 }},
		{"pending owning keys it is not ready at", func(s *snapshot) { s.incs[0].pending = true }},
		{"newer predecessor", func(s *snapshot) {
			s.incs[0].pending = true
			s.incs[0].waiting = []Ref{{RegionID: 7, Version: 9}}
		}},
		{"covered outside the range", func(s *snapshot) {
			s.incs[0].pending = true
			s.incs[0].covered = []keyRange{{"a", "c"}}
		}},
		{"no entries", func(s *snapshot) { s.entries = nil }},
		{"first entry after the span start", func(s *snapshot) { s.entries[0].start = "b" }},
		{"entries out of order", func(s *snapshot) { s.entries[2].start = "b" }},
		{"entry beyond the span", func(s *snapshot) { s.entries[2].start = "zz" }},
		{"owner out of range", func(s *snapshot) { s.entries[1].owner = 1 }},
		{"hole with a ts", func(s *snapshot) { s.entries[0].base = 5 }},
		{"entry outside its owner", func(s *snapshot) { s.entries[0].owner = 0 }},
	} {
		s := good()
		tc.corrupt(s)
		_, err := Decode(s.encode())
		require.ErrorIs(t, err, ErrCorrupt, tc.name)
	}
}

// decodeResealed decodes body with a correct checksum appended, to reach the
// structural checks behind the checksum. A map it accepts must be sound.
func decodeResealed(t testing.TB, body []byte) {
	b := binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, castagnoli))
	d, err := Decode(b)
	if err != nil {
		return
	}
	if err := invariants(d); err != nil {
		t.Fatalf("decoded an unsound map: %v", err)
	}
	again, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(again); err != nil {
		t.Fatalf("re-encoding a decoded map: %v", err)
	}
	// A decoded map must take any input without panicking.
	rng := rand.New(rand.NewPCG(uint64(len(body)), 1))
	for range 50 {
		randomOp(rng, d)
	}
	if err := invariants(d); err != nil {
		t.Fatalf("after input: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(4, 4))
	for range 20 {
		m, _, _, _ := randomState(rng)
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte("TSWM\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := Decode(b); err == nil {
			if err := invariants(d); err != nil {
				t.Fatal(err)
			}
		}
		// Most mutations break the checksum; reseal them so the fuzzer
		// explores the structure behind it too.
		if len(b) >= 4 {
			decodeResealed(t, b[:len(b)-4])
		}
	})
}

// FuzzOps feeds a map arbitrary records: no panic, invariants hold.
func FuzzOps(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := mustNew(t, "b", "y")
		for len(b) >= 8 {
			seed := binary.LittleEndian.Uint64(b)
			b = b[8:]
			randomOp(rand.New(rand.NewPCG(seed, 0)), m)
		}
		if err := invariants(m); err != nil {
			t.Fatal(err)
		}
	})
}
