package crypt_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
)

// secret is a plaintext value the tests look for in stored bytes.
var secret = []byte("customer-secret-value-0123456789")

func secretObject() []byte {
	return bytes.Repeat(append(bytes.Clone(secret), '|'), 40)
}

// Tenant 1's and tenant 2's objects are stored sealed under their own keys;
// moving tenant 1's object into tenant 2's folder, or naming tenant 2's key
// in its header, fails authentication rather than yielding garbage.
func TestTwoTenantsDifferentKeys(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	w := f.store(t, 64)
	k1 := layout.DataFileKey(1, 7, 100, 1)
	k2 := layout.DataFileKey(2, 7, 100, 1)
	require.NoError(t, w.Put(ctx, k1, secretObject()))
	require.NoError(t, w.Put(ctx, k2, secretObject()))
	for _, k := range []string{k1, k2} {
		raw, err := f.inner.Get(ctx, k)
		require.NoError(t, err)
		require.True(t, bytes.HasPrefix(raw, []byte(crypt.Magic)))
		require.False(t, bytes.Contains(raw, secret), "plaintext in the stored object %s", k)
		got, err := f.store(t, 64).Get(ctx, k)
		require.NoError(t, err)
		require.Equal(t, secretObject(), got)
	}
	raw1, err := f.inner.Get(ctx, k1)
	require.NoError(t, err)

	// Tenant 1's object copied into tenant 2's folder.
	moved := layout.DataFileKey(2, 7, 100, 2)
	require.NoError(t, f.inner.Put(ctx, moved, raw1))
	_, err = f.store(t, 64).Get(ctx, moved)
	require.ErrorIs(t, err, crypt.ErrAuth)
	require.ErrorContains(t, err, "tenant 2")
	_, err = f.store(t, 64).GetRange(ctx, moved, 10, 20)
	require.ErrorIs(t, err, crypt.ErrAuth)

	// Its header rewritten to name tenant 2's key: b cannot unwrap a's key.
	ref1, _ := f.keys.keyFor(ctx, 1)
	ref2, _ := f.keys.keyFor(ctx, 2)
	swapped := bytes.Replace(raw1, []byte(ref1), []byte(ref2), 1)
	require.NotEqual(t, raw1, swapped)
	require.NoError(t, f.inner.Put(ctx, k1, swapped))
	_, err = f.store(t, 64).Get(ctx, k1)
	require.ErrorIs(t, err, crypt.ErrAuth)
	require.ErrorContains(t, err, "local:b")
	st, ok := crypt.Status(err)
	require.True(t, ok)
	require.Equal(t, codes.DataLoss, st.Code())
}

// Flipped, reordered, truncated and extended chunks all fail, through a
// wrapper that cached the header at Put and through a fresh one; ranges
// that avoid a damaged chunk still read.
func TestTamperedChunks(t *testing.T) {
	ctx := context.Background()
	const chunk, size = 64, 1000 // 16 chunks, the last of 40 bytes
	data := pattern(size)
	key := layout.SorterSnapshotKey(1, 3, 1, 1)
	seal := func(t *testing.T, f *fixture) (*crypt.Store, []byte, int) {
		w := f.store(t, chunk)
		require.NoError(t, w.Put(ctx, key, data))
		raw, err := f.inner.Get(ctx, key)
		require.NoError(t, err)
		return w, raw, len(raw) - size - 16*16 // header length
	}
	chunkAt := func(hdr, i int) (int, int) { return hdr + i*(chunk+16), hdr + (i+1)*(chunk+16) }
	for _, c := range []struct {
		name   string
		damage func(raw []byte, hdr int) []byte
		spared [2]int64 // a range that still reads, or {0,0}
	}{
		{"flip", func(raw []byte, hdr int) []byte {
			lo, _ := chunkAt(hdr, 3)
			raw[lo+5] ^= 1
			return raw
		}, [2]int64{0, 3 * chunk}},
		{"flip tag", func(raw []byte, hdr int) []byte {
			_, hi := chunkAt(hdr, 3)
			raw[hi-1] ^= 0x80
			return raw
		}, [2]int64{4 * chunk, 100}},
		{"swap", func(raw []byte, hdr int) []byte {
			a0, a1 := chunkAt(hdr, 2)
			b0, b1 := chunkAt(hdr, 3)
			out := append(bytes.Clone(raw[:a0]), raw[b0:b1]...)
			out = append(out, raw[a0:a1]...)
			return append(out, raw[b1:]...)
		}, [2]int64{0, 2 * chunk}},
		{"truncate last chunk", func(raw []byte, _ int) []byte { return raw[:len(raw)-7] }, [2]int64{0, 100}},
		{"drop last chunk", func(raw []byte, _ int) []byte { return raw[:len(raw)-(40+16)] }, [2]int64{0, 100}},
		{"appended", func(raw []byte, _ int) []byte { return append(raw, 0) }, [2]int64{0, 100}},
		{"header flip", func(raw []byte, _ int) []byte { raw[12] ^= 1; return raw }, [2]int64{}},
		{"cut inside header", func(raw []byte, hdr int) []byte { return raw[:hdr-1] }, [2]int64{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			cached, raw, hdr := seal(t, f)
			require.NoError(t, f.inner.Put(ctx, key, c.damage(raw, hdr)))
			for name, r := range map[string]*crypt.Store{"cached": cached, "fresh": f.store(t, chunk)} {
				_, err := r.Get(ctx, key)
				require.Error(t, err, name)
				require.True(t, errorsIsAny(err, crypt.ErrAuth, crypt.ErrCorrupt), "%s: %v", name, err)
				// A ranged read reads only what it needs: it fails, or
				// (bytes appended, a header it does not reread) returns
				// the authentic data.
				got, err := r.GetRange(ctx, key, 0, -1)
				if err == nil {
					require.Equal(t, data, got, name)
				} else {
					require.True(t, errorsIsAny(err, crypt.ErrAuth, crypt.ErrCorrupt, objstore.ErrInvalidRange), "%s: %v", name, err)
				}
			}
			if c.spared != [2]int64{} {
				got, err := f.store(t, chunk).GetRange(ctx, key, c.spared[0], c.spared[1])
				require.NoError(t, err)
				require.Equal(t, data[c.spared[0]:c.spared[0]+c.spared[1]], got)
			}
		})
	}
}

func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
