package crypt_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/formats/storefile"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// storeFile is a real store change file of tenant's store 1, seq 1, with
// enough rows to span several envelope chunks.
func storeFile(t *testing.T, tenant uint64) (string, []byte) {
	t.Helper()
	h := &formatv1.StoreFileHeader{ClusterId: 1, TenantId: tenant, StoreId: 1, Seq: 1, MaxTs: 1000}
	w, err := storefile.NewWriterOptions(h, container.Options{Codec: container.CodecNone, BlockSize: 512})
	require.NoError(t, err)
	for i := range 400 {
		ev := &cdcpb.ChangeDataEvent{ResolvedTs: &cdcpb.ResolvedTs{Regions: []uint64{uint64(i + 2)}, Ts: uint64(i + 1)}}
		require.NoError(t, w.AddEvent(ev))
	}
	b, err := w.Finish()
	require.NoError(t, err)
	require.Greater(t, len(b), 3*1024, "spans several of the tests' 1 KiB chunks")
	return layout.StoreFileKey(1, tenant, 1, 1, 1000), b
}

// TestBufferFilesSealedByTheUpstream: files an upstream sealed under its
// tenant's key (SealBuffer) are envelopes in the bucket; the fleet's buffer
// view (WrapBuffer) reads them whole and by range (storefile.ReadHeader's
// header probe, a range in the middle) as the plaintext; plaintext files of
// another tenant pass through; a write through the fleet's view is stored
// as given (never sealed); a key disabled later refuses the read naming
// the tenant.
func TestBufferFilesSealedByTheUpstream(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ref, _ := f.keys.keyFor(ctx, 1)
	opts := crypt.Options{ChunkSize: 1024, KeyTTL: testTTL, Now: f.clock.now}
	upstream, err := crypt.SealBuffer(f.inner, f.kms, ref, opts)
	require.NoError(t, err)
	_, err = crypt.SealBuffer(f.inner, f.kms, "nope", opts)
	require.ErrorIs(t, err, crypt.ErrBadRef)

	sealedKey, sealed := storeFile(t, 1)
	plainKey, plain := storeFile(t, 2)
	snapKey := layout.SchemaSnapshotKey(1, 1, 500)
	require.NoError(t, upstream.PutIfAbsent(ctx, sealedKey, sealed))
	require.NoError(t, upstream.Put(ctx, snapKey, []byte("a schema snapshot")))
	require.NoError(t, f.inner.Put(ctx, plainKey, plain))
	for _, k := range []string{sealedKey, snapKey} {
		raw, err := f.inner.Get(ctx, k)
		require.NoError(t, err)
		require.Equal(t, crypt.Magic, string(raw[:4]), "%s is stored sealed", k)
		require.False(t, bytes.Contains(raw, sealed[:16]), "no container preamble in the stored bytes")
	}

	for _, cold := range []bool{true, false} {
		// A new view has nothing cached (cold), as a dispatcher that did
		// not write the file.
		counted := &counting{Store: f.inner}
		view, err := crypt.WrapBuffer(counted, f.kms, opts)
		require.NoError(t, err)
		if !cold {
			_, err = view.Get(ctx, sealedKey)
			require.NoError(t, err)
		}
		h, err := storefile.ReadHeader(ctx, view, sealedKey)
		require.NoError(t, err, "cold %v", cold)
		require.Equal(t, uint64(1), h.TenantId)
		got, err := view.Get(ctx, sealedKey)
		require.NoError(t, err)
		require.Equal(t, sealed, got)
		mid, err := view.GetRange(ctx, sealedKey, 1500, 700)
		require.NoError(t, err)
		require.Equal(t, sealed[1500:2200], mid)
		snap, err := view.Get(ctx, snapKey)
		require.NoError(t, err)
		require.Equal(t, "a schema snapshot", string(snap))

		h2, err := storefile.ReadHeader(ctx, view, plainKey)
		require.NoError(t, err)
		require.Equal(t, uint64(2), h2.TenantId)
		got, err = view.Get(ctx, plainKey)
		require.NoError(t, err)
		require.Equal(t, plain, got)
	}

	// The fleet never seals a buffer file, whatever the tenant's key.
	view, err := crypt.WrapBuffer(f.inner, f.kms, opts)
	require.NoError(t, err)
	k3 := layout.StoreFileKey(1, 1, 1, 2, 2000)
	require.NoError(t, view.Put(ctx, k3, plain))
	raw, err := f.inner.Get(ctx, k3)
	require.NoError(t, err)
	require.Equal(t, plain, raw)
	// Keys outside the buffer are not opened by the buffer view.
	poolKey := layout.ManifestKey(1, 1)
	require.NoError(t, upstream.Put(ctx, poolKey, []byte("x")))
	raw, err = view.Get(ctx, poolKey)
	require.NoError(t, err)
	require.Equal(t, []byte("x"), raw, "not a buffer key: neither sealed nor opened")

	// Revoked: the read fails naming the tenant and the key.
	require.NoError(t, crypt.SetLocalKeyDisabled(f.dir, "a", true))
	fresh, err := crypt.WrapBuffer(f.inner, f.kms, opts)
	require.NoError(t, err)
	_, err = storefile.ReadHeader(ctx, fresh, sealedKey)
	require.ErrorIs(t, err, crypt.ErrKeyDisabled)
	require.ErrorContains(t, err, "tenant 1: open object")
	require.ErrorContains(t, err, ref)
	_, err = fresh.Get(ctx, plainKey)
	require.NoError(t, err, "the other tenant is unaffected")
}

// TestNoKMSRefusesSealedBufferFiles: a service without a KMS reads a sealed
// buffer file as a clear error naming the tenant and the key (not as a
// corrupt store file); plaintext files, and ranged reads past the start,
// pass through.
func TestNoKMSRefusesSealedBufferFiles(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ref, _ := f.keys.keyFor(ctx, 1)
	upstream, err := crypt.SealBuffer(f.inner, f.kms, ref, crypt.Options{})
	require.NoError(t, err)
	sealedKey, sealed := storeFile(t, 1)
	plainKey, plain := storeFile(t, 2)
	require.NoError(t, upstream.Put(ctx, sealedKey, sealed))
	require.NoError(t, f.inner.Put(ctx, plainKey, plain))

	s := &crypt.NoKMS{Store: f.inner, TenantOf: crypt.BufferTenant}
	for name, read := range map[string]func() error{
		"get":    func() error { _, err := s.Get(ctx, sealedKey); return err },
		"header": func() error { _, err := storefile.ReadHeader(ctx, s, sealedKey); return err },
	} {
		err := read()
		require.ErrorIs(t, err, crypt.ErrKeyNotFound, name)
		require.ErrorContains(t, err, "tenant 1: open object")
		require.ErrorContains(t, err, "with key "+ref)
		require.ErrorContains(t, err, "without a KMS")
	}
	got, err := s.Get(ctx, plainKey)
	require.NoError(t, err)
	require.Equal(t, plain, got)
	h, err := storefile.ReadHeader(ctx, s, plainKey)
	require.NoError(t, err)
	require.Equal(t, uint64(2), h.TenantId)
	_, err = s.GetRange(ctx, sealedKey, 10, 10)
	require.NoError(t, err, "only reads from the start are checked")
}

// TestDestroyLocalKey: the key file goes, what it sealed is unreadable
// (ErrKeyNotFound), a second call reports it gone without an error, and a
// bad reference is refused.
func TestDestroyLocalKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.store(t, 0)
	key := layout.ManifestKey(1, 1)
	require.NoError(t, s.Put(ctx, key, []byte("manifest")))
	ref, _ := f.keys.keyFor(ctx, 1)

	destroyed, err := crypt.DestroyLocalKey(f.dir, ref)
	require.NoError(t, err)
	require.True(t, destroyed)
	_, err = os.Stat(filepath.Join(f.dir, "a.key"))
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = f.store(t, 0).Get(ctx, key) // nothing cached
	require.ErrorIs(t, err, crypt.ErrKeyNotFound)

	destroyed, err = crypt.DestroyLocalKey(f.dir, ref)
	require.NoError(t, err)
	require.False(t, destroyed, "already gone")
	_, err = crypt.DestroyLocalKey(f.dir, "local:../b")
	require.ErrorIs(t, err, crypt.ErrBadRef)
	_, err = crypt.DestroyLocalKey(f.dir, "aws-kms:x")
	require.ErrorIs(t, err, crypt.ErrBadRef)
	_, err = os.Stat(filepath.Join(f.dir, "b.key"))
	require.NoError(t, err, "the other key stays")
}

var (
	_ objstore.Store       = (*crypt.NoKMS)(nil)
	_ objstore.PartsPutter = (*crypt.NoKMS)(nil)
)
