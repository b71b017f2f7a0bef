package crypt_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/objstore/objstoretest"
	"github.com/tistream/tistream/libs/objstore/s3test"
)

// everyKeyTenant1 makes every key tenant 1's, so the contract's own keys
// are all encrypted.
func everyKeyTenant1(string) (uint64, bool) { return 1, true }

// contractStore wraps inner with tenant 1 under a local key.
func contractStore(t *testing.T, inner objstore.Store, chunk int) objstore.Store {
	f := newFixture(t)
	s, err := crypt.Wrap(inner, f.kms, f.keys.keyFor, everyKeyTenant1, crypt.Options{ChunkSize: chunk})
	require.NoError(t, err)
	return s
}

// The object-store contract holds through the wrapper: with small chunks
// (every GetRange spans chunk boundaries) and the default.
func TestStoreContractMemory(t *testing.T) {
	for _, chunk := range []int{16, 1 << 10, 0} {
		t.Run(fmt.Sprint("chunk", chunk), func(t *testing.T) {
			objstoretest.RunContractWith(t, objstoretest.Options{StoredSizes: true}, func(t *testing.T) objstore.Store {
				return contractStore(t, objstore.NewMemory(), chunk)
			})
		})
	}
}

func TestStoreContractLocalFS(t *testing.T) {
	objstoretest.RunContractWith(t, objstoretest.Options{StoredSizes: true}, func(t *testing.T) objstore.Store {
		inner, err := objstore.NewLocalFS(t.TempDir())
		require.NoError(t, err)
		return contractStore(t, inner, 100)
	})
}

func TestStoreContractS3(t *testing.T) {
	srv := s3test.Start(t)
	var n atomic.Int64
	objstoretest.RunContractWith(t, objstoretest.Options{StoredSizes: true}, func(t *testing.T) objstore.Store {
		inner, err := objstore.Open(context.Background(), srv.URL(fmt.Sprintf("crypt/%03d", n.Add(1))))
		require.NoError(t, err)
		return contractStore(t, inner, 0)
	})
}

// Every contract GetRange case, read through a wrapper with nothing cached
// (each read starts by probing the header), over an object spanning many
// chunks, against the plaintext.
func TestGetRangeUncached(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const size = 1000
	data := pattern(size)
	w := f.store(t, 64)
	key := "committed_data_pool/tenant-1/range-1/data/x"
	require.NoError(t, w.Put(ctx, key, data))
	require.NoError(t, w.Put(ctx, "committed_data_pool/tenant-1/empty", nil))
	cases := [][2]int64{{0, -1}, {0, 1}, {63, 2}, {64, 64}, {100, 500}, {999, 1}, {999, 5}, {1000, 3}, {1000, -1},
		{5, 0}, {-1, 0}, {-64, 9}, {-65, 0}, {-1000, 0}, {-5000, 3}, {0, 1 << 62}, {500, -1}}
	for _, c := range cases {
		off, n := c[0], c[1]
		want := expected(data, off, n)
		for _, cached := range []bool{false, true} {
			r := w
			if !cached {
				r = f.store(t, 64)
			}
			got, err := r.GetRange(ctx, key, off, n)
			require.NoError(t, err, "off %d n %d cached %v", off, n, cached)
			require.Equal(t, want, got, "off %d n %d cached %v", off, n, cached)
		}
	}
	for _, off := range []int64{1001, 1 << 40} {
		_, err := f.store(t, 64).GetRange(ctx, key, off, 1)
		require.ErrorIs(t, err, objstore.ErrInvalidRange)
	}
	got, err := f.store(t, 64).GetRange(ctx, "committed_data_pool/tenant-1/empty", 0, -1)
	require.NoError(t, err)
	require.Empty(t, got)
	_, err = f.store(t, 64).GetRange(ctx, "committed_data_pool/tenant-1/empty", 1, 1)
	require.ErrorIs(t, err, objstore.ErrInvalidRange)
}

// expected is GetRange's semantics over data, written out independently.
func expected(data []byte, off, n int64) []byte {
	size := int64(len(data))
	if off < 0 {
		return data[max(0, size+off):]
	}
	end := size
	if n >= 0 && off+n < size {
		end = off + n
	}
	return data[off:end]
}

// The wrapper of a service without a KMS passes every write through: the
// contract holds through it, parts included.
func TestNoKMSContract(t *testing.T) {
	objstoretest.RunContract(t, func(*testing.T) objstore.Store {
		return &crypt.NoKMS{Store: objstore.NewMemory(), TenantOf: crypt.BufferTenant}
	})
}
