package tenantcfg

import (
	"context"
	"flag"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/svc/svctest"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

func TestResolveFillsUnsetFromDefaults(t *testing.T) {
	d := DefaultDefaults()
	d.KEKRef = "local:fleet"
	d.Quotas.MaxConcurrentPulls = 8
	e := Resolve(&metav1.TenantInfo{TenantId: 7}, d)
	if e.Retention != 24*time.Hour || e.KEKRef != "local:fleet" || e.Quotas.MaxConcurrentPulls != 8 || !e.Active() {
		t.Fatalf("defaults not applied: %+v", e)
	}
	// Set fields win, including explicit zero and empty values.
	in := &metav1.TenantInfo{TenantId: 7, Settings: &metav1.TenantSettings{
		RetentionMs: proto.Int64(0), KekRef: proto.String(""),
		Quotas: &metav1.TenantQuotas{MaxConcurrentPulls: proto.Uint32(0), PullBytesPerSec: proto.Uint64(1 << 20)},
	}}
	e = Resolve(in, d)
	if e.Retention != 0 || e.KEKRef != "" || e.Quotas.MaxConcurrentPulls != 0 || e.Quotas.PullBytesPerSec != 1<<20 {
		t.Fatalf("tenant's own settings not applied: %+v", e)
	}
	in.State = metav1.TenantState_TENANT_STATE_DEREGISTERED
	if Resolve(in, d).Active() {
		t.Fatal("a deregistered tenant reads as active")
	}
}

func TestValidateNamesWhatIsWrong(t *testing.T) {
	for _, c := range []struct {
		s    *metav1.TenantSettings
		want string
	}{
		{&metav1.TenantSettings{BufferUrl: proto.String("ftp://x/y")}, "scheme"},
		{&metav1.TenantSettings{BufferUrl: proto.String("s3://key:secret@bucket/p")}, "credentials_ref"},
		{&metav1.TenantSettings{RetentionMs: proto.Int64(-1)}, "retention_ms -1"},
		{&metav1.TenantSettings{KekRef: proto.String("vault:x")}, "kek_ref \"vault:x\""},
		{&metav1.TenantSettings{KekRef: proto.String("local:../etc")}, "kek_ref"},
		{&metav1.TenantSettings{CredentialsRef: proto.String("a/b")}, "credentials_ref"},
	} {
		err := Validate(c.s)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%v) = %v, want an error containing %q", c.s, err, c.want)
		}
		if strings.Contains(errString(err), "secret") {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
	ok := &metav1.TenantSettings{BufferUrl: proto.String("s3://bucket/t7?region=us-east-1"), KekRef: proto.String("aws-kms:arn:aws:kms:us-east-1:1:key/abc"), RetentionMs: proto.Int64(3600000)}
	if err := Validate(ok); err != nil {
		t.Fatal(err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestUpdateMergesAndResets(t *testing.T) {
	cur := &metav1.TenantSettings{RetentionMs: proto.Int64(1000), KekRef: proto.String("local:a"),
		Quotas: &metav1.TenantQuotas{MaxRanges: proto.Uint32(4), PullBytesPerSec: proto.Uint64(10)}}
	out, err := Update(cur, &metav1.TenantSettings{KekRef: proto.String("local:b"), Quotas: &metav1.TenantQuotas{MaxConcurrentPulls: proto.Uint32(2)}},
		[]string{"retention_ms", "quotas.pull_bytes_per_sec"})
	if err != nil {
		t.Fatal(err)
	}
	if out.RetentionMs != nil || out.GetKekRef() != "local:b" || out.GetQuotas().MaxRanges == nil || out.GetQuotas().PullBytesPerSec != nil || out.GetQuotas().GetMaxConcurrentPulls() != 2 {
		t.Fatalf("update result %v", out)
	}
	if cur.GetKekRef() != "local:a" || cur.RetentionMs == nil {
		t.Fatal("Update modified its input")
	}
	if _, err := Update(cur, nil, []string{"quotas.nope"}); err == nil || !strings.Contains(err.Error(), `no field "nope"`) {
		t.Fatalf("unknown reset path: %v", err)
	}
	if _, err := Update(cur, &metav1.TenantSettings{RetentionMs: proto.Int64(-5)}, nil); err == nil {
		t.Fatal("an invalid update was accepted")
	}
}

func TestFlags(t *testing.T) {
	d := DefaultDefaults()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	RegisterFlags(fs, &d)
	if err := fs.Parse([]string{"-tenant-default-retention=2h", "-tenant-default-max-concurrent-pulls=3", "-tenant-default-kek=local:k"}); err != nil {
		t.Fatal(err)
	}
	if d.Retention != 2*time.Hour || d.Quotas.MaxConcurrentPulls != 3 || d.KEKRef != "local:k" {
		t.Fatalf("%+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"-tenant-default-max-ranges=-1"}); err == nil {
		t.Fatal("negative max ranges accepted")
	}
}

// TestWatcherFollowsEtcd: the watcher sees records written before and
// after it started, updates and deletes, and calls OnChange for each.
func TestWatcherFollowsEtcd(t *testing.T) {
	cli := svctest.Etcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put := func(in *metav1.TenantInfo) {
		t.Helper()
		if _, err := cli.Put(ctx, etcdx.TenantKey(in.TenantId), etcdx.Marshal(in)); err != nil {
			t.Fatal(err)
		}
	}
	put(&metav1.TenantInfo{TenantId: 1})
	d := DefaultDefaults()
	w := NewWatcher(cli, d, nil)
	w.log = testLogger(t)
	var mu sync.Mutex
	seen := map[uint64][]Effective{}
	w.OnChange(func(e Effective, exists bool) {
		mu.Lock()
		defer mu.Unlock()
		if !exists {
			e.State = -1
		}
		seen[e.Tenant] = append(seen[e.Tenant], e)
	})
	go w.Run(ctx)
	if err := w.WaitLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	if e, ok := w.Get(1); !ok || e.Retention != 24*time.Hour {
		t.Fatalf("tenant 1: %+v %v", e, ok)
	}
	put(&metav1.TenantInfo{TenantId: 2, SettingsGeneration: 1, Settings: &metav1.TenantSettings{RetentionMs: proto.Int64(60000)}})
	put(&metav1.TenantInfo{TenantId: 1, SettingsGeneration: 2, State: metav1.TenantState_TENANT_STATE_DEREGISTERED, DeleteAfterUnixMs: 5000})
	if _, err := cli.Delete(ctx, etcdx.TenantKey(2)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n1, n2 := len(seen[1]), len(seen[2])
		mu.Unlock()
		if n1 >= 2 && n2 >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("changes not seen: %v", seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen[2][0].Retention != time.Minute || seen[2][1].State != -1 {
		t.Fatalf("tenant 2 changes: %+v", seen[2])
	}
	if e := seen[1][1]; e.Active() || e.DeleteAfter.UnixMilli() != 5000 || e.Generation != 2 {
		t.Fatalf("tenant 1 deregistration: %+v", e)
	}
	if _, ok := w.Get(2); ok {
		t.Fatal("deleted tenant still known")
	}
	if e := w.Settings(2); e.Retention != 24*time.Hour {
		t.Fatalf("unknown tenant does not get the defaults: %+v", e)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestDefaultsAsSettings: the defaults survive the round trip through
// settings (ListTenants), and resolve to themselves.
func TestDefaultsAsSettings(t *testing.T) {
	d := DefaultDefaults()
	d.KEKRef, d.BufferURL, d.Quotas.MaxRanges, d.Quotas.PullBytesPerSec = "local:k", "s3://b/p", 7, 9
	if got := DefaultsOf(d.Settings(), d.DeregisterGrace); got != d {
		t.Fatalf("round trip: %+v != %+v", got, d)
	}
	if err := Validate(d.Settings()); err != nil {
		t.Fatal(err)
	}
}
