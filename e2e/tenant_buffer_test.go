//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/objstore/s3test"
)

// TestTenantOwnBuffer (docs/tenants.md, "The tenant's own buffer"): two
// tenants of one process fleet, each pushing into its own data change
// buffer. Tenant 1 uses the fleet's --buffer; tenant 2 is registered (by
// `tistream sim --buffer-url --credentials-ref`) with a second bucket of the
// same S3 server whose URL carries no credentials: the services can sign
// for it only with the [tenant-2] profile of the fleet's
// --tenant-credentials-file (the AWS chain of every process finds wrong
// keys, and registering the same URL without the profile, or with a profile
// the file lacks, is refused). Both pulls verify against their own truth;
// tenant 2's objects are in its bucket and none in the fleet's buffer (and
// the reverse for tenant 1). Tenant 2 deregistered with a 2 s grace: after
// the grace its prefix in its own bucket is empty, and tenant 1 still
// verifies.
func TestTenantOwnBuffer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole fleet")
	}
	dir := t.TempDir()
	// The fleet's tenant credentials file: [tenant-2] is added once the S3
	// server's keys are known (the services read the file when they first
	// open a tenant's buffer). Its [default] keys are wrong, and every
	// process's AWS chain reads it (the processes inherit the environment),
	// so a tenant buffer without credentials_ref cannot be signed for.
	credsFile := filepath.Join(dir, "tenant-credentials")
	const wrongDefault = "[default]\naws_access_key_id = wrongkey\naws_secret_access_key = wrong-secret-0000\n"
	if err := os.WriteFile(credsFile, []byte(wrongDefault), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credsFile)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-aws-config"))
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	extra := map[string][]string{}
	for _, kind := range []string{"meta-server", "dispatcher", "sorter", "schema-registry", "api-server"} {
		extra[kind] = []string{"--tenant-credentials-file", credsFile}
	}
	extra["meta-server"] = append(extra["meta-server"], "--offboard-interval", "500ms")
	f := startProcFleet(t, procFleetOptions{Metas: 1, Sorters: 2, Dispatchers: 1, Extra: extra})
	meta, cl := f.first("meta-server").grpcAddr, f.clients()
	if err := os.WriteFile(credsFile, []byte(wrongDefault+fmt.Sprintf("\n[tenant-2]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		f.s3.AccessKey, f.s3.SecretKey)), 0o600); err != nil {
		t.Fatal(err)
	}

	// Tenant 2's bucket: the URL it registers with names no credentials;
	// the simulator (its upstream) writes there with its own copy of them.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const bucket2 = "tenant-2-buffer"
	createBucket(ctx, t, f.s3, bucket2)
	q := url.Values{"endpoint": {f.s3.Endpoint}, "region": {s3test.Region}}
	buffer2 := (&url.URL{Scheme: "s3", Host: bucket2, Path: "/t2", RawQuery: q.Encode()}).String()
	q.Set("credentials_file", f.s3.CredentialsFile)
	upstream2 := (&url.URL{Scheme: "s3", Host: bucket2, Path: "/t2", RawQuery: q.Encode()}).String()

	// The profile is what makes the bucket work: the same URL without
	// credentials_ref, or with a profile the file lacks, is refused.
	for _, c := range []struct{ ref, want string }{{"", `access key id "wrongkey" were rejected`}, {"tenant-9", "no [tenant-9] profile"}} {
		args := []string{"admin", "register", "--meta", meta, "--cluster", "1", "--tenant", "3", "--buffer", buffer2}
		if c.ref != "" {
			args = append(args, "--credentials-ref", c.ref)
		}
		out, err := runOutput(time.Minute, append(args, cl.admin...)...)
		if err == nil || !strings.Contains(out, "FailedPrecondition") || !strings.Contains(out, "tenant 3: its data change buffer") || !strings.Contains(out, c.want) {
			t.Fatalf("register tenant 3 in %s with credentials_ref %q: err %v, want FAILED_PRECONDITION naming the tenant and %q:\n%s", bucket2, c.ref, err, c.want, out)
		}
		t.Logf("credentials_ref %q refused: %s", c.ref, strings.TrimSpace(out))
	}

	// One simulator per tenant, at the same time, each into its own buffer.
	truthPath := map[uint64]string{}
	sims := map[uint64]*proc{}
	for tenant, own := range map[uint64][]string{
		1: {"--store", f.bufferURL},
		2: {"--store", upstream2, "--buffer-url", buffer2, "--credentials-ref", "tenant-2"},
	} {
		id := strconv.FormatUint(tenant, 10)
		truthPath[tenant] = filepath.Join(f.dir, "truth-"+id+".jsonl")
		sims[tenant] = start(t, "sim-"+id, append(append([]string{"sim", "--meta", meta, "--truth", truthPath[tenant],
			"--tenants", "1", "--first-tenant", id, "--seed", id,
			"--duration", "4s", "--rows-per-sec", "1000", "--initial-ranges", "2", "--quiet"}, own...), cl.upstream...)...)
	}
	for tenant, p := range sims {
		select {
		case <-p.exited:
		case <-time.After(2 * time.Minute):
			t.Fatalf("the simulator of tenant %d did not finish within 2 minutes", tenant)
		}
		if p.err != nil {
			b, _ := os.ReadFile(p.out)
			t.Fatalf("the simulator of tenant %d: %v\n%s", tenant, p.err, tail(b, 4096))
		}
	}

	pullVerify := func(tenant uint64, name string) { t.Helper(); f.pullVerifyTenant(t, truthPath[tenant], tenant, name) }
	pullVerify(1, "pulled-1")
	pullVerify(2, "pulled-2")

	// Each tenant's objects are in its own buffer and not in the other.
	fleetBuf, err := objstore.Open(ctx, f.bufferURL)
	if err != nil {
		t.Fatal(err)
	}
	ownBuf, err := objstore.Open(ctx, upstream2)
	if err != nil {
		t.Fatal(err)
	}
	keys := func(st objstore.Store, tenant uint64) []string {
		t.Helper()
		objs, err := objstore.ListAll(ctx, st, layout.TenantBufferPrefix(1, tenant), "")
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, len(objs))
		for i, o := range objs {
			out[i] = o.Key
		}
		return out
	}
	if k := keys(fleetBuf, 2); len(k) != 0 {
		t.Errorf("tenant 2 has %d objects in the fleet's buffer, want none: %v", len(k), k[:min(len(k), 5)])
	}
	if k := keys(ownBuf, 1); len(k) != 0 {
		t.Errorf("tenant 1 has %d objects in tenant 2's buffer, want none: %v", len(k), k[:min(len(k), 5)])
	}
	own2 := keys(ownBuf, 2)
	purposes := map[layout.Purpose]int{}
	for _, k := range own2 {
		p, _, _ := layout.Classify(k)
		purposes[p]++
	}
	t.Logf("tenant 2's buffer %s after the pulls: %d objects, by purpose %v (store files behind the checkpoint are deleted)", bucket2, len(own2), purposes)
	if purposes[layout.PurposeBufferSchema] == 0 {
		t.Errorf("tenant 2's schema snapshot is not in its own buffer: %v", own2)
	}
	if k := keys(fleetBuf, 1); len(k) == 0 {
		t.Error("tenant 1 has no object in the fleet's buffer")
	}
	// The dispatcher deleted tenant 2's store files behind its checkpoint:
	// it read them from, and deleted them in, tenant 2's bucket.
	if n := metricSum(metrics(t, f.first("dispatcher").httpAddr), "tistream_dispatcher_files_deleted_total", `tenant="2"`); n == 0 {
		t.Error("the dispatcher deleted no store file of tenant 2")
	} else {
		t.Logf("the dispatcher deleted %v store files of tenant 2", n)
	}

	// Tenant 2 deregistered: after the grace its prefix in its own bucket
	// is empty; tenant 1 still verifies.
	grace := 2 * time.Second
	run(t, time.Minute, "", append([]string{"admin", "deregister", "--meta", meta, "--tenant", "2", "--grace", grace.String()}, cl.admin...)...)
	deregistered := time.Now()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		k := keys(ownBuf, 2)
		if len(k) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tenant 2's buffer prefix not empty %v after its deregistration (grace %v): %d objects left, e.g. %v",
				time.Since(deregistered), grace, len(k), k[:min(len(k), 5)])
		}
	}
	if took := time.Since(deregistered); took < grace {
		t.Fatalf("tenant 2's buffer emptied after %v, before its grace of %v", took, grace)
	} else {
		t.Logf("tenant 2's buffer emptied %v after its deregistration", took.Round(100*time.Millisecond))
	}
	pullVerify(1, "pulled-1-after")
}

// pullVerifyTenant pulls tenant through the fleet's api-server until it is
// resolved past the end of its truth, into name.jsonl, and verifies the
// pull against the truth.
func (f *procFleet) pullVerifyTenant(t *testing.T, truthPath string, tenant uint64, name string) {
	t.Helper()
	end, _, _ := truthEnd(t, truthPath)
	id := strconv.FormatUint(tenant, 10)
	pulled := filepath.Join(f.dir, name+".jsonl")
	run(t, 3*time.Minute, pulled, append([]string{"pull", "--api", f.first("api-server").grpcAddr, "--tenant", id,
		"--until-resolved", strconv.FormatUint(end, 10), "--timeout", "150s"}, f.clients().admin...)...)
	run(t, time.Minute, "", "verify", "--truth", truthPath, "--pulled", pulled, "--tenant", id)
}

// createBucket makes another bucket on the test's S3 server.
func createBucket(ctx context.Context, t *testing.T, s *s3test.Server, name string) {
	t.Helper()
	client := s3.New(s3.Options{
		Region:       s3test.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// metricSum adds up the samples of the metric name whose labels contain
// label, in a Prometheus text exposition.
func metricSum(exposition, name, label string) float64 {
	sum := 0.0
	for _, line := range strings.Split(exposition, "\n") {
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok || !strings.Contains(rest, label) {
			continue
		}
		fields := strings.Fields(rest)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}
