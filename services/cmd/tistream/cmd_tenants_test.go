package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/tenantcfg"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// TestPrintTenantTable: records without settings (written before settings
// existed) and with some print their effective values, the fleet's marked.
func TestPrintTenantTable(t *testing.T) {
	d := tenantcfg.DefaultDefaults()
	d.KEKRef = "local:fleet"
	resp := &metav1.ListTenantsResponse{
		Tenants: []*metav1.TenantInfo{
			{TenantId: 1, ClusterId: 1},
			{TenantId: 2, ClusterId: 1, SettingsGeneration: 2, State: metav1.TenantState_TENANT_STATE_DEREGISTERED, DeleteAfterUnixMs: 1000,
				Settings: &metav1.TenantSettings{RetentionMs: proto.Int64(0), Quotas: &metav1.TenantQuotas{MaxConcurrentPulls: proto.Uint32(3)}}},
		},
		FleetDefaults: d.Settings(), FleetDeregisterGraceMs: d.DeregisterGrace.Milliseconds(),
	}
	var b strings.Builder
	printTenants(&b, resp)
	out := b.String()
	lines := strings.Split(out, "\n")
	if len(lines) < 4 {
		t.Fatalf("output:\n%s", out)
	}
	for _, want := range []string{"24h0m0s*", "local:fleet*", "active"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("tenant 1 line %q lacks %q", lines[1], want)
		}
	}
	for _, want := range []string{"deregistered", "forever", "pulls=3 ", "1970-01-01T00:00:01Z"} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("tenant 2 line %q lacks %q", lines[2], want)
		}
	}
	if strings.Contains(lines[2], "forever*") || !strings.Contains(out, "* = the fleet default (deregister grace 24h0m0s)") {
		t.Errorf("marks wrong:\n%s", out)
	}
}

// TestSettingsFlags: only the flags given are set; bad numbers are refused.
func TestSettingsFlags(t *testing.T) {
	var sf settingsFlags
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sf.register(fs)
	if sf.given() != nil {
		t.Fatal("settings without flags")
	}
	if err := fs.Parse([]string{"--retention", "90m", "--max-ranges", "0", "--kek", ""}); err != nil {
		t.Fatal(err)
	}
	s := sf.given()
	if s.GetRetentionMs() != (90*time.Minute).Milliseconds() || s.Quotas.MaxRanges == nil || s.KekRef == nil || s.BufferUrl != nil || s.Quotas.PoolBytes != nil {
		t.Fatalf("%v", s)
	}
	if err := fs.Parse([]string{"--max-ranges", "-1"}); err == nil {
		t.Fatal("negative accepted")
	}
}
