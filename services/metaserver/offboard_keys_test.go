package metaserver

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/pool"
	"github.com/tistream/tistream/libs/tenantcfg"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// TestOffboardShredsLocalKey (docs/tenants.md, "Offboarding"): a
// meta-server with a key directory and a pool sealed per tenant (crypt.Wrap,
// each tenant's key from its etcd record). Tenant 1 has its own local key,
// tenants 2 and 3 share one. Offboarding tenant 1 deletes its key file
// after its data: a copy of one of its sealed objects taken before (a
// backup) no longer opens. Offboarding tenant 2 keeps the shared key
// (tenant 3 uses it, and still reads its objects). Destroying again (a
// resumed offboarding) is a no-op; an aws-kms: key is left alone; tenant 1
// registers again with a new key and starts clean.
func TestOffboardShredsLocalKey(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	keyDir := t.TempDir()
	refs := map[string]string{}
	for _, name := range []string{"t1", "shared", "t1-new"} {
		ref, err := crypt.CreateLocalKey(keyDir, name)
		require.NoError(t, err)
		refs[name] = ref
	}
	local, err := crypt.NewLocalKMS(keyDir)
	require.NoError(t, err)
	kms := crypt.Router{crypt.LocalScheme: local}
	defaults := testConfig().TenantDefaults
	keyFor := func(ctx context.Context, tenant uint64) (string, error) {
		info := &metav1.TenantInfo{}
		found, _, err := etcdx.GetProto(ctx, env.cli, etcdx.TenantKey(tenant), info)
		if err != nil || !found {
			return defaults.KEKRef, err
		}
		return tenantcfg.Resolve(info, defaults).KEKRef, nil
	}
	sealedPool, err := crypt.Wrap(env.pool, kms, keyFor, crypt.LayoutTenant, crypt.Options{KeyTTL: time.Second})
	require.NoError(t, err)
	cfg := testConfig()
	cfg.OffboardInterval = 50 * time.Millisecond
	s, err := New(cfg, Deps{Log: env.log, Registry: prometheus.NewRegistry(), Etcd: env.cli, Buffer: env.buffer, Pool: sealedPool, KeyDir: keyDir})
	require.NoError(t, err)
	require.NoError(t, s.Start(ctx))
	t.Cleanup(func() { stopMeta(t, s) })
	require.Eventually(t, func() bool { return s.IsLeader() && s.state.ready() }, waitFor, pollEvery)
	c := env.client(s)

	register := func(tenant uint64, ref string) {
		t.Helper()
		env.writeSnapshot(tenant, tso(1000), 101)
		resp, err := c.RegisterTenant(ctx, &metav1.RegisterTenantRequest{ClusterId: testCluster, TenantId: tenant, InitialRanges: 1,
			Settings: &metav1.TenantSettings{KekRef: proto.String(ref)}})
		require.NoError(t, err)
		require.True(t, resp.Created)
		raw, err := env.pool.Get(ctx, layout.ManifestKey(tenant, 1))
		require.NoError(t, err)
		require.Equal(t, crypt.Magic, string(raw[:4]), "tenant %d's manifest is sealed", tenant)
	}
	offboard := func(tenant uint64) {
		t.Helper()
		_, err := c.DeregisterTenant(ctx, &metav1.DeregisterTenantRequest{TenantId: tenant, GraceMs: proto.Int64(0)})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			found, _, err := etcdx.GetProto(ctx, env.cli, etcdx.TenantKey(tenant), &metav1.TenantInfo{})
			return err == nil && !found
		}, waitFor, pollEvery, "tenant %d's record goes", tenant)
		require.Empty(t, objectsUnder(t, env.pool, layout.PoolTenantPrefix(tenant)))
	}
	keyFile := func(name string) bool {
		_, err := os.Stat(filepath.Join(keyDir, name+".key"))
		return err == nil
	}
	register(1, refs["t1"])
	register(2, refs["shared"])
	register(3, refs["shared"])
	backup := objstore.NewMemory() // a copy of tenant 1's sealed manifest, as a bucket backup holds it
	raw, err := env.pool.Get(ctx, layout.ManifestKey(1, 1))
	require.NoError(t, err)
	require.NoError(t, backup.Put(ctx, layout.ManifestKey(1, 1), raw))
	openBackup := func() error {
		view, err := crypt.Wrap(backup, kms, keyFor, crypt.LayoutTenant, crypt.Options{})
		require.NoError(t, err)
		_, err = pool.LoadManifest(ctx, view, 1)
		return err
	}
	require.NoError(t, openBackup(), "the backup opens while the key exists")

	offboard(1)
	require.False(t, keyFile("t1"), "tenant 1's key is destroyed")
	require.ErrorIs(t, openBackup(), crypt.ErrKeyNotFound, "what the key sealed is unreadable")
	require.Equal(t, 1.0, testutil.ToFloat64(s.ob.keys))

	offboard(2)
	require.True(t, keyFile("shared"), "a key another tenant uses is kept")
	require.Equal(t, 1.0, testutil.ToFloat64(s.ob.keys))
	m, err := pool.LoadManifest(ctx, sealedPool, 3)
	require.NoError(t, err, "tenant 3 still reads its objects")
	require.Equal(t, uint64(1), m.Version)

	// A resumed offboarding destroys nothing more and does not fail; an
	// AWS key and no key are left alone.
	for _, ref := range []string{refs["t1"], "aws-kms:arn:aws:kms:us-east-1:1:key/x", ""} {
		require.NoError(t, s.shredKey(ctx, &metav1.TenantInfo{TenantId: 1}, ref))
	}
	require.Equal(t, 1.0, testutil.ToFloat64(s.ob.keys))
	require.True(t, keyFile("shared") && keyFile("t1-new"))

	// Registered again with a new key: a clean start under it.
	register(1, refs["t1-new"])
	m, err = pool.LoadManifest(ctx, sealedPool, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(1), m.Version)
}
