package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func init() {
	register(command{name: "admin", summary: "operate a running fleet through the meta-server: tenants, tasks, split, merge, drain", run: runAdmin})
}

const adminUsage = `usage: tistream admin <subcommand> --meta host:port [flags]

subcommands:
  tenants                                      tenants: state and effective settings (* = fleet default)
  register, update-tenant, deregister          tenant settings and offboarding (tistream admin tenants -h)
  tasks  --tenant N                            a tenant's ranges (owner, watermark, lag, reported load) and store streams (owner, checkpoint, pending files)
  split  --tenant N --range R --key HEX        split range R at a key (hex of the encoded TiDB key)
  merge  --tenant N --left L --right R         merge two adjacent ranges
  drain  --worker ID [--kind sorter|dispatcher] [--cancel]
                                               move every task away from a worker and assign it none (until it
                                               stops; --cancel withdraws the request)
  usage  --tenant N [--from T] [--to T]       a tenant's usage per hour (tistream admin usage -h)

Add --json for machine-readable output.
`

func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, adminUsage)
		return 0
	}
	sub := args[0]
	if sub == "usage" {
		return runAdminUsage(ctx, args[1:], stdout, stderr) // cmd_usage.go
	}
	if isTenantsSubcommand(sub) {
		return runAdminTenants(ctx, sub, args[1:], stdout, stderr) // cmd_tenants.go
	}
	fs := flag.NewFlagSet("admin "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	meta := fs.String("meta", "127.0.0.1:7100", "the meta-server's gRPC address (any member, or a Service in front of them: a standby forwards to the leader)")
	asJSON := fs.Bool("json", false, "print JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "timeout of the call")
	tenant := fs.Uint64("tenant", 0, "tenant id")
	rangeID := fs.Uint64("range", 0, "split: the range to split")
	key := fs.String("key", "", "split: the split key, hex")
	left := fs.Uint64("left", 0, "merge: the left range")
	right := fs.Uint64("right", 0, "merge: the right range")
	worker := fs.String("worker", "", "drain: the worker id")
	kind := fs.String("kind", "sorter", "drain: the worker's kind (sorter, dispatcher)")
	cancelDrain := fs.Bool("cancel", false, "drain: withdraw the drain request")
	var cc clientCreds
	cc.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(msg string) int {
		fmt.Fprintf(stderr, "tistream admin %s: %s\n\n%s", sub, msg, adminUsage)
		return 2
	}
	conn, err := cc.dialMeta(*meta)
	if err != nil {
		fmt.Fprintf(stderr, "tistream admin: %v\n", err)
		return 1
	}
	defer conn.Close()
	c := metav1.NewMetaServiceClient(conn)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var resp proto.Message
	switch sub {
	case "tasks":
		if *tenant == 0 {
			return usageErr("--tenant is required")
		}
		resp, err = c.ListTasks(ctx, &metav1.ListTasksRequest{TenantId: *tenant})
	case "split":
		k, herr := hex.DecodeString(*key)
		if *tenant == 0 || *rangeID == 0 || herr != nil || len(k) == 0 {
			return usageErr("--tenant, --range and --key (non-empty hex) are required")
		}
		resp, err = c.SplitRange(ctx, &metav1.SplitRangeRequest{TenantId: *tenant, RangeId: *rangeID, SplitKey: k})
	case "merge":
		if *tenant == 0 || *left == 0 || *right == 0 {
			return usageErr("--tenant, --left and --right are required")
		}
		resp, err = c.MergeRanges(ctx, &metav1.MergeRangesRequest{TenantId: *tenant, LeftRangeId: *left, RightRangeId: *right})
	case "drain":
		k := map[string]metav1.WorkerKind{"sorter": metav1.WorkerKind_WORKER_KIND_SORTER, "dispatcher": metav1.WorkerKind_WORKER_KIND_DISPATCHER}[*kind]
		if *worker == "" || k == metav1.WorkerKind_WORKER_KIND_UNSPECIFIED {
			return usageErr("--worker is required and --kind must be sorter or dispatcher")
		}
		resp, err = c.DrainWorker(ctx, &metav1.DrainWorkerRequest{Kind: k, WorkerId: *worker, Cancel: *cancelDrain})
	default:
		return usageErr(fmt.Sprintf("unknown subcommand %q", sub))
	}
	return adminOutput(sub, resp, err, *asJSON, stdout, stderr, printAdmin)
}

// adminOutput prints an admin call's answer (as JSON, or with print) or
// its error, and returns the exit code.
func adminOutput(sub string, resp proto.Message, err error, asJSON bool, stdout, stderr io.Writer, print func(io.Writer, proto.Message)) int {
	if err != nil {
		fmt.Fprintf(stderr, "tistream admin %s: %v\n", sub, err)
		return 1
	}
	if asJSON {
		b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(resp)
		if err != nil {
			fmt.Fprintf(stderr, "tistream admin: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, string(b))
		return 0
	}
	print(stdout, resp)
	return 0
}

// printAdmin prints a response as aligned columns.
func printAdmin(w io.Writer, resp proto.Message) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch r := resp.(type) {
	case *metav1.ListTasksResponse:
		fmt.Fprintln(tw, "RANGE\tSTATE\tSTART\tEND\tEPOCH\tOWNER\tADDR\tWATERMARK\tLAG\tROWS/S\tBYTES/S\tCPU\tMEMORY\tPOOL B/S")
		for _, s := range r.Ranges {
			t := s.Task
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%.1fs\t%s\n", t.RangeId, shortState(t.State), keyOrInf(t.StartKey, "-inf"),
				keyOrInf(t.EndKey, "+inf"), t.Epoch, orDash(t.Owner), orDash(s.OwnerAddr), s.PublishedWatermark, s.LagSeconds, loadColumns(s.Load))
		}
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "STORE\tEPOCH\tOWNER\tADDR\tLATEST SEQ\tCHECKPOINT SEQ\tPENDING FILES")
		for _, s := range r.Streams {
			t := s.Task
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%d\t%d\n", t.StoreId, t.Epoch, orDash(t.Owner), orDash(s.OwnerAddr),
				t.LatestSeq, s.Checkpoint.GetSeq(), s.PendingFiles)
		}
		if len(r.Streams) > 0 {
			fmt.Fprintln(tw, "\nPENDING FILES: store files after the checkpoint, which moves once the sorters' snapshots cover them;")
			fmt.Fprintln(tw, "they stay in the buffer until then. A few are normal; a count that keeps rising is a stuck stream.")
		}
	case *metav1.SplitRangeResponse:
		fmt.Fprintf(tw, "split: new ranges %v (they take over once the range is sealed)\n", r.NewRangeIds)
	case *metav1.MergeRangesResponse:
		fmt.Fprintf(tw, "merge: new range %d (it takes over once both ranges are sealed)\n", r.NewRangeId)
	case *metav1.DrainWorkerResponse:
		fmt.Fprintf(tw, "drain: the worker still owns %d tasks (watch them move with admin tasks)\n", r.TasksOwned)
	}
}

func shortState(s metav1.RangeTask_State) string {
	switch s {
	case metav1.RangeTask_STATE_ACTIVE:
		return "active"
	case metav1.RangeTask_STATE_SEALING:
		return "sealing"
	case metav1.RangeTask_STATE_RETIRED:
		return "retired"
	}
	return s.String()
}

func keyOrInf(k []byte, inf string) string {
	if len(k) == 0 {
		return inf
	}
	const max = 24
	h := hex.EncodeToString(k)
	if len(h) > max {
		return h[:max] + "…"
	}
	return h
}

// loadColumns are a range's reported load: rows and bytes applied per
// second, the share of a core its applies and flushes take, what it holds
// and the data file bytes it publishes per second; dashes when its owner
// reports none (an older sorter, or a range just moved).
func loadColumns(l *metav1.RangeLoad) string {
	if l == nil {
		return "-\t-\t-\t-\t-"
	}
	return fmt.Sprintf("%.0f\t%s\t%.2f\t%s\t%s", l.RowsPerSec, iec(l.BytesPerSec), l.CpuShare, iec(float64(l.MemoryBytes)), iec(l.PoolBytesPerSec))
}

// iec prints a byte count with a binary unit.
func iec(b float64) string {
	const units = "KMGTPE"
	if b < 1024 {
		return fmt.Sprintf("%.0f", b)
	}
	i := 0
	for b /= 1024; b >= 1024 && i < len(units)-1; i++ {
		b /= 1024
	}
	return fmt.Sprintf("%.1f%ci", b, units[i])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
