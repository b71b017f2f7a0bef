package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

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
