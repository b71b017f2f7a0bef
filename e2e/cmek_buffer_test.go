//go:build linux

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
)

// TestEncryptedBufferFiles (docs/formats/encryption.md, "Buffer files the
// upstream encrypts"): tenant 1's upstream (`tistream sim
// --encrypt-buffer-kek`) seals its store files and schema snapshots under
// its key, tenant 2's writes plaintext, into the fleet's one buffer. The
// meta-server (which reads tenant 1's schema snapshot to register it) has
// the key directory; the dispatcher is first started without a KMS: tenant
// 2 is served and verifies against its truth, tenant 1's stream stops at
// its first file with an error naming the tenant, the object and the key
// (not "corrupt"), and every tenant 1 object in the buffer is an envelope
// (none starts with a container magic). The dispatcher restarted with
// --key-dir reads the sealed files and tenant 1's pull verifies against its
// truth.
func TestEncryptedBufferFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	keyDir := t.TempDir()
	ref, err := crypt.CreateLocalKey(keyDir, "upstream-1")
	if err != nil {
		t.Fatal(err)
	}
	withKeys := []string{"--key-dir", keyDir, "--key-cache-ttl", "2s"}
	extra := map[string][]string{}
	for _, kind := range []string{"meta-server", "sorter", "schema-registry", "api-server"} {
		extra[kind] = withKeys
	}
	f := startProcFleet(t, procFleetOptions{Metas: 1, Sorters: 1, Dispatchers: 1, Extra: extra})
	meta := f.first("meta-server").grpcAddr

	truthPath := f.simTenants(t, meta, map[uint64][]string{1: {"--encrypt-buffer-kek", ref, "--key-dir", keyDir}, 2: nil})
	f.pullVerifyTenant(t, truthPath[2], 2, "pulled-2")

	// Tenant 1's files are all still there (nothing read them) and sealed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	buffer, err := objstore.Open(ctx, f.bufferURL)
	if err != nil {
		t.Fatal(err)
	}
	purposes := map[layout.Purpose]int{}
	for tenant := uint64(1); tenant <= 2; tenant++ {
		objs, err := objstore.ListAll(ctx, buffer, layout.TenantBufferPrefix(1, tenant), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			b, err := buffer.Get(ctx, o.Key)
			if err != nil {
				continue // tenant 2's files are deleted once read
			}
			sealed := bytes.HasPrefix(b, []byte(crypt.Magic))
			if tenant == 1 {
				p, _, _ := layout.Classify(o.Key)
				purposes[p]++
				if !sealed || bytes.HasPrefix(b[len(crypt.Magic):], []byte("TS")) {
					t.Errorf("tenant 1's %s is not stored sealed (%q...)", o.Key, b[:min(len(b), 8)])
				}
			} else if sealed {
				t.Errorf("tenant 2's %s is sealed", o.Key)
			}
		}
	}
	t.Logf("tenant 1's buffer objects, all sealed: %v", purposes)
	if purposes[layout.PurposeStoreFile] == 0 || purposes[layout.PurposeBufferSchema] == 0 {
		t.Fatalf("tenant 1 has %v in the buffer: want store files and a schema snapshot", purposes)
	}

	// The dispatcher without a KMS says why tenant 1 does not move.
	d := f.first("dispatcher")
	want := []string{"tenant 1: open object", "with key " + ref, "without a KMS"}
	var log []byte
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		log, _ = os.ReadFile(d.p.out)
		ok := true
		for _, w := range want {
			ok = ok && bytes.Contains(log, []byte(w))
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dispatcher's log does not name tenant 1's sealed file and key within 60s:\n%s", tail(log, 4096))
		}
	}
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "without a KMS") {
			t.Logf("dispatcher without a KMS: %s", line)
			break
		}
	}

	// With the key directory, tenant 1 is served from its sealed files.
	f.kill(d)
	d.args = append(d.args, withKeys...)
	f.startMember(d)
	f.pullVerifyTenant(t, truthPath[1], 1, "pulled-1")
	f.pullVerifyTenant(t, truthPath[2], 2, "pulled-2-again")
}

// simTenants runs one simulator per tenant (4 s at 1,000 rows/s, seeded
// with the tenant id, registering it with 2 ranges) with its extra flags,
// and returns each tenant's truth file.
func (f *procFleet) simTenants(t *testing.T, meta string, extra map[uint64][]string) map[uint64]string {
	t.Helper()
	truthPath := map[uint64]string{}
	for tenant, flags := range extra {
		truthPath[tenant] = filepath.Join(f.dir, fmt.Sprintf("truth-%d.jsonl", tenant))
		run(t, 3*time.Minute, "", append(append([]string{"sim", "--store", f.bufferURL, "--meta", meta, "--truth", truthPath[tenant],
			"--tenants", "1", "--first-tenant", strconv.FormatUint(tenant, 10), "--seed", strconv.FormatUint(tenant, 10),
			"--duration", "4s", "--rows-per-sec", "1000", "--initial-ranges", "2", "--quiet"}, flags...), f.clients().upstream...)...)
	}
	return truthPath
}
