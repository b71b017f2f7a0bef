package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/svc/svctest"
	"github.com/tistream/tistream/libs/tenantcfg"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	"google.golang.org/protobuf/proto"
)

// The fleet's tenant defaults are one set, given once (flag or top-level
// YAML), and every service resolves tenants with the same values.
func TestTenantDefaultsAreTheFleets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("etcd: [http://127.0.0.1:1]\npool: file:///tmp/p\nbuffer: file:///tmp/b\n"+
		"tenant_defaults:\n  retention: 3h\n  quotas:\n    max_concurrent_pulls: 4\nmeta_server:\n  insecure: true\n"), 0o644))
	for _, target := range []string{"meta-server", "dispatcher", "sorter", "api-server"} {
		args := []string{"-target=" + target, "--config", path, "--tenant-default-ingest-rows-per-sec", "900", "--insecure"}
		if target == "api-server" {
			args = append(args, "--schema-registry", "127.0.0.1:1")
		}
		_, fc, err := parseRun(args, io.Discard)
		require.NoError(t, err, target)
		for name, d := range map[string]struct {
			retention time.Duration
			pulls     uint32
			ingest    uint64
		}{
			"meta-server": {fc.MetaServer.TenantDefaults.Retention, fc.MetaServer.TenantDefaults.Quotas.MaxConcurrentPulls, fc.MetaServer.TenantDefaults.Quotas.IngestRowsPerSec},
			"dispatcher":  {fc.Dispatcher.TenantDefaults.Retention, fc.Dispatcher.TenantDefaults.Quotas.MaxConcurrentPulls, fc.Dispatcher.TenantDefaults.Quotas.IngestRowsPerSec},
			"api-server":  {fc.APIServer.TenantDefaults.Retention, fc.APIServer.TenantDefaults.Quotas.MaxConcurrentPulls, fc.APIServer.TenantDefaults.Quotas.IngestRowsPerSec},
			"sorter":      {fc.Sorter.Retention, 4, 900},
		} {
			require.Equal(t, 3*time.Hour, d.retention, "%s as seen by %s", name, target)
			require.EqualValues(t, 4, d.pulls, "%s as seen by %s", name, target)
			require.EqualValues(t, 900, d.ingest, "%s as seen by %s", name, target)
		}
	}
	// A per-service section cannot set them apart.
	require.NoError(t, os.WriteFile(path, []byte("etcd: [http://127.0.0.1:1]\npool: file:///tmp/p\nsorter:\n  retention: 1h\n"), 0o644))
	_, _, err := parseRun([]string{"-target=sorter", "--config", path, "--insecure"}, io.Discard)
	require.ErrorContains(t, err, "retention")
	_, _, err = parseRun([]string{"-target=sorter", "--pool", "file:///tmp/p", "--etcd", "http://127.0.0.1:1", "--tenant-default-kek", "vault:x"}, io.Discard)
	require.ErrorContains(t, err, "kek_ref")
}

// Without a KMS a service never writes a tenant's objects in plaintext when
// the tenant has a key reference: the write fails naming the tenant.
func TestNoKMSRefusesTenantsWithKeys(t *testing.T) {
	cli := svctest.Etcd(t)
	ctx := context.Background()
	_, err := cli.Put(ctx, etcdx.TenantKey(7), etcdx.Marshal(&metav1.TenantInfo{TenantId: 7, Settings: &metav1.TenantSettings{KekRef: proto.String("local:seven")}}))
	require.NoError(t, err)
	_, err = cli.Put(ctx, etcdx.TenantKey(8), etcdx.Marshal(&metav1.TenantInfo{TenantId: 8}))
	require.NoError(t, err)
	mem := objstore.NewMemory()
	e := env{log: slog.New(slog.DiscardHandler), etcd: cli, pool: mem}
	stop, err := encryptPool(ctx, &e, encryptionConfig{}, tenantDefaultsForTest())
	require.NoError(t, err)
	defer stop()
	err = e.pool.Put(ctx, layout.ManifestKey(7, 1), []byte("secret"))
	require.Error(t, err)
	require.True(t, errors.Is(err, crypt.ErrKeyNotFound), "%v", err)
	require.ErrorContains(t, err, "tenant 7")
	require.ErrorContains(t, err, "without a KMS")
	_, err = mem.Get(ctx, layout.ManifestKey(7, 1))
	require.ErrorIs(t, err, objstore.ErrNotFound, "nothing was written")
	// Told the key at registration (before the record exists): refused too.
	err = e.pool.PutIfAbsent(crypt.WithTenantKEK(ctx, 9, "local:nine"), layout.ManifestKey(9, 1), []byte("x"))
	require.ErrorIs(t, err, crypt.ErrKeyNotFound)
	// Tenants without a key, and keys of no tenant, are written as they are.
	require.NoError(t, e.pool.Put(ctx, layout.ManifestKey(8, 1), []byte("plain")))
	got, err := mem.Get(ctx, layout.ManifestKey(8, 1))
	require.NoError(t, err)
	require.Equal(t, "plain", string(got))
	require.NoError(t, e.pool.Put(ctx, "elsewhere/x", []byte("y")))
	// Objects written in parts (the sorters' group publications) alike.
	err = objstore.PutIfAbsentParts(ctx, e.pool, layout.GroupPubKey(7, "g", 1), []byte("sec"), []byte("ret"))
	require.ErrorIs(t, err, crypt.ErrKeyNotFound)
	_, err = mem.Get(ctx, layout.GroupPubKey(7, "g", 1))
	require.ErrorIs(t, err, objstore.ErrNotFound, "nothing was written")
	require.NoError(t, objstore.PutIfAbsentParts(ctx, e.pool, layout.GroupPubKey(8, "g", 1), []byte("pl"), []byte("ain")))
	got, err = mem.Get(ctx, layout.GroupPubKey(8, "g", 1))
	require.NoError(t, err)
	require.Equal(t, "plain", string(got))

	// A default key without a KMS is refused at start.
	d := tenantDefaultsForTest()
	d.KEKRef = "local:fleet"
	_, err = encryptPool(ctx, &env{log: e.log, etcd: cli, pool: mem}, encryptionConfig{}, d)
	require.ErrorContains(t, err, "needs a KMS")
}

func tenantDefaultsForTest() tenantcfg.Defaults { return tenantcfg.DefaultDefaults() }
