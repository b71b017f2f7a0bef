package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"

	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

const adminUsageUsage = `usage: tistream admin usage --meta host:port --tenant N [--from T] [--to T] [--json]

A tenant's usage per hour (docs/tenants.md, "Metering"): rows and bytes
ingested, object-store requests made on its behalf, rows and bytes served
to pullers, pull-seconds, and stored bytes by class. Hours not rolled up yet
are marked provisional (*).

--from and --to take RFC 3339 (2026-12-04T10:00:00Z), a date (2026-12-04),
"now", or a time relative to now (-2h, -30m, -1h30m). Defaults: the last 24
hours.

An offboarded tenant's usage is kept in the usage archive (docs/tenants.md,
"Offboarding") and answered from it when the id is not registered; for an id
registered again, --archived reads its earlier incarnations'.
`

// runAdminUsage is `tistream admin usage`.
func runAdminUsage(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("admin usage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminUsageUsage); fs.PrintDefaults() }
	meta := fs.String("meta", "127.0.0.1:7100", "the meta-server's gRPC address")
	asJSON := fs.Bool("json", false, "print JSON")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of the call")
	tenant := fs.Uint64("tenant", 0, "tenant id")
	from := fs.String("from", "-24h", "the first hour (RFC 3339, a date, now, or relative like -2h)")
	to := fs.String("to", "now", "the end, exclusive (same forms)")
	archived := fs.Bool("archived", false, "read the usage archive: the hours of the id's offboarded incarnations")
	var cc clientCreds
	cc.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	now := time.Now()
	fromT, err := parseWhen(*from, now)
	if err == nil && *tenant == 0 {
		err = errors.New("--tenant is required")
	}
	var toT time.Time
	if err == nil {
		toT, err = parseWhen(*to, now)
	}
	if err == nil && !toT.After(fromT) {
		err = fmt.Errorf("--to (%s) must be after --from (%s)", toT.Format(time.RFC3339), fromT.Format(time.RFC3339))
	}
	if err != nil {
		fmt.Fprintf(stderr, "tistream admin usage: %v\n\n%s", err, adminUsageUsage)
		return 2
	}
	conn, err := cc.dialMeta(*meta)
	if err != nil {
		fmt.Fprintf(stderr, "tistream admin usage: %v\n", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, err := metav1.NewMetaServiceClient(conn).GetUsage(ctx, &metav1.GetUsageRequest{
		TenantId: *tenant, FromUnixMs: fromT.UnixMilli(), ToUnixMs: toT.UnixMilli(), Archived: *archived})
	return adminOutput("usage", resp, err, *asJSON, stdout, stderr, func(w io.Writer, m proto.Message) { // cmd_admin.go
		printUsage(w, m.(*metav1.GetUsageResponse))
	})
}

// parseWhen reads a --from/--to value.
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "now":
		return now, nil
	case s[0] == '-' || s[0] == '+':
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, fmt.Errorf("time %q: a relative time is a Go duration such as -2h or -90m", s)
		}
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-12-04T10:00:00Z), a date (2026-12-04), now, or relative (-2h)", s)
}

// printUsage prints one line per hour and the total.
func printUsage(w io.Writer, r *metav1.GetUsageResponse) {
	classes := map[string]bool{}
	for _, h := range r.Hours {
		for c := range h.Counts.GetStoredBytes() {
			classes[c] = true
		}
	}
	cls := make([]string, 0, len(classes))
	for c := range classes {
		cls = append(cls, c)
	}
	slices.Sort(cls)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	defer tw.Flush()
	head := "HOUR (UTC)\tINGESTED ROWS\tINGESTED BYTES\tPUT\tGET\tLIST\tDELETE\tSERVED ROWS\tSERVED BYTES\tPULL SECONDS"
	for _, c := range cls {
		head += "\tSTORED " + strings.ToUpper(c)
	}
	fmt.Fprintln(tw, head+"\t")
	line := func(label string, c *metav1.UsageCounts) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f", label, c.GetIngestedRows(), c.GetIngestedBytes(),
			c.GetPutRequests(), c.GetGetRequests(), c.GetListRequests(), c.GetDeleteRequests(),
			c.GetServedRows(), c.GetServedBytes(), float64(c.GetPullMillis())/1000)
		for _, cl := range cls {
			fmt.Fprintf(tw, "\t%d", c.GetStoredBytes()[cl])
		}
		fmt.Fprintln(tw, "\t")
	}
	for _, h := range r.Hours {
		label := time.UnixMilli(h.HourUnixMs).UTC().Format("2006-01-02 15:00")
		if !h.Final {
			label += " *"
		}
		line(label, h.Counts)
	}
	line("TOTAL", r.GetTotal())
}
