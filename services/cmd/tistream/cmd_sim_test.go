package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"

	"google.golang.org/protobuf/proto"

	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// TestSimTenantSettings: `tistream sim --meta` registers the tenants with
// exactly the settings given (none: the fleet's defaults), and the flags
// that register are refused without --meta.
func TestSimTenantSettings(t *testing.T) {
	if s := simTenantSettings("", "", ""); s != nil {
		t.Fatalf("no flags: settings %v, want nil (the fleet's defaults)", s)
	}
	url, ref, kek := "s3://b/p?endpoint=http://127.0.0.1:9000", "tenant-2", "local:k"
	for _, c := range []struct {
		kek, url, ref string
		want          *metav1.TenantSettings
	}{
		{kek: kek, want: &metav1.TenantSettings{KekRef: &kek}},
		{url: url, ref: ref, want: &metav1.TenantSettings{BufferUrl: &url, CredentialsRef: &ref}},
		{kek: kek, url: url, want: &metav1.TenantSettings{KekRef: &kek, BufferUrl: &url}},
	} {
		if got := simTenantSettings(c.kek, c.url, c.ref); !proto.Equal(got, c.want) {
			t.Errorf("simTenantSettings(%q, %q, %q) = %v, want %v", c.kek, c.url, c.ref, got, c.want)
		}
	}
	for _, flag := range []string{"--buffer-url", "--credentials-ref", "--kek"} {
		var stdout, stderr bytes.Buffer
		code := runSim(context.Background(), []string{"--store", "mem://", flag, "x"}, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "they need --meta") {
			t.Errorf("sim %s without --meta: exit %d, stderr %q; want 2 and the need for --meta", flag, code, stderr.String())
		}
	}
}

// TestSimEncryptBuffer: `tistream sim --encrypt-buffer-kek` writes every
// buffer file (store files and schema snapshots) as an envelope under the
// key, and the files opened through the fleet's buffer view
// (crypt.WrapBuffer) are byte for byte those of the same seed without the
// flag, with the same truth: sealing changes nothing else. The flag is
// refused without a KMS.
func TestSimEncryptBuffer(t *testing.T) {
	ctx := context.Background()
	keyDir := t.TempDir()
	ref, err := crypt.CreateLocalKey(keyDir, "upstream")
	if err != nil {
		t.Fatal(err)
	}
	run := func(extra ...string) (dir string, truth []byte) {
		t.Helper()
		dir = t.TempDir()
		truthPath := filepath.Join(dir, "truth.jsonl")
		args := append([]string{"--store", "file://" + filepath.Join(dir, "store"), "--truth", truthPath, "--quiet",
			"--tenants", "2", "--stores", "2", "--duration", "3s", "--rows-per-sec", "300", "--seed", "7"}, extra...)
		var stdout, stderr bytes.Buffer
		if code := runSim(ctx, args, &stdout, &stderr); code != 0 {
			t.Fatalf("sim %v: exit %d: %s", extra, code, stderr.String())
		}
		truth, err := os.ReadFile(truthPath)
		if err != nil {
			t.Fatal(err)
		}
		return filepath.Join(dir, "store"), truth
	}
	plainDir, plainTruth := run()
	sealedDir, sealedTruth := run("--encrypt-buffer-kek", ref, "--key-dir", keyDir)
	if !bytes.Equal(plainTruth, sealedTruth) {
		t.Fatal("the truth differs with --encrypt-buffer-kek")
	}
	plain, err := objstore.Open(ctx, "file://"+plainDir)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := objstore.Open(ctx, "file://"+sealedDir)
	if err != nil {
		t.Fatal(err)
	}
	local, err := crypt.NewLocalKMS(keyDir)
	if err != nil {
		t.Fatal(err)
	}
	view, err := crypt.WrapBuffer(raw, local, crypt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := objstore.ListAll(ctx, plain, layout.BufferRoot, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := objstore.ListAll(ctx, raw, layout.BufferRoot, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("%d sealed objects, %d plaintext ones", len(got), len(want))
	}
	kinds := map[layout.Purpose]int{}
	for i, o := range want {
		if got[i].Key != o.Key {
			t.Fatalf("object %d: %s sealed, %s plaintext", i, got[i].Key, o.Key)
		}
		p, _, _ := layout.Classify(o.Key)
		kinds[p]++
		stored, err := raw.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		if string(stored[:4]) != crypt.Magic {
			t.Fatalf("%s is stored as %q..., not an envelope", o.Key, stored[:4])
		}
		opened, err := view.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		orig, err := plain.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(opened, orig) {
			t.Fatalf("%s opens to other bytes than the plaintext run's", o.Key)
		}
	}
	if kinds[layout.PurposeStoreFile] == 0 || kinds[layout.PurposeBufferSchema] == 0 {
		t.Fatalf("objects by kind %v: want store files and schema snapshots", kinds)
	}

	var stdout, stderr bytes.Buffer
	if code := runSim(ctx, []string{"--store", "mem://", "--encrypt-buffer-kek", ref}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "needs a KMS") {
		t.Errorf("--encrypt-buffer-kek without a KMS: exit %d, stderr %q", code, stderr.String())
	}
}
