package crypt_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/objstore"
)

// GetRangeInto answers every range GetRange does, in the buffer given,
// with the object's header cached and not, for an encrypted object whose
// chunks the ranges start and end inside of, on chunk boundaries and across
// many chunks, and for a plaintext one; nothing past the bytes read is
// written.
func TestGetRangeInto(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const size = 1000
	data := pattern(size)
	w := f.store(t, 64)
	enc := "committed_data_pool/tenant-1/range-1/data/x"
	plain := "committed_data_pool/tenant-3/range-1/data/x" // tenant 3 has no key
	require.NoError(t, w.Put(ctx, enc, data))
	require.NoError(t, w.Put(ctx, plain, data))
	stored, err := f.inner.Get(ctx, enc)
	require.NoError(t, err)
	require.NotContains(t, string(stored), string(data[100:200]), "the object is encrypted")
	cases := [][2]int{{0, 1000}, {0, 1}, {63, 2}, {64, 64}, {64, 65}, {100, 500}, {999, 1}, {999, 5},
		{1000, 3}, {5, 0}, {0, 2000}, {500, 500}, {1, 998}}
	for _, key := range []string{enc, plain} {
		for _, c := range cases {
			off, n := int64(c[0]), c[1]
			want := expected(data, off, int64(n))
			for _, cached := range []bool{false, true} {
				r := w
				if !cached {
					r = f.store(t, 64)
				}
				buf := bytes.Repeat([]byte{0xee}, n+8)
				got, err := r.GetRangeInto(ctx, key, off, buf[:n])
				require.NoError(t, err, "%s off %d n %d cached %v", key, off, n, cached)
				require.Equal(t, want, got, "%s off %d n %d cached %v", key, off, n, cached)
				if len(got) > 0 {
					require.Same(t, &buf[0], &got[0], "read into the buffer given")
				}
				require.Equal(t, bytes.Repeat([]byte{0xee}, n+8-len(got)), buf[len(got):], "bytes past the range untouched")
			}
		}
		for _, off := range []int64{1001, 1 << 40} {
			_, err := f.store(t, 64).GetRangeInto(ctx, key, off, make([]byte, 1))
			require.ErrorIs(t, err, objstore.ErrInvalidRange)
			_, err = w.GetRangeInto(ctx, key, off, make([]byte, 1))
			require.ErrorIs(t, err, objstore.ErrInvalidRange)
		}
		_, err := w.GetRangeInto(ctx, key, -3, make([]byte, 3))
		require.ErrorIs(t, err, objstore.ErrInvalidRange, "a suffix read")
	}

	// The buffers the ciphertext is read into are recycled: a read of a
	// 256 KiB section allocates a small fraction of that (each chunk's
	// nonce and additional data, passed to the cipher), not the section.
	big := pattern(256 << 10)
	w = f.store(t, 0)
	require.NoError(t, w.Put(ctx, enc, big))
	buf := make([]byte, 200<<10)
	var before, after runtime.MemStats
	const reads = 20
	runtime.ReadMemStats(&before)
	for range reads {
		if _, err := w.GetRangeInto(ctx, enc, 10_000, buf); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	require.Equal(t, big[10_000:10_000+len(buf)], buf)
	perRead := (after.TotalAlloc - before.TotalAlloc) / reads
	t.Logf("%d bytes allocated per read of %d bytes", perRead, len(buf))
	require.Less(t, perRead, uint64(len(buf)/8), "bytes allocated per ranged read of %d bytes into a buffer", len(buf))
}

// A chunk whose ciphertext was changed fails the read into a buffer as it
// fails GetRange: ErrAuth, naming the object.
func TestGetRangeIntoTampered(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	w := f.store(t, 64)
	key := "committed_data_pool/tenant-1/range-1/data/x"
	require.NoError(t, w.Put(ctx, key, pattern(1000)))
	stored, err := f.inner.Get(ctx, key)
	require.NoError(t, err)
	bad := bytes.Clone(stored)
	bad[len(bad)-300] ^= 1 // inside a chunk near the end
	require.NoError(t, f.inner.Put(ctx, key, bad))
	for _, cached := range []bool{true, false} {
		r := w
		if !cached {
			r = f.store(t, 64)
		}
		_, err = r.GetRangeInto(ctx, key, 0, make([]byte, 1000))
		require.ErrorIs(t, err, crypt.ErrAuth, "cached %v", cached)
		require.ErrorContains(t, err, key)
		_, err = r.GetRange(ctx, key, 0, 1000)
		require.ErrorIs(t, err, crypt.ErrAuth, "cached %v", cached)
	}
	// A range not touching the changed chunk still reads.
	got, err := f.store(t, 64).GetRangeInto(ctx, key, 0, make([]byte, 64))
	require.NoError(t, err)
	require.Equal(t, pattern(64), got)
}

// Readers and writers at once share the store's recycled ciphertext
// buffers: every read returns its object's bytes, whichever buffers the
// others hold (run with -race too).
func TestRecycledBuffersConcurrently(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	w := f.store(t, 1<<10)
	const objects = 4
	data := make([][]byte, objects)
	key := func(i int) string { return fmt.Sprintf("committed_data_pool/tenant-1/range-%d/data/x", i) }
	for i := range data {
		data[i] = bytes.Repeat([]byte{byte('a' + i)}, 20_000+i*7_000)
		require.NoError(t, w.Put(ctx, key(i), data[i]))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 40_000)
			for n := range 200 {
				i := (g + n) % objects
				if g%4 == 3 { // a writer: the same bytes again
					if err := w.Put(ctx, key(i), data[i]); err != nil {
						errs <- err
						return
					}
					continue
				}
				off := (n * 997) % len(data[i])
				got, err := w.GetRangeInto(ctx, key(i), int64(off), buf[:1+n*131%len(buf)])
				if err != nil {
					errs <- err
					return
				}
				if want := expected(data[i], int64(off), int64(1+n*131%len(buf))); !bytes.Equal(got, want) {
					errs <- fmt.Errorf("object %d at %d: %d bytes, not the object's", i, off, len(got))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
