package crypt_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/objstore"
)

// keys is a tenant -> KEK reference table tests change as they go.
type keys struct {
	mu   sync.Mutex
	refs map[uint64]string
}

func (k *keys) set(tenant uint64, ref string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refs[tenant] = ref
}

func (k *keys) keyFor(_ context.Context, tenant uint64) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.refs[tenant], nil
}

// clock is a settable clock for KeyTTL.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// fixture: a key directory with keys a (tenant 1) and b (tenant 2); tenant
// 3 has none. Keys are the fleet's layout, classified by LayoutTenant.
type fixture struct {
	dir   string
	kms   crypt.KMS
	keys  *keys
	clock *clock
	inner objstore.Store
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{dir: t.TempDir(), keys: &keys{refs: map[uint64]string{}}, clock: &clock{}, inner: objstore.NewMemory()}
	local, err := crypt.NewLocalKMS(f.dir)
	require.NoError(t, err)
	f.kms = crypt.Router{crypt.LocalScheme: local}
	for tenant, name := range map[uint64]string{1: "a", 2: "b"} {
		ref, err := crypt.CreateLocalKey(f.dir, name)
		require.NoError(t, err)
		f.keys.set(tenant, ref)
	}
	return f
}

const testTTL = time.Minute

// store is a new wrapper over the fixture's inner store (a new one has
// nothing cached).
func (f *fixture) store(t *testing.T, chunk int) *crypt.Store {
	s, err := crypt.Wrap(f.inner, f.kms, f.keys.keyFor, crypt.LayoutTenant,
		crypt.Options{ChunkSize: chunk, KeyTTL: testTTL, Now: f.clock.now})
	require.NoError(t, err)
	return s
}

// counting counts GetRange and Get requests to its store.
type counting struct {
	objstore.Store
	gets atomic.Int64
}

func (c *counting) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *counting) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.GetRange(ctx, key, off, n)
}

// pattern is n bytes that differ at every offset mod 251.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}
