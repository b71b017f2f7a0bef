package crypt_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
)

// wrappedVersion is the local key version named in a stored object's
// wrapped key (docs/formats/encryption.md: the header, then the local
// wrapped-key format).
func wrappedVersion(t *testing.T, raw []byte) uint32 {
	refLen := int(raw[36]) | int(raw[37])<<8
	w := raw[38+refLen+2:]
	require.Equal(t, byte(1), w[0])
	return uint32(w[1])<<24 | uint32(w[2])<<16 | uint32(w[3])<<8 | uint32(w[4])
}

// Rotation: a new key version (and, later, a new key) wraps the data keys
// of new objects once the writer's data key expires; objects under every
// earlier version or key stay readable.
func TestRotation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	w := f.store(t, 0)
	keys := []string{layout.ManifestKey(1, 1), layout.ManifestKey(1, 2), layout.ManifestKey(1, 3)}
	require.NoError(t, w.Put(ctx, keys[0], []byte("before rotation")))
	v, err := crypt.RotateLocalKey(f.dir, "a")
	require.NoError(t, err)
	require.Equal(t, uint32(2), v)
	f.clock.advance(testTTL)
	require.NoError(t, w.Put(ctx, keys[1], []byte("after rotation")))
	ref, err := crypt.CreateLocalKey(f.dir, "a2")
	require.NoError(t, err)
	f.keys.set(1, ref)
	require.NoError(t, w.Put(ctx, keys[2], []byte("under a new key")))

	raw0, _ := f.inner.Get(ctx, keys[0])
	raw1, _ := f.inner.Get(ctx, keys[1])
	require.Equal(t, uint32(1), wrappedVersion(t, raw0))
	require.Equal(t, uint32(2), wrappedVersion(t, raw1))
	raw2, _ := f.inner.Get(ctx, keys[2])
	require.Contains(t, string(raw2), "local:a2")
	r := f.store(t, 0)
	for i, want := range []string{"before rotation", "after rotation", "under a new key"} {
		got, err := r.Get(ctx, keys[i])
		require.NoError(t, err)
		require.Equal(t, want, string(got))
		got, err = f.store(t, 0).GetRange(ctx, keys[i], 6, 3)
		require.NoError(t, err)
		require.Equal(t, want[6:9], string(got))
	}
}

// Revocation: once tenant 1's key is disabled (and the cached data keys
// have expired), every read and write of tenant 1 fails with an error
// naming the tenant and the key, mapped to FAILED_PRECONDITION; tenant 2
// goes on. Enabling the key again restores tenant 1.
func TestRevocation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	w := f.store(t, 0)
	k1, k2 := layout.DataFileKey(1, 1, 5, 1), layout.DataFileKey(2, 1, 5, 1)
	require.NoError(t, w.Put(ctx, k1, secretObject()))
	require.NoError(t, w.Put(ctx, k2, secretObject()))

	require.NoError(t, crypt.SetLocalKeyDisabled(f.dir, "a", true))
	// Within KeyTTL the cached keys still serve (the documented bound).
	_, err := w.Get(ctx, k1)
	require.NoError(t, err)
	f.clock.advance(testTTL)

	check := func(err error) {
		t.Helper()
		require.ErrorIs(t, err, crypt.ErrKeyDisabled)
		require.ErrorContains(t, err, "tenant 1")
		require.ErrorContains(t, err, "local:a")
		st, ok := crypt.Status(err)
		require.True(t, ok)
		require.Equal(t, codes.FailedPrecondition, st.Code())
		require.Contains(t, st.Message(), "tenant 1")
		require.Contains(t, st.Message(), "local:a: key disabled")
		require.NotContains(t, st.Message(), f.dir, "no key file path to clients")
	}
	for name, r := range map[string]*crypt.Store{"same": w, "fresh": f.store(t, 0)} {
		t.Run(name, func(t *testing.T) {
			_, err := r.Get(ctx, k1)
			check(err)
			_, err = r.GetRange(ctx, k1, 10, 10)
			check(err)
			check(r.Put(ctx, layout.DataFileKey(1, 1, 6, 1), []byte("new")))
			// Tenant 2 is unaffected.
			got, err := r.Get(ctx, k2)
			require.NoError(t, err)
			require.Equal(t, secretObject(), got)
			require.NoError(t, r.Put(ctx, layout.DataFileKey(2, 1, 6, 1), []byte("new")))
		})
	}
	_, err = f.inner.Get(ctx, layout.DataFileKey(1, 1, 6, 1))
	require.ErrorIs(t, err, objstore.ErrNotFound, "a refused write wrote nothing")

	require.NoError(t, crypt.SetLocalKeyDisabled(f.dir, "a", false))
	got, err := w.Get(ctx, k1)
	require.NoError(t, err)
	require.Equal(t, secretObject(), got)
}

// Objects written before a tenant turned encryption on stay readable,
// whole and by range; keys no tenant owns (the data change buffer,
// anything outside the layout) are never encrypted.
func TestPlaintextPassThrough(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.keys.set(1, "")
	w := f.store(t, 64)
	old := layout.DataFileKey(1, 1, 1, 1)
	require.NoError(t, w.Put(ctx, old, secretObject()))
	f.keys.set(1, "local:a")
	fresh := layout.DataFileKey(1, 1, 2, 1)
	require.NoError(t, w.Put(ctx, fresh, secretObject()))
	buffer := layout.StoreFileKey(1, 1, 1, 1, 100)
	other := "not-tistream/x"
	require.NoError(t, w.Put(ctx, buffer, secretObject()))
	require.NoError(t, w.Put(ctx, other, secretObject()))

	for _, k := range []string{old, buffer, other} {
		raw, err := f.inner.Get(ctx, k)
		require.NoError(t, err)
		require.Equal(t, secretObject(), raw, "%s is stored as written", k)
	}
	raw, err := f.inner.Get(ctx, fresh)
	require.NoError(t, err)
	require.NotContains(t, string(raw), string(secret))
	all := secretObject()
	for _, k := range []string{old, fresh, buffer, other} {
		for _, r := range []*crypt.Store{w, f.store(t, 64), f.store(t, 64)} {
			got, err := r.Get(ctx, k)
			require.NoError(t, err)
			require.Equal(t, all, got)
		}
		for _, rg := range [][2]int64{{0, 10}, {300, 500}, {-20, 0}, {1000, -1}, {int64(len(all)), 1}} {
			for _, r := range []*crypt.Store{f.store(t, 64), w} {
				got, err := r.GetRange(ctx, k, rg[0], rg[1])
				require.NoError(t, err, "%s %v", k, rg)
				require.Equal(t, expected(all, rg[0], rg[1]), got, "%s %v", k, rg)
			}
		}
	}
}

// A ranged read costs one request once the header is known (after the
// wrapper wrote the object, or read it once), and one for a fresh read near
// the start; a fresh read far in costs two.
func TestGetRangeRequests(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	cnt := &counting{Store: f.inner}
	f.inner = cnt
	key := layout.GroupSegKey(1, "g1", 9, 1)
	data := pattern(1 << 20)
	w := f.store(t, 0)
	require.NoError(t, w.Put(ctx, key, data))
	reads := func(r *crypt.Store, off, n int64) int64 {
		before := cnt.gets.Load()
		got, err := r.GetRange(ctx, key, off, n)
		require.NoError(t, err)
		require.Equal(t, expected(data, off, n), got)
		return cnt.gets.Load() - before
	}
	require.Equal(t, int64(1), reads(w, 500_000, 4096), "header cached by Put")
	r := f.store(t, 0)
	require.Equal(t, int64(1), reads(r, 0, 4096), "near the start: the header and the range in one")
	require.Equal(t, int64(1), reads(r, 700_000, 4096))
	require.Equal(t, int64(1), reads(r, -100, 0))
	require.Equal(t, int64(2), reads(f.store(t, 0), 700_000, 4096), "far in: header, then range")
}

// A header cached by one process goes stale when another overwrites the
// object; the read notices (authentication, length) and reads again.
func TestStaleHeader(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a, b := f.store(t, 64), f.store(t, 64)
	key := layout.GroupPubKey(1, "g", 1)
	require.NoError(t, a.Put(ctx, key, pattern(1000)))
	got, err := a.GetRange(ctx, key, 100, 10)
	require.NoError(t, err)
	require.Equal(t, pattern(1000)[100:110], got)

	for i, next := range [][]byte{[]byte("shorter object now"), secretObject()} {
		require.NoError(t, b.Put(ctx, key, next))
		got, err = a.GetRange(ctx, key, 5, 8)
		require.NoError(t, err, "version %d", i)
		require.Equal(t, next[5:13], got)
	}
	// Overwritten in plaintext (tenant 1 turned encryption off).
	f.keys.set(1, "")
	require.NoError(t, b.Put(ctx, key, []byte("plain again")))
	got, err = a.GetRange(ctx, key, 6, -1)
	require.NoError(t, err)
	require.Equal(t, "again", string(got))
	// And deleted.
	require.NoError(t, b.Delete(ctx, key))
	_, err = a.GetRange(ctx, key, 0, 0)
	require.ErrorIs(t, err, objstore.ErrNotFound)
}

// WithTenantKEK names a tenant's key ahead of KeyFor (a registration
// writes before the tenant's record exists), for that tenant only.
func TestWithTenantKEK(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	w := f.store(t, 0)
	k3, k4 := layout.ManifestKey(3, 1), layout.ManifestKey(4, 1)
	cctx := crypt.WithTenantKEK(ctx, 3, "local:a")
	require.NoError(t, w.Put(cctx, k3, []byte("manifest of 3")))
	require.NoError(t, w.Put(cctx, k4, []byte("manifest of 4")))
	raw3, _ := f.inner.Get(ctx, k3)
	raw4, _ := f.inner.Get(ctx, k4)
	require.True(t, bytes.HasPrefix(raw3, []byte(crypt.Magic)))
	require.Equal(t, "manifest of 4", string(raw4), "tenant 4 has no key")
	got, err := f.store(t, 0).Get(ctx, k3)
	require.NoError(t, err)
	require.Equal(t, "manifest of 3", string(got))
}

// Metering records (usage/) are the operator's: never sealed.
func TestUsageRecordsPassThrough(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	key := layout.UsageRawKey(1, 0, "sorter-1", 1)
	require.NoError(t, f.store(t, 0).Put(ctx, key, []byte("usage")))
	raw, err := f.inner.Get(ctx, key)
	require.NoError(t, err)
	require.Equal(t, "usage", string(raw))
}
