//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
)

// TestCustomerManagedKeys (docs/formats/encryption.md): two tenants in a
// process fleet with a key directory; tenant 1 registers with a local key,
// tenant 2 without. Both pulls verify against the truth; every object of
// tenant 1 in the pool (data, logs, group segments and publications,
// manifests, the schema snapshot copy, sorter snapshots, schema history) is
// stored sealed, reads back through the key, and holds neither the start of
// its plaintext nor a row value of tenant 1's truth; tenant 2's are stored
// as they are. Then tenant 1's key is disabled: its pulls are refused with
// FAILED_PRECONDITION naming the tenant and the key, tenant 2's verify.
func TestCustomerManagedKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	keyDir := t.TempDir()
	ref, err := crypt.CreateLocalKey(keyDir, "tenant-1")
	if err != nil {
		t.Fatal(err)
	}
	extra := map[string][]string{}
	for _, kind := range []string{"meta-server", "dispatcher", "sorter", "schema-registry", "api-server"} {
		extra[kind] = []string{"--key-dir", keyDir, "--key-cache-ttl", "2s"}
	}
	extra["schema-registry"] = append(extra["schema-registry"], "--persist-interval", "1s")
	f := startProcFleet(t, procFleetOptions{Metas: 1, Sorters: 2, Dispatchers: 1, Extra: extra})
	meta, api, cl := f.first("meta-server").grpcAddr, f.first("api-server").grpcAddr, f.clients()

	// Tenant 1 registers with its key (so even the objects written while
	// it registers are sealed), tenant 2 without; one simulator each.
	truthPath := f.simTenants(t, meta, map[uint64][]string{1: {"--kek", ref}, 2: nil})
	pullVerify := func(tenant uint64, name string) { t.Helper(); f.pullVerifyTenant(t, truthPath[tenant], tenant, name) }
	pullVerify(1, "pulled-1")
	pullVerify(2, "pulled-2")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool, err := objstore.Open(ctx, f.poolURL)
	if err != nil {
		t.Fatal(err)
	}
	// The fleet's view of the pool: what it decrypts must be in none of
	// the stored bytes (the start of a container: its preamble and header,
	// which are not compressed).
	local, err := crypt.NewLocalKMS(keyDir)
	if err != nil {
		t.Fatal(err)
	}
	view, err := crypt.Wrap(pool, local, func(context.Context, uint64) (string, error) { return "", nil }, crypt.LayoutTenant, crypt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The schema history is written every second: wait for tenant 1's.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		objs, _, err := pool.List(ctx, layout.SchemaHistoryPrefix(1), "", 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no schema history of tenant 1 within 30s")
		}
	}
	values := map[uint64][][]byte{1: truthValues(t, truthPath[1], 1), 2: truthValues(t, truthPath[2], 2)}
	for _, tenant := range []uint64{1, 2} {
		sealed, plain, holding := 0, 0, 0
		purposes := map[layout.Purpose]int{}
		for _, prefix := range []string{layout.PoolTenantPrefix(tenant), fmt.Sprintf("%stenant-%d/", layout.SnapshotRoot, tenant),
			layout.SchemaHistoryPrefix(tenant)} {
			objs, err := objstore.ListAll(ctx, pool, prefix, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				p, _, _ := layout.Classify(o.Key)
				if p == layout.PurposePoolUsage {
					continue // the operator's metering records
				}
				purposes[p]++
				b, err := pool.Get(ctx, o.Key)
				if err != nil {
					t.Fatal(err)
				}
				pt, err := view.Get(ctx, o.Key)
				if err != nil {
					t.Fatalf("%s does not read through the key: %v", o.Key, err)
				}
				if bytes.HasPrefix(b, []byte(crypt.Magic)) {
					sealed++
					if known := pt[:min(len(pt), 64)]; len(known) >= 16 && bytes.Contains(b, known) {
						t.Errorf("%s holds the start of its plaintext", o.Key)
					}
				} else {
					plain++
					if tenant == 1 {
						t.Errorf("tenant 1's %s is stored in plaintext", o.Key)
					}
				}
				for _, v := range values[tenant] {
					if bytes.Contains(b, v) {
						holding++
						if tenant == 1 {
							t.Errorf("tenant 1's %s holds a row value of its truth in plaintext", o.Key)
						}
						break
					}
				}
			}
		}
		t.Logf("tenant %d: %d objects sealed, %d plaintext, %d holding one of %d known row values; by purpose %v",
			tenant, sealed, plain, holding, len(values[tenant]), purposes)
		if tenant == 1 {
			for _, p := range []layout.Purpose{layout.PurposePoolManifest, layout.PurposePoolSchema, layout.PurposePoolLog,
				layout.PurposePoolPublish, layout.PurposeSorterSnapshot, layout.PurposeSchemaRegistry} {
				if purposes[p] == 0 {
					t.Errorf("tenant 1 has no %s object to check", p)
				}
			}
		}
		if tenant == 2 && (sealed != 0 || plain == 0) {
			t.Errorf("tenant 2: %d sealed, %d plaintext objects; want all plaintext", sealed, plain)
		}
	}

	// Revocation: tenant 1's key disabled, its pulls are refused with a
	// clear FAILED_PRECONDITION once the services' cached keys expire (2s);
	// tenant 2 is still served and verifies.
	if err := crypt.SetLocalKeyDisabled(keyDir, "tenant-1", true); err != nil {
		t.Fatal(err)
	}
	refused := false
	var out string
	for deadline := time.Now().Add(60 * time.Second); !refused && time.Now().Before(deadline); {
		out, err = runOutput(30*time.Second, append([]string{"pull", "--api", api, "--tenant", "1", "--timeout", "10s"}, cl.admin...)...)
		refused = err != nil && strings.Contains(out, "FailedPrecondition") && strings.Contains(out, "tenant 1: key "+ref+": key disabled")
		if !refused {
			t.Logf("pull of tenant 1 not refused yet (err %v): %s", err, tail([]byte(out), 512))
			time.Sleep(time.Second)
		}
	}
	if !refused {
		t.Fatalf("pulls of tenant 1 are not refused after its key was disabled; last output:\n%s", out)
	}
	t.Logf("tenant 1 refused: %s", strings.TrimSpace(out))
	pullVerify(2, "pulled-2-after-revocation")
}

// truthValues returns the longest printable runs (at least 32 bytes) of
// tenant's row values in the truth, at most 200 of them.
func truthValues(t *testing.T, path string, tenant uint64) [][]byte {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out [][]byte
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var row struct {
			Type   string `json:"type"`
			Tenant uint64 `json:"tenant"`
			Value  string `json:"value"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil || row.Type != "row" || row.Tenant != tenant || len(out) >= 200 {
			continue
		}
		v, err := hex.DecodeString(row.Value)
		if err != nil || len(v) < 64 {
			continue
		}
		// The value's longest printable run: what a reader of the bytes
		// would recognise.
		best := ""
		for _, run := range strings.FieldsFunc(string(v), func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			if len(run) > len(best) {
				best = run
			}
		}
		if len(best) >= 32 {
			out = append(out, []byte(best))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
