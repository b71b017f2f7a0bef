package container

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func buildFile(t testing.TB, codec Codec, blockSize int, recs [][]byte) []byte {
	t.Helper()
	w := NewWriter(KindStoreChange, Options{Codec: codec, BlockSize: blockSize, Index: true})
	for _, r := range recs {
		require.NoError(t, w.Append(r))
	}
	b, err := w.Finish()
	require.NoError(t, err)
	return b
}

func readAll(name string, b []byte) ([][]byte, error) {
	r, err := Open(name, b, KindStoreChange)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, bytes.Clone(rec))
	}
}

func sampleRecords(n int, compressible bool) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	recs := make([][]byte, n)
	for i := range recs {
		r := make([]byte, rng.IntN(300))
		for j := range r {
			if compressible {
				r[j] = byte('a' + j%3)
			} else {
				r[j] = byte(rng.Uint32())
			}
		}
		recs[i] = r
	}
	return recs
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name         string
		codec        Codec
		blockSize    int
		compressible bool
		n            int
	}{
		{"none-one-block", CodecNone, 0, false, 10},
		{"none-many-blocks", CodecNone, 512, false, 500},
		{"zstd-compressible", CodecZstd, 1024, true, 500},
		{"zstd-incompressible-falls-back", CodecZstd, 1024, false, 200},
		{"single-empty-record", CodecZstd, 0, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := sampleRecords(tc.n, tc.compressible)
			if tc.n == 1 {
				recs[0] = nil
			}
			b := buildFile(t, tc.codec, tc.blockSize, recs)
			got, err := readAll("obj", b)
			require.NoError(t, err)
			require.Len(t, got, len(recs))
			for i := range recs {
				require.True(t, bytes.Equal(recs[i], got[i]), "record %d", i)
			}
		})
	}
}

func TestCompressionShrinksCompressibleData(t *testing.T) {
	recs := sampleRecords(1000, true)
	plain := buildFile(t, CodecNone, 0, recs)
	packed := buildFile(t, CodecZstd, 0, recs)
	require.Less(t, len(packed)*4, len(plain), "zstd should shrink repetitive records at least 4x")
}

func TestBlockIndex(t *testing.T) {
	recs := sampleRecords(300, false)
	b := buildFile(t, CodecZstd, 2048, recs)
	r, err := Open("obj", b, KindStoreChange)
	require.NoError(t, err)
	idx := r.Trailer().Blocks
	require.Greater(t, len(idx), 5)
	var total uint64
	for i, e := range idx {
		require.Equal(t, total, e.FirstRecord, "block %d", i)
		total += e.RecordCount
		require.Less(t, e.Offset+e.Length, uint64(len(b)))
	}
	require.Equal(t, uint64(len(recs)), total)
}

// Every truncation of a valid file must be reported as corrupt, never panic
// and never read as a shorter valid file.
func TestEveryTruncationIsCorrupt(t *testing.T) {
	b := buildFile(t, CodecZstd, 256, sampleRecords(40, true))
	for n := 0; n < len(b); n++ {
		_, err := readAll("obj", b[:n])
		require.Error(t, err, "truncated to %d bytes", n)
		require.True(t, errors.Is(err, ErrCorrupt), "truncated to %d: %v", n, err)
	}
}

// Flipping any single bit must be caught (CRC32C covers headers and payloads,
// the tail covers the trailer offset).
func TestEveryBitFlipIsCaught(t *testing.T) {
	b := buildFile(t, CodecZstd, 256, sampleRecords(12, true))
	for i := 0; i < len(b); i++ {
		for bit := 0; bit < 8; bit++ {
			c := bytes.Clone(b)
			c[i] ^= 1 << bit
			_, err := readAll("obj", c)
			require.Error(t, err, "flip byte %d bit %d", i, bit)
			require.True(t, errors.Is(err, ErrCorrupt), "flip byte %d bit %d: %v", i, bit, err)
		}
	}
}

func TestErrorsNameObjectAndOffset(t *testing.T) {
	b := buildFile(t, CodecNone, 0, sampleRecords(3, false))
	b[preambleLen+blockHeaderLen+1] ^= 0xff // inside the first block's payload
	_, err := readAll("data_change_buffer/cluster-1/tenant-2/store-3/x", b)
	var ce *CorruptError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "data_change_buffer/cluster-1/tenant-2/store-3/x", ce.Object)
	require.Equal(t, int64(preambleLen), ce.Offset)
	require.Contains(t, err.Error(), "checksum")
}

func TestWrongKindAndVersion(t *testing.T) {
	b := buildFile(t, CodecNone, 0, sampleRecords(2, false))
	_, err := Open("obj", b, KindCommittedData)
	require.ErrorContains(t, err, `magic "TSSC", want "TSCD"`)

	c := bytes.Clone(b)
	c[4] = 9
	_, err = Open("obj", c, KindStoreChange)
	require.ErrorContains(t, err, "format version 9")
}

func TestWriterRejectsMisuse(t *testing.T) {
	w := NewWriter(KindManifest, Options{})
	_, err := w.Finish()
	require.Error(t, err, "a file without a header record")
	w = NewWriter(KindManifest, Options{})
	require.NoError(t, w.Append([]byte("h")))
	_, err = w.Finish()
	require.NoError(t, err)
	require.Error(t, w.Append([]byte("x")))
}

func FuzzOpen(f *testing.F) {
	f.Add(buildFile(f, CodecNone, 0, sampleRecords(3, false)))
	f.Add(buildFile(f, CodecZstd, 128, sampleRecords(20, true)))
	f.Add([]byte("TSSC\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := readAll("fuzz", b)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a CorruptError: %v", err)
			}
			return
		}
		// Whatever decodes must re-encode to records that decode the same.
		re := buildFile(t, CodecZstd, 0, recs)
		again, err := readAll("fuzz", re)
		if err != nil || len(again) != len(recs) {
			t.Fatalf("re-encoded file does not read back: %v", err)
		}
		for i := range recs {
			if !bytes.Equal(recs[i], again[i]) {
				t.Fatal(fmt.Sprintf("record %d differs after re-encoding", i))
			}
		}
	})
}
