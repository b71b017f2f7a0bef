//go:build linux

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/tlsx"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// TestTenantsSettingsAndOffboarding (docs/tenants.md): two tenants pushed
// by the simulator into a process fleet, each pull verified against the
// truth; tenant 1's retention changed through the admin API without a
// restart; tenant 2 deregistered with a short grace: its pulls are refused
// with the clear error while tenant 1's still verify, and after the grace
// every object under its pool folder and buffer prefix and every etcd key
// of it is gone; registering it again finds nothing of the old tenant.
func TestTenantsSettingsAndOffboarding(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	f := startProcFleet(t, procFleetOptions{Metas: 1, Sorters: 2, Dispatchers: 1,
		Extra: map[string][]string{"meta-server": {"--offboard-interval", "500ms"}}})
	meta, api, cl := f.first("meta-server").grpcAddr, f.first("api-server").grpcAddr, f.clients()
	truthPath := filepath.Join(f.dir, "truth.jsonl")
	run(t, 3*time.Minute, "", append([]string{"sim", "--store", f.bufferURL, "--meta", meta, "--truth", truthPath,
		"--tenants", "2", "--duration", "5s", "--rows-per-sec", "1000", "--initial-ranges", "2", "--quiet"}, cl.upstream...)...)
	end, _, _ := truthEnd(t, truthPath)
	pullTenant := func(tenant int, name string) {
		t.Helper()
		pulled := filepath.Join(f.dir, name+".jsonl")
		run(t, 3*time.Minute, pulled, append([]string{"pull", "--api", api, "--tenant", strconv.Itoa(tenant),
			"--until-resolved", strconv.FormatUint(end, 10), "--timeout", "150s"}, cl.admin...)...)
		run(t, time.Minute, "", "verify", "--truth", truthPath, "--pulled", pulled, "--tenant", strconv.Itoa(tenant))
	}
	pullTenant(1, "pulled-1")
	pullTenant(2, "pulled-2")

	// Tenant 1's retention, changed without a restart.
	admin := func(args ...string) []byte {
		t.Helper()
		out := filepath.Join(f.dir, "admin.out")
		run(t, time.Minute, out, append(append([]string{"admin"}, args...), append([]string{"--meta", meta}, cl.admin...)...)...)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	admin("update-tenant", "--tenant", "1", "--retention", "2h", "--max-concurrent-pulls", "8")
	tenants := func() map[uint64]*metav1.TenantInfo {
		var resp metav1.ListTenantsResponse
		if err := protojson.Unmarshal(admin("tenants", "--json"), &resp); err != nil {
			t.Fatal(err)
		}
		out := map[uint64]*metav1.TenantInfo{}
		for _, ti := range resp.Tenants {
			out[ti.TenantId] = ti
		}
		return out
	}
	if a := tenants()[1]; a.GetSettings().GetRetentionMs() != (2*time.Hour).Milliseconds() || a.SettingsGeneration != 2 {
		t.Fatalf("tenant 1 after update-tenant: %v", a)
	}
	table := string(admin("tenants"))
	if !strings.Contains(table, "2h0m0s") || !strings.Contains(table, "* = the fleet default") {
		t.Fatalf("admin tenants does not show the new retention and the defaults:\n%s", table)
	}

	// Tenant 2 deregistered: its pulls are refused, tenant 1 is served.
	grace := 4 * time.Second
	admin("deregister", "--tenant", "2", "--grace", grace.String())
	deregistered := time.Now()
	if b := tenants()[2]; b.State != metav1.TenantState_TENANT_STATE_DEREGISTERED {
		t.Fatalf("tenant 2 after deregister: %v", b)
	}
	refused := false
	for deadline := time.Now().Add(20 * time.Second); !refused && time.Now().Before(deadline); {
		out, err := runOutput(30*time.Second, append([]string{"pull", "--api", api, "--tenant", "2", "--timeout", "10s"}, cl.admin...)...)
		refused = err != nil && strings.Contains(out, "tenant 2 is deregistered since") && strings.Contains(out, "its data is deleted after")
		if !refused {
			t.Logf("pull of tenant 2 not refused yet (err %v): %s", err, tail([]byte(out), 512))
			time.Sleep(500 * time.Millisecond)
		}
	}
	if !refused {
		t.Fatal("pulls of the deregistered tenant are not refused with the clear error")
	}
	pullTenant(1, "pulled-1-after")

	// After the grace: nothing of tenant 2 anywhere.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	buffer, err := objstore.Open(ctx, f.bufferURL)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := objstore.Open(ctx, f.poolURL)
	if err != nil {
		t.Fatal(err)
	}
	cli := f.etcdClient(t)
	left := func() []string {
		var out []string
		for _, c := range []struct {
			store  objstore.Store
			prefix string
		}{{buffer, layout.TenantBufferPrefix(1, 2)}, {pool, layout.PoolTenantPrefix(2)}} {
			objs, _, err := c.store.List(ctx, c.prefix, "", 5)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				out = append(out, o.Key)
			}
		}
		resp, err := cli.Get(ctx, etcdx.Root, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			parts := strings.Split(strings.TrimPrefix(string(kv.Key), etcdx.Root), "/")
			if len(parts) >= 2 && parts[0] != "workers" && parts[0] != "meta" && parts[1] == "2" {
				out = append(out, "etcd:"+string(kv.Key))
			}
		}
		return out
	}
	for {
		l := left()
		if len(l) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("tenant 2 not deleted %v after its deregistration; left: %v", time.Since(deregistered), l)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if took := time.Since(deregistered); took < grace {
		t.Fatalf("tenant 2 deleted after %v, before its grace of %v", took, grace)
	}
	if _, ok := tenants()[2]; ok {
		t.Fatal("tenant 2 still listed")
	}
	if n := len(tenants()); n != 1 {
		t.Fatalf("%d tenants listed, want tenant 1 only", n)
	}
	// Registering it again starts from nothing: its old schema snapshot is
	// gone from the buffer too, so the registration asks for a new one.
	out, err := runOutput(time.Minute, append([]string{"admin", "register", "--meta", meta, "--cluster", "1", "--tenant", "2"}, cl.admin...)...)
	if err == nil || !strings.Contains(out, "no schema snapshot") {
		t.Fatalf("registering tenant 2 again: err %v, want no schema snapshot:\n%s", err, out)
	}
	pullTenant(1, "pulled-1-end")
}

// runOutput runs a tistream command and returns its combined output and
// error (for commands expected to fail).
func runOutput(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b, err := exec.CommandContext(ctx, tistreamBin, args...).CombinedOutput()
	return string(b), err
}

// etcdClient is a client of the fleet's etcd as the admin identity.
func (f *procFleet) etcdClient(t *testing.T) *clientv3.Client {
	t.Helper()
	src, err := tlsx.NewSource(f.tls.files("admin"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"https://" + f.etcdAddr}, TLS: tlsx.ClientConfig(src), DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}
