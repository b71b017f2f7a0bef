package crypt

import (
	"bytes"
	"context"
	"testing"

	"github.com/tistream/tistream/libs/objstore"
)

// FuzzDecodeHeader: any bytes either decode to a header that encodes back
// to the same bytes, ask for more, or fail with ErrCorrupt; never a panic.
func FuzzDecodeHeader(f *testing.F) {
	h := &header{chunkSize: DefaultChunkSize, plainLen: 1000, ref: "local:a", wrapped: bytes.Repeat([]byte{7}, 65)}
	good := h.encode()
	f.Add(good)
	f.Add(good[:20])
	f.Add([]byte(Magic))
	f.Add([]byte("TSCD\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, need, err := decodeHeader(b)
		switch {
		case err != nil:
			if !isCorrupt(err) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
		case h == nil:
			if need <= len(b) || need > MaxHeaderLen {
				t.Fatalf("asked for %d bytes having %d", need, len(b))
			}
		default:
			raw := bytes.Clone(h.raw)
			if !bytes.Equal(h.encode(), raw) || need != len(raw) {
				t.Fatalf("header does not round-trip")
			}
			_ = h.objectLen()
		}
	})
}

// FuzzOpenObject: any stored bytes under an encrypted tenant's key read as
// an error or as data, whole and by range; never a panic.
func FuzzOpenObject(f *testing.F) {
	ctx := context.Background()
	local := &LocalKMS{dir: f.TempDir()}
	ref, err := CreateLocalKey(local.dir, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	inner := objstore.NewMemory()
	w, err := Wrap(inner, local, func(context.Context, uint64) (string, error) { return ref, nil },
		func(string) (uint64, bool) { return 1, true }, Options{ChunkSize: 32})
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []int{0, 31, 32, 100} {
		if err := w.Put(ctx, "seed", bytes.Repeat([]byte{'x'}, n)); err != nil {
			f.Fatal(err)
		}
		b, _ := inner.Get(ctx, "seed")
		f.Add(b, int64(3), int64(40))
	}
	f.Add([]byte("TSEN"), int64(0), int64(-1))
	f.Fuzz(func(t *testing.T, obj []byte, off, n int64) {
		if err := inner.Put(ctx, "obj", obj); err != nil {
			t.Fatal(err)
		}
		r, _ := Wrap(inner, local, w.keyFor, w.tenantOf, Options{ChunkSize: 32})
		_, _ = r.Get(ctx, "obj")
		_, _ = r.GetRange(ctx, "obj", off, n)
		_, _ = r.GetRange(ctx, "obj", off, n) // with the header cached
		// Into a buffer: what GetRange answers, fresh and cached.
		if off < 0 {
			off = -(off + 1)
		}
		size := int(n & 0xfff)
		for _, fresh := range []bool{true, false} {
			ra, rb := r, r // cached: r has read the object
			if fresh {
				ra, _ = Wrap(inner, local, w.keyFor, w.tenantOf, Options{ChunkSize: 32})
				rb, _ = Wrap(inner, local, w.keyFor, w.tenantOf, Options{ChunkSize: 32})
			}
			want, werr := ra.GetRange(ctx, "obj", off, int64(size))
			got, err := rb.GetRangeInto(ctx, "obj", off, make([]byte, size))
			if (err == nil) != (werr == nil) || !bytes.Equal(got, want) {
				t.Fatalf("off %d, %d bytes, fresh %v: GetRangeInto %q, %v; GetRange %q, %v", off, size, fresh, got, err, want, werr)
			}
		}
	})
}

func isCorrupt(err error) bool {
	return bytes.Contains([]byte(err.Error()), []byte(ErrCorrupt.Error()))
}
