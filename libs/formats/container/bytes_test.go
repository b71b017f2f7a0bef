package container

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// goldenFile builds a file mixing compressible and incompressible blocks,
// records of many sizes, a block index and an observer-free trailer.
func goldenFile(t testing.TB, opts Options) []byte {
	return bytes.Join(goldenParts(t, opts), nil)
}

// goldenParts is goldenFile as the parts FinishParts returns.
func goldenParts(t testing.TB, opts Options) [][]byte {
	rng := rand.New(rand.NewPCG(7, 11))
	recs := [][]byte{[]byte("header")}
	for i := 0; i < 3000; i++ {
		rec := make([]byte, rng.IntN(600))
		if (i/500)%2 == 0 {
			for j := range rec {
				rec[j] = byte(j % 7) // compressible
			}
		} else {
			for j := range rec {
				rec[j] = byte(rng.Uint32()) // incompressible
			}
		}
		recs = append(recs, rec)
	}
	return writeParts(t, KindCommittedData, opts, recs)
}

// writeParts writes recs as a file of kind, in 64 KiB zstd blocks with an
// index, and returns its parts.
func writeParts(t testing.TB, kind Kind, opts Options, recs [][]byte) [][]byte {
	opts.Codec, opts.BlockSize, opts.Index = CodecZstd, 64<<10, true
	w := NewWriter(kind, opts)
	for _, r := range recs {
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	parts, err := w.FinishParts()
	if err != nil {
		t.Fatal(err)
	}
	return parts
}

// goldenSHA256 is the hash of goldenFile under each zstd codec: the Go
// codec's was taken with the writer of commit 3902b10, which staged each
// block in a separate buffer; libzstd's (version 1.5.7, as go.sum pins
// DataDog/zstd) when it became the default. Only the compressed blocks'
// bytes differ between the two.
var goldenSHA256 = map[string]string{
	"go": "860ea9e4e87739fde14dbf1964c95c5efbaf4883cbd36c5957ad94a1c335397a",
	"c":  "eab5f88ccc8cdfab4f88d10d342c468c93c5eee8c4a1023b1b442972fcbea2bd",
}

// TestBytesUnchanged pins the writer's output: the bytes on disk of every
// kind built with this package must not change when the writer's internals
// do. A reused Buf gives the same bytes. It runs under every codec the
// build has.
func TestBytesUnchanged(t *testing.T) {
	for _, name := range Codecs() {
		t.Run(name, func(t *testing.T) {
			restore, err := UseCodec(name)
			if err != nil {
				t.Fatal(err)
			}
			defer restore()
			testBytesUnchanged(t, goldenSHA256[name])
		})
	}
}

func testBytesUnchanged(t *testing.T, want string) {
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	got := sum(goldenFile(t, Options{}))
	if got != want {
		t.Fatalf("file bytes changed: sha256 %s, want %s", got, want)
	}
	buf := make([]byte, 10, 1<<20)
	for i := range buf[:cap(buf)] {
		buf[:cap(buf)][i] = 0xAA
	}
	if got := sum(goldenFile(t, Options{Buf: buf})); got != want {
		t.Fatalf("file built in a reused buffer differs: sha256 %s, want %s", got, want)
	}
	// Built in parts (Options.More), with buffers just large enough or
	// larger and full of garbage: the same bytes, no part grown.
	for _, extra := range []int{0, 100 << 10} {
		var given []int
		more := func(min int) []byte {
			b := make([]byte, min+extra)
			for i := range b {
				b[i] = 0x55
			}
			given = append(given, cap(b))
			return b[:0]
		}
		parts := goldenParts(t, Options{Buf: make([]byte, 0, 4096), More: more})
		if len(parts) < 3 || len(parts) != len(given)+1 {
			t.Fatalf("extra %d: %d parts from %d buffers given", extra, len(parts), len(given))
		}
		for i, p := range parts[1:] {
			if cap(p) != given[i] {
				t.Fatalf("extra %d: part %d grew from %d to %d bytes", extra, i+1, given[i], cap(p))
			}
		}
		if got := sum(bytes.Join(parts, nil)); got != want {
			t.Fatalf("extra %d: file built in %d parts differs: sha256 %s, want %s", extra, len(parts), got, want)
		}
	}
	// AppendRecord writes the same bytes as Append.
	w := NewWriter(KindCommittedData, Options{Codec: CodecZstd})
	w2 := NewWriter(KindCommittedData, Options{Codec: CodecZstd})
	for i := 0; i < 2000; i++ {
		rec := fixedRecord(bytes.Repeat([]byte{byte(i)}, i%700))
		if err := w.Append(rec); err != nil {
			t.Fatal(err)
		}
		if err := w2.AppendRecord(rec); err != nil {
			t.Fatal(err)
		}
	}
	b1, err1 := w.Finish()
	b2, err2 := w2.Finish()
	if err1 != nil || err2 != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("AppendRecord and Append differ (errors %v, %v)", err1, err2)
	}
	w3 := NewWriter(KindCommittedData, Options{})
	if err := w3.AppendRecord(liar{}); err == nil {
		t.Fatal("a record encoding another size than it said was accepted")
	}
	if err := w3.Append([]byte("x")); err == nil {
		t.Fatal("the writer went on after a bad record")
	}
	r, err := Open("golden", goldenFile(t, Options{}), KindCommittedData)
	if err != nil {
		t.Fatal(err)
	}
	raw, packed := 0, 0
	for {
		if _, err := r.Next(); err != nil {
			break
		}
		if r.InPlace() {
			raw++
		} else {
			packed++
		}
	}
	if raw == 0 || packed == 0 {
		t.Fatalf("want records of both raw and compressed blocks, got %d raw, %d compressed", raw, packed)
	}
}

type fixedRecord []byte

func (r fixedRecord) RecordSize() int                { return len(r) }
func (r fixedRecord) AppendRecord(dst []byte) []byte { return append(dst, r...) }

type liar struct{}

func (liar) RecordSize() int                { return 3 }
func (liar) AppendRecord(dst []byte) []byte { return append(dst, 1, 2) }

// TestPartsLargeRecords: records larger than a block, each in a block of
// its own, come out the same in parts; a More that gives less than asked
// is not written past (the writer makes the buffer itself).
func TestPartsLargeRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	var recs [][]byte
	for _, n := range []int{10, 5000, 3 << 16, 20, 1 << 16, 70000, 1, 200 << 10} {
		r := make([]byte, n)
		for i := range r {
			r[i] = byte(rng.Uint32())
		}
		recs = append(recs, r)
	}
	build := func(opts Options) [][]byte { return writeParts(t, KindStoreChange, opts, recs) }
	one := build(Options{})
	if len(one) != 1 {
		t.Fatalf("without More: %d parts", len(one))
	}
	for name, more := range map[string]func(int) []byte{
		"exact": func(min int) []byte { return make([]byte, 0, min) },
		"short": func(min int) []byte { return make([]byte, 0, min-1) },
	} {
		parts := build(Options{Buf: make([]byte, 0, 64), More: more})
		if len(parts) < 4 {
			t.Fatalf("%s: %d parts", name, len(parts))
		}
		if !bytes.Equal(bytes.Join(parts, nil), one[0]) {
			t.Fatalf("%s: the file in parts differs from the one-buffer file", name)
		}
		got, err := readAll("parts", bytes.Join(parts, nil))
		if err != nil || len(got) != len(recs) {
			t.Fatalf("%s: read back %d records, err %v", name, len(got), err)
		}
		for i := range recs {
			if !bytes.Equal(got[i], recs[i]) {
				t.Fatalf("%s: record %d differs", name, i)
			}
		}
	}
}
