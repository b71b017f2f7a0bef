package crypt_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/crypt/kmstest"
)

// kmsFixture is one KMS under the contract, with the means to make, disable
// and rotate its keys.
type kmsFixture struct {
	kms        crypt.KMS
	newKey     func(t *testing.T) string
	setOff     func(t *testing.T, ref string, disabled bool)
	rotate     func(t *testing.T, ref string) // nil: rotation is the KMS's own business
	missingRef string
}

// runKMSContract holds every KMS to the same behaviour.
func runKMSContract(t *testing.T, f kmsFixture) {
	ctx := context.Background()
	dek := func() []byte {
		b := make([]byte, crypt.DataKeyLen)
		_, _ = rand.Read(b)
		return b
	}
	t.Run("RoundTrip", func(t *testing.T) {
		ref, d := f.newKey(t), dek()
		w1, err := f.kms.WrapKey(ctx, ref, d)
		require.NoError(t, err)
		require.False(t, bytes.Contains(w1, d), "the wrapped key must not hold the key")
		w2, err := f.kms.WrapKey(ctx, ref, d)
		require.NoError(t, err)
		require.NotEqual(t, w1, w2, "wrapping is randomized")
		for _, w := range [][]byte{w1, w2} {
			got, err := f.kms.UnwrapKey(ctx, ref, w)
			require.NoError(t, err)
			require.Equal(t, d, got)
		}
	})
	t.Run("OtherKeyFails", func(t *testing.T) {
		a, b := f.newKey(t), f.newKey(t)
		w, err := f.kms.WrapKey(ctx, a, dek())
		require.NoError(t, err)
		_, err = f.kms.UnwrapKey(ctx, b, w)
		require.ErrorIs(t, err, crypt.ErrAuth)
		require.ErrorContains(t, err, b)
	})
	t.Run("Tampered", func(t *testing.T) {
		ref := f.newKey(t)
		w, err := f.kms.WrapKey(ctx, ref, dek())
		require.NoError(t, err)
		// The end of every format is the sealed key and its tag (local-kms
		// ignores the key ARN in the middle of its blobs when the key id
		// is given, so the middle is not part of the contract).
		for _, i := range []int{len(w) - 1, len(w) - 20} {
			bad := bytes.Clone(w)
			bad[i] ^= 0x40
			_, err = f.kms.UnwrapKey(ctx, ref, bad)
			require.Error(t, err, "byte %d", i)
			require.True(t, isAuthOrCorrupt(err), "byte %d: %v", i, err)
		}
		_, err = f.kms.UnwrapKey(ctx, ref, w[:len(w)-1])
		require.True(t, isAuthOrCorrupt(err), "truncated: %v", err)
	})
	t.Run("Disabled", func(t *testing.T) {
		ref, d := f.newKey(t), dek()
		w, err := f.kms.WrapKey(ctx, ref, d)
		require.NoError(t, err)
		f.setOff(t, ref, true)
		_, err = f.kms.WrapKey(ctx, ref, d)
		require.ErrorIs(t, err, crypt.ErrKeyDisabled)
		require.ErrorContains(t, err, ref)
		_, err = f.kms.UnwrapKey(ctx, ref, w)
		require.ErrorIs(t, err, crypt.ErrKeyDisabled)
		f.setOff(t, ref, false)
		got, err := f.kms.UnwrapKey(ctx, ref, w)
		require.NoError(t, err)
		require.Equal(t, d, got)
	})
	t.Run("NotFound", func(t *testing.T) {
		_, err := f.kms.WrapKey(ctx, f.missingRef, dek())
		require.ErrorIs(t, err, crypt.ErrKeyNotFound)
		require.ErrorContains(t, err, f.missingRef)
		ref := f.newKey(t)
		w, err := f.kms.WrapKey(ctx, ref, dek())
		require.NoError(t, err)
		_, err = f.kms.UnwrapKey(ctx, f.missingRef, w)
		require.ErrorIs(t, err, crypt.ErrKeyNotFound)
	})
	t.Run("BadRef", func(t *testing.T) {
		for _, ref := range []string{"", "nocolon", "local:", "aws-kms:", "other:x"} {
			_, err := f.kms.WrapKey(ctx, ref, dek())
			require.ErrorIs(t, err, crypt.ErrBadRef, "%q", ref)
		}
	})
	t.Run("Rotation", func(t *testing.T) {
		if f.rotate == nil {
			t.Skip("this KMS rotates key material itself; old ciphertexts stay readable by its contract")
		}
		ref, d1, d2 := f.newKey(t), dek(), dek()
		w1, err := f.kms.WrapKey(ctx, ref, d1)
		require.NoError(t, err)
		f.rotate(t, ref)
		w2, err := f.kms.WrapKey(ctx, ref, d2)
		require.NoError(t, err)
		for w, d := range map[*[]byte][]byte{&w1: d1, &w2: d2} {
			got, err := f.kms.UnwrapKey(ctx, ref, *w)
			require.NoError(t, err)
			require.Equal(t, d, got)
		}
	})
}

func isAuthOrCorrupt(err error) bool {
	return err != nil && (errors.Is(err, crypt.ErrAuth) || errors.Is(err, crypt.ErrCorrupt))
}

// localFixture serves key files in a temporary directory.
func localFixture(t *testing.T) (kmsFixture, string) {
	dir := t.TempDir()
	local, err := crypt.NewLocalKMS(dir)
	require.NoError(t, err)
	n := 0
	return kmsFixture{
		// Behind a Router, as services use it, so routing is under test too.
		kms: crypt.Router{crypt.LocalScheme: local},
		newKey: func(t *testing.T) string {
			n++
			ref, err := crypt.CreateLocalKey(dir, "key-"+string(rune('a'+n)))
			require.NoError(t, err)
			return ref
		},
		setOff: func(t *testing.T, ref string, disabled bool) {
			require.NoError(t, crypt.SetLocalKeyDisabled(dir, ref[len("local:"):], disabled))
		},
		rotate: func(t *testing.T, ref string) {
			_, err := crypt.RotateLocalKey(dir, ref[len("local:"):])
			require.NoError(t, err)
		},
		missingRef: "local:missing",
	}, dir
}

func TestLocalKMSContract(t *testing.T) {
	f, _ := localFixture(t)
	runKMSContract(t, f)
}

func TestAWSKMSContract(t *testing.T) {
	srv := kmstest.Start(t)
	runKMSContract(t, kmsFixture{
		kms:        crypt.Router{crypt.AWSScheme: srv.KMS},
		newKey:     func(t *testing.T) string { return srv.CreateKey(t) },
		setOff:     func(t *testing.T, ref string, off bool) { srv.SetDisabled(t, ref, off) },
		missingRef: "aws-kms:00000000-0000-0000-0000-000000000000",
	})
}
