package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/tenantcfg"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// The tenant subcommands of tistream admin (docs/tenants.md).
const adminTenantsUsage = `usage: tistream admin <tenants|register|update-tenant|deregister> --meta host:port [flags]

  tenants                                      every tenant: state and effective settings (* = the fleet default)
  register --cluster C --tenant N [settings] [--initial-ranges K]
                                               register a tenant (its schema snapshot must be in the buffer)
  update-tenant --tenant N [settings] [--reset field,...]
                                               change a tenant's settings without a restart; --reset puts
                                               fields back to the fleet default (retention_ms, kek_ref,
                                               buffer_url, credentials_ref, quotas, quotas.max_ranges, ...)
  deregister --tenant N [--grace D]            offboard a tenant: stop its streams and ranges and refuse its
                                               pulls now, delete all its data after the grace period
                                               (default: the fleet's)

settings: --buffer URL --credentials-ref NAME --retention D (0 = keep forever) --kek REF
          --ingest-rows-per-sec N --ingest-bytes-per-sec N --pool-bytes N --max-ranges N
          --max-concurrent-pulls N --pull-bytes-per-sec N (quotas: 0 = unlimited)

Add --json for machine-readable output.
`

// isTenantsSubcommand reports whether runAdminTenants serves sub.
func isTenantsSubcommand(sub string) bool {
	switch sub {
	case "tenants", "register", "update-tenant", "deregister":
		return true
	}
	return false
}

// settingsFlags collect the settings given on the command line: only the
// flags given are set.
type settingsFlags struct{ s metav1.TenantSettings }

func (f *settingsFlags) quotas() *metav1.TenantQuotas {
	if f.s.Quotas == nil {
		f.s.Quotas = &metav1.TenantQuotas{}
	}
	return f.s.Quotas
}

func (f *settingsFlags) register(fs *flag.FlagSet) {
	fs.Func("buffer", "the tenant's data change buffer URL (\"\" = the fleet's)", func(v string) error { f.s.BufferUrl = &v; return nil })
	fs.Func("credentials-ref", "the name of the buffer's credentials in the fleet's credentials file", func(v string) error { f.s.CredentialsRef = &v; return nil })
	fs.Func("retention", "committed data retention (0 = keep forever)", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		f.s.RetentionMs = proto.Int64(d.Milliseconds())
		return nil
	})
	fs.Func("kek", "key-encryption key (local:NAME or aws-kms:ID; \"\" = not encrypted)", func(v string) error { f.s.KekRef = &v; return nil })
	u64 := func(name, help string, set func(*metav1.TenantQuotas, uint64)) {
		fs.Func(name, help, func(v string) error {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a non-negative integer", v)
			}
			set(f.quotas(), n)
			return nil
		})
	}
	u32 := func(name, help string, set func(*metav1.TenantQuotas, uint32)) {
		fs.Func(name, help, func(v string) error {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return fmt.Errorf("%q is not an integer of 0..%d", v, uint32(1<<32-1))
			}
			set(f.quotas(), uint32(n))
			return nil
		})
	}
	u64("ingest-rows-per-sec", "quota: row events ingested per second (0 = unlimited)", func(q *metav1.TenantQuotas, n uint64) { q.IngestRowsPerSec = &n })
	u64("ingest-bytes-per-sec", "quota: bytes ingested per second (0 = unlimited)", func(q *metav1.TenantQuotas, n uint64) { q.IngestBytesPerSec = &n })
	u64("pool-bytes", "quota: committed data pool bytes (0 = unlimited)", func(q *metav1.TenantQuotas, n uint64) { q.PoolBytes = &n })
	u32("max-ranges", "quota: ranges (0 = unlimited)", func(q *metav1.TenantQuotas, n uint32) { q.MaxRanges = &n })
	u32("max-concurrent-pulls", "quota: pulls served at once (0 = unlimited)", func(q *metav1.TenantQuotas, n uint32) { q.MaxConcurrentPulls = &n })
	u64("pull-bytes-per-sec", "quota: pull bandwidth in bytes per second (0 = unlimited)", func(q *metav1.TenantQuotas, n uint64) { q.PullBytesPerSec = &n })
}

// given returns the settings given, nil when none.
func (f *settingsFlags) given() *metav1.TenantSettings {
	if proto.Size(&f.s) == 0 && f.s.Quotas == nil {
		return nil
	}
	return &f.s
}

// runAdminTenants is `tistream admin tenants|register|update-tenant|deregister`.
func runAdminTenants(ctx context.Context, sub string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("admin "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminTenantsUsage); fs.PrintDefaults() }
	meta := fs.String("meta", "127.0.0.1:7100", "the meta-server's gRPC address (any member)")
	asJSON := fs.Bool("json", false, "print JSON")
	callTimeout, what := 10*time.Second, "timeout of the call"
	if sub == "register" {
		callTimeout, what = registerTimeout, "timeout of the call (the meta-server reads and checks the tenant's schema snapshot: ~10 s at 1,000,000 tables)"
	}
	timeout := fs.Duration("timeout", callTimeout, what)
	tenant := fs.Uint64("tenant", 0, "tenant id")
	cluster := fs.Uint64("cluster", 0, "register: the tenant's upstream cluster id")
	initial := fs.Uint("initial-ranges", 0, "register: ranges to start with (0 = the meta-server's --initial-ranges)")
	reset := fs.String("reset", "", "update-tenant: comma-separated settings to put back to the fleet default")
	grace := fs.String("grace", "", "deregister: how long the data is kept (default: the fleet's --tenant-default-deregister-grace)")
	var sf settingsFlags
	if sub == "register" || sub == "update-tenant" {
		sf.register(fs)
	}
	var cc clientCreds
	cc.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(msg string) int {
		fmt.Fprintf(stderr, "tistream admin %s: %s\n\n%s", sub, msg, adminTenantsUsage)
		return 2
	}
	if fs.NArg() > 0 {
		return usageErr(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	var call func(metav1.MetaServiceClient, context.Context) (proto.Message, error)
	switch sub {
	case "tenants":
		call = func(c metav1.MetaServiceClient, ctx context.Context) (proto.Message, error) {
			return c.ListTenants(ctx, &metav1.ListTenantsRequest{})
		}
	case "register":
		if *tenant == 0 || *cluster == 0 {
			return usageErr("--cluster and --tenant are required")
		}
		if *initial > 1<<16 {
			return usageErr("--initial-ranges is too large")
		}
		req := &metav1.RegisterTenantRequest{ClusterId: *cluster, TenantId: *tenant, InitialRanges: uint32(*initial), Settings: sf.given()}
		call = func(c metav1.MetaServiceClient, ctx context.Context) (proto.Message, error) {
			return c.RegisterTenant(ctx, req)
		}
	case "update-tenant":
		req := &metav1.UpdateTenantRequest{TenantId: *tenant, Settings: sf.given()}
		for _, p := range strings.Split(*reset, ",") {
			if p = strings.TrimSpace(p); p != "" {
				req.Reset_ = append(req.Reset_, p)
			}
		}
		if *tenant == 0 || (req.Settings == nil && len(req.Reset_) == 0) {
			return usageErr("--tenant and at least one setting or --reset are required")
		}
		call = func(c metav1.MetaServiceClient, ctx context.Context) (proto.Message, error) {
			return c.UpdateTenant(ctx, req)
		}
	case "deregister":
		if *tenant == 0 {
			return usageErr("--tenant is required")
		}
		req := &metav1.DeregisterTenantRequest{TenantId: *tenant}
		if *grace != "" {
			d, err := time.ParseDuration(*grace)
			if err != nil || d < 0 {
				return usageErr(fmt.Sprintf("--grace %q is not a non-negative duration", *grace))
			}
			req.GraceMs = proto.Int64(d.Milliseconds())
		}
		call = func(c metav1.MetaServiceClient, ctx context.Context) (proto.Message, error) {
			return c.DeregisterTenant(ctx, req)
		}
	}
	conn, err := cc.dialMeta(*meta)
	if err != nil {
		fmt.Fprintf(stderr, "tistream admin: %v\n", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, err := call(metav1.NewMetaServiceClient(conn), ctx)
	return adminOutput(sub, resp, err, *asJSON, stdout, stderr, printTenants) // cmd_admin.go
}

func printTenants(w io.Writer, resp proto.Message) {
	switch r := resp.(type) {
	case *metav1.ListTenantsResponse:
		printTenantTable(w, r.Tenants, r.FleetDefaults, r.FleetDeregisterGraceMs)
	case *metav1.RegisterTenantResponse:
		if r.Created {
			fmt.Fprintf(w, "tenant %d registered\n", r.Tenant.GetTenantId())
		} else {
			fmt.Fprintf(w, "tenant %d was registered already (its settings are unchanged: use update-tenant)\n", r.Tenant.GetTenantId())
		}
		printOwnSettings(w, r.Tenant)
	case *metav1.UpdateTenantResponse:
		fmt.Fprintf(w, "tenant %d settings changed (generation %d)\n", r.Tenant.GetTenantId(), r.Tenant.GetSettingsGeneration())
		printOwnSettings(w, r.Tenant)
	case *metav1.DeregisterTenantResponse:
		t := r.Tenant
		fmt.Fprintf(w, "tenant %d deregistered at %s: its streams and ranges are stopped and its pulls refused; all its data is deleted after %s\n",
			t.GetTenantId(), fmtUnixMs(t.GetDeregisteredUnixMs()), fmtUnixMs(t.GetDeleteAfterUnixMs()))
	}
}

// printOwnSettings prints the settings a tenant chose itself.
func printOwnSettings(w io.Writer, t *metav1.TenantInfo) {
	if proto.Size(t.GetSettings()) == 0 {
		fmt.Fprintln(w, "its own settings: none (every setting is the fleet default; see admin tenants)")
		return
	}
	b, _ := protojson.Marshal(t.GetSettings())
	fmt.Fprintf(w, "its own settings (the others are the fleet default; see admin tenants): %s\n", b)
}

// printTenantTable prints the tenants with their effective settings;
// values that are the fleet default are marked with * (when the defaults
// are known: ListTenants gives them).
func printTenantTable(w io.Writer, tenants []*metav1.TenantInfo, fleet *metav1.TenantSettings, graceMs int64) {
	if fleet == nil { // a meta-server from before fleet defaults were listed
		fmt.Fprintln(w, "(the meta-server does not say its fleet defaults: unset settings show as zero)")
	}
	d := tenantcfg.DefaultsOf(fleet, time.Duration(graceMs)*time.Millisecond)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tCLUSTER\tSTATE\tGEN\tRETENTION\tKEK\tBUFFER\tQUOTAS\tREGISTERED\tDELETE AFTER")
	for _, t := range tenants {
		e := tenantcfg.Resolve(t, d)
		s, q := t.GetSettings(), t.GetSettings().GetQuotas()
		if s == nil {
			s = &metav1.TenantSettings{}
		}
		if q == nil {
			q = &metav1.TenantQuotas{}
		}
		mark := func(own bool, v string) string {
			if !own {
				return v + "*"
			}
			return v
		}
		buffer := e.BufferURL
		if buffer == "" {
			buffer = "(fleet --buffer)"
		}
		if e.CredentialsRef != "" {
			buffer += " creds=" + e.CredentialsRef
		}
		quotas := []string{
			mark(q.IngestRowsPerSec != nil, "ingest_rows/s="+limit(e.Quotas.IngestRowsPerSec)),
			mark(q.IngestBytesPerSec != nil, "ingest_bytes/s="+limit(e.Quotas.IngestBytesPerSec)),
			mark(q.PoolBytes != nil, "pool_bytes="+limit(e.Quotas.PoolBytes)),
			mark(q.MaxRanges != nil, "ranges="+limit(uint64(e.Quotas.MaxRanges))),
			mark(q.MaxConcurrentPulls != nil, "pulls="+limit(uint64(e.Quotas.MaxConcurrentPulls))),
			mark(q.PullBytesPerSec != nil, "pull_bytes/s="+limit(e.Quotas.PullBytesPerSec)),
		}
		retention := "forever"
		if e.Retention > 0 {
			retention = e.Retention.String()
		}
		deleteAfter := "-"
		if !e.Active() {
			deleteAfter = fmtUnixMs(t.DeleteAfterUnixMs)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", t.TenantId, t.ClusterId, tenantState(t.State), t.SettingsGeneration,
			mark(s.RetentionMs != nil, retention), mark(s.KekRef != nil, orDash(e.KEKRef)), mark(s.BufferUrl != nil || s.CredentialsRef != nil, buffer),
			strings.Join(quotas, " "), fmtUnixMs(t.RegisteredUnixMs), deleteAfter)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n* = the fleet default (deregister grace %s)\n", time.Duration(graceMs)*time.Millisecond)
}

func limit(n uint64) string {
	if n == 0 {
		return "∞"
	}
	return strconv.FormatUint(n, 10)
}

func tenantState(s metav1.TenantState) string {
	switch s {
	case metav1.TenantState_TENANT_STATE_DEREGISTERED:
		return "deregistered"
	case metav1.TenantState_TENANT_STATE_DELETING:
		return "deleting"
	}
	return "active"
}

func fmtUnixMs(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}
