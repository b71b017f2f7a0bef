package main

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/objstore/metered"
	"github.com/tistream/tistream/libs/svc/svctest"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// The pool store a service reads through, as openEnv and encryptPool
// assemble it (metered, then guarded without a KMS or encrypting with
// one), reads a ranged read into the caller's buffer: the pool's readers
// recycle their read buffers only through such a store (libs/pool,
// readbuf.go), and a wrapper that hides GetRangeInto silently turns every
// section read into a new allocation. Likewise it writes in parts
// (objstore.PartsPutter), or every publication would be joined into one
// new buffer first. Checked for a tenant without a key
// and, with a KMS, for one whose objects are encrypted.
func TestServicePoolStoreReadsIntoTheCallersBuffer(t *testing.T) {
	cli := svctest.Etcd(t)
	ctx := context.Background()
	keyDir := t.TempDir()
	ref, err := crypt.CreateLocalKey(keyDir, "seven")
	require.NoError(t, err)
	_, err = cli.Put(ctx, etcdx.TenantKey(7), etcdx.Marshal(&metav1.TenantInfo{TenantId: 7, Settings: &metav1.TenantSettings{KekRef: proto.String(ref)}}))
	require.NoError(t, err)
	_, err = cli.Put(ctx, etcdx.TenantKey(8), etcdx.Marshal(&metav1.TenantInfo{TenantId: 8}))
	require.NoError(t, err)
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB

	for _, c := range []struct {
		name    string
		cfg     encryptionConfig
		tenants []uint64
	}{
		{"without a KMS", encryptionConfig{}, []uint64{8}},
		{"with a KMS", encryptionConfig{KeyDir: keyDir}, []uint64{7, 8}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := objstore.NewMemory()
			pool := metered.NewMetrics(prometheus.NewRegistry()).Wrap(mem, "test", layout.Labels)
			e := env{log: slog.New(slog.DiscardHandler), etcd: cli, pool: pool}
			stop, err := encryptPool(ctx, &e, c.cfg, tenantDefaultsForTest())
			require.NoError(t, err)
			defer stop()
			_, ok := e.pool.(objstore.RangeIntoGetter)
			require.True(t, ok, "the pool store (%T) reads into a buffer", e.pool)
			_, ok = e.pool.(objstore.PartsPutter)
			require.True(t, ok, "the pool store (%T) writes in parts (a sorter's publications, from its recycled sections)", e.pool)
			for _, tenant := range c.tenants {
				key := layout.GroupPubKey(tenant, "g", 1)
				require.NoError(t, objstore.PutIfAbsentParts(ctx, e.pool, key, data[:1000], data[1000:]))
				stored, err := mem.Get(ctx, key)
				require.NoError(t, err)
				require.Equal(t, tenant == 7, !bytes.Equal(stored, data), "tenant %d's object encrypted", tenant)
				for _, r := range [][2]int{{0, 100}, {5000, 40000}, {65000, 1000}} {
					buf := make([]byte, r[1])
					got, err := objstore.GetRangeInto(ctx, e.pool, key, int64(r[0]), buf)
					require.NoError(t, err)
					require.Equal(t, data[r[0]:min(len(data), r[0]+r[1])], got, "tenant %d range %v", tenant, r)
					require.Same(t, &buf[0], &got[0], "tenant %d: read into the buffer given", tenant)
				}
			}
		})
	}
}
