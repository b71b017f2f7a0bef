package crypt_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/objstore"
)

// BenchmarkEncryption measures the wrapper's cost per MiB over an
// in-memory store (so the store's own cost is a copy): plain is the memory
// store alone, cmek the wrapper with a local key (KMS calls are cached, as
// in service). Bytes/op is the plaintext size: MB/s is plaintext throughput.
// go test ./libs/crypt -run '^$' -bench . -benchmem
func BenchmarkEncryption(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	ref, err := crypt.CreateLocalKey(dir, "bench")
	require.NoError(b, err)
	local, err := crypt.NewLocalKMS(dir)
	require.NoError(b, err)
	const size = 1 << 20
	data := pattern(size)
	key := "committed_data_pool/tenant-1/group-g/seg/x"
	stores := func() map[string]objstore.Store {
		m := map[string]objstore.Store{"plain": objstore.NewMemory()}
		for _, chunk := range []int{16 << 10, 64 << 10} {
			w, err := crypt.Wrap(objstore.NewMemory(), local, func(context.Context, uint64) (string, error) { return ref, nil },
				crypt.LayoutTenant, crypt.Options{ChunkSize: chunk})
			require.NoError(b, err)
			m[fmt.Sprintf("cmek-chunk%dKiB", chunk>>10)] = w
		}
		return m
	}
	for _, name := range []string{"plain", "cmek-chunk16KiB", "cmek-chunk64KiB"} {
		b.Run("put-1MiB/"+name, func(b *testing.B) {
			s := stores()[name]
			b.SetBytes(size)
			for b.Loop() {
				require.NoError(b, s.Put(ctx, key, data))
			}
		})
		b.Run("get-1MiB/"+name, func(b *testing.B) {
			s := stores()[name]
			require.NoError(b, s.Put(ctx, key, data))
			b.SetBytes(size)
			for b.Loop() {
				_, err := s.Get(ctx, key)
				require.NoError(b, err)
			}
		})
		b.Run("getrange-into-1MiB/"+name, func(b *testing.B) {
			s := stores()[name]
			require.NoError(b, s.Put(ctx, key, data))
			buf := make([]byte, size)
			b.SetBytes(size)
			for b.Loop() {
				_, err := objstore.GetRangeInto(ctx, s, key, 0, buf)
				require.NoError(b, err)
			}
		})
		for _, off := range []int64{0, 300_000} {
			b.Run(fmt.Sprintf("getrange-4KiB@%d/%s", off, name), func(b *testing.B) {
				s := stores()[name]
				require.NoError(b, s.Put(ctx, key, data))
				b.SetBytes(4096)
				for b.Loop() {
					_, err := s.GetRange(ctx, key, off, 4096)
					require.NoError(b, err)
				}
			})
		}
	}
}
