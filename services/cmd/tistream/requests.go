package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore/metered"
)

// upstreamService is the service label of the simulator's requests in the
// benchmarks (the fleet's services label theirs with their own names).
const upstreamService = "upstream"

// requestRun is what one benchmark run measured of object-store requests:
// the counts over its traffic window and the shape of the run, enough to
// print its tables and to fit a cost model over several runs
// (`tistream lag --requests-out`, `tistream cost`).
type requestRun struct {
	Label string `json:"label"`
	// Stores counts store streams: TiKV stores × tenants (each tenant's
	// files of a store are a stream of their own).
	Stores  int     `json:"stores"`
	Ranges  int     `json:"ranges"`
	Tables  int     `json:"tables"`
	Seconds float64 `json:"seconds"` // the traffic window
	Rows    int64   `json:"rows"`    // row changes committed in it
	// End-to-end row lag (commit to puller) of the run, milliseconds.
	LagP50Ms float64          `json:"lag_p50_ms"`
	LagP99Ms float64          `json:"lag_p99_ms"`
	Requests []metered.Sample `json:"requests"`
	Bytes    []metered.Sample `json:"bytes"`
}

// finiteOr0 is v, or 0 for NaN (no sample): JSON has no NaN.
func finiteOr0(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

func (r *requestRun) rowsPerSec() float64 { return float64(r.Rows) / max(r.Seconds, 1e-9) }

// fleetRegistries are the registries of a fleet's services.
func fleetRegistries(f *fleet) []prometheus.Gatherer {
	out := make([]prometheus.Gatherer, 0, len(f.members))
	for _, m := range f.members {
		if m.reg != nil {
			out = append(out, m.reg)
		}
	}
	return out
}

// requestCounts are the request and byte series at one moment.
type requestCounts struct{ requests, bytes []metered.Sample }

func gatherRequests(gs ...prometheus.Gatherer) (requestCounts, error) {
	r, b, err := metered.Gather(gs...)
	return requestCounts{r, b}, err
}

// since returns c minus an earlier reading: what happened in between.
func (c requestCounts) since(before requestCounts) (requests, bytes []metered.Sample) {
	return subtract(c.requests, before.requests), subtract(c.bytes, before.bytes)
}

func subtract(after, before []metered.Sample) []metered.Sample {
	key := func(s metered.Sample) metered.Sample { s.Value = 0; return s }
	was := map[metered.Sample]float64{}
	for _, s := range before {
		was[key(s)] += s.Value
	}
	sum := map[metered.Sample]float64{}
	for _, s := range after {
		sum[key(s)] += s.Value
	}
	var out []metered.Sample
	for k, v := range sum {
		if d := v - was[k]; d > 0 {
			k.Value = d
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b metered.Sample) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Purpose, b.Purpose), cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.Outcome, b.Outcome), cmp.Compare(a.Direction, b.Direction), cmp.Compare(a.Tenant, b.Tenant))
	})
	return out
}

// Price classes of S3 Standard requests (docs/benchmarks.md, "Object-store
// requests"): PUT, COPY, POST and LIST; GET and every other; DELETE free.
const (
	classWrite = "PUT/LIST"
	classRead  = "GET"
	classFree  = "DELETE"
)

// S3 Standard list prices, US dollars per 1,000 requests.
var pricePer1000 = map[string]float64{classWrite: 0.005, classRead: 0.0004, classFree: 0}

// secondsPerMonth is a 30-day month, as the estimates use.
const secondsPerMonth = 30 * 24 * 3600

func priceClass(kind string) string {
	switch kind {
	case metered.KindPut, metered.KindPutIfAbsent, metered.KindList:
		return classWrite
	case metered.KindDelete:
		return classFree
	}
	return classRead
}

func isRead(kind string) bool {
	return kind == metered.KindGet || kind == metered.KindGetRange || kind == metered.KindList
}

func isWrite(kind string) bool { return kind == metered.KindPut || kind == metered.KindPutIfAbsent }

// Drivers: what a line of requests is assumed to grow with, besides rows.
const (
	driverStores = "stores"
	driverRanges = "ranges"
	driverFixed  = "fixed"
)

// costLine is a disjoint family of requests: every request falls in
// exactly one (lineOf).
type costLine struct {
	name, driver string
}

var costLines = []costLine{
	{"upstream: store-file writes", driverStores},
	{"buffer reads (store files, listings)", driverStores},
	{"buffer deletes (GC)", driverStores},
	{"pool writes", driverRanges},
	{"pool reads", driverRanges},
	{"pool deletes (retention)", driverRanges},
	{"sorter snapshots", driverRanges},
	{"schema registry, other", driverFixed},
}

// lineOf returns the index in costLines of a request series.
func lineOf(s metered.Sample) int {
	p := layout.Purpose(s.Purpose)
	switch {
	case s.Service == upstreamService:
		return 0
	case p.IsBuffer() && s.Kind == metered.KindDelete:
		return 2
	case p.IsBuffer():
		return 1
	case p.IsPool() && isWrite(s.Kind):
		return 3
	case p.IsPool() && s.Kind == metered.KindDelete:
		return 5
	case p.IsPool():
		return 4
	case p == layout.PurposeSorterSnapshot:
		return 6
	}
	return 7
}

// figure is a count of requests, or of bytes, selected by a predicate.
type figure struct {
	name     string
	requests func(metered.Sample) bool
	bytes    func(metered.Sample) bool // the bytes the requests moved
}

func purposeIs(s metered.Sample, f func(layout.Purpose) bool) bool {
	return f(layout.Purpose(s.Purpose))
}

// figures are the per-MiB and per-row figures the issue asks for.
var figures = []figure{
	{"store-file reads (GET)",
		func(s metered.Sample) bool {
			return s.Purpose == string(layout.PurposeStoreFile) && s.Service != upstreamService && (s.Kind == metered.KindGet || s.Kind == metered.KindGetRange)
		},
		func(s metered.Sample) bool {
			return s.Purpose == string(layout.PurposeStoreFile) && s.Service != upstreamService && s.Direction == metered.DirectionOut
		}},
	{"buffer reads (GET, LIST)",
		func(s metered.Sample) bool {
			return purposeIs(s, layout.Purpose.IsBuffer) && s.Service != upstreamService && isRead(s.Kind)
		},
		func(s metered.Sample) bool {
			return purposeIs(s, layout.Purpose.IsBuffer) && s.Service != upstreamService && s.Direction == metered.DirectionOut
		}},
	{"pool writes (PUT)",
		func(s metered.Sample) bool { return purposeIs(s, layout.Purpose.IsPool) && isWrite(s.Kind) },
		func(s metered.Sample) bool {
			return purposeIs(s, layout.Purpose.IsPool) && s.Direction == metered.DirectionIn
		}},
	{"pool reads (GET, LIST), every service",
		func(s metered.Sample) bool { return purposeIs(s, layout.Purpose.IsPool) && isRead(s.Kind) },
		func(s metered.Sample) bool {
			return purposeIs(s, layout.Purpose.IsPool) && s.Direction == metered.DirectionOut
		}},
	{"pool reads by the api-server",
		func(s metered.Sample) bool {
			return s.Service == "api-server" && purposeIs(s, layout.Purpose.IsPool) && isRead(s.Kind)
		},
		func(s metered.Sample) bool {
			return s.Service == "api-server" && purposeIs(s, layout.Purpose.IsPool) && s.Direction == metered.DirectionOut
		}},
	{"snapshot writes (PUT)",
		func(s metered.Sample) bool {
			return s.Purpose == string(layout.PurposeSorterSnapshot) && isWrite(s.Kind)
		},
		func(s metered.Sample) bool {
			return s.Purpose == string(layout.PurposeSorterSnapshot) && s.Direction == metered.DirectionIn
		}},
}

func sum(ss []metered.Sample, keep func(metered.Sample) bool) float64 {
	t := 0.0
	for _, s := range ss {
		if keep(s) {
			t += s.Value
		}
	}
	return t
}

func ratio(n, d float64) string {
	if d <= 0 {
		return "-"
	}
	return fmtFloat(n / d)
}

// fmtFloat prints a rate with about three significant digits.
func fmtFloat(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 0.1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// printRequests writes a run's request tables as Markdown.
func printRequests(w io.Writer, r *requestRun) {
	secs, krows := r.Seconds, float64(r.Rows)/1000
	fmt.Fprintf(w, "\nobject-store requests over the %.1f s of traffic (%d rows, %d store streams (stores × tenants), %d ranges; every service and the simulator)\n\n",
		secs, r.Rows, r.Stores, r.Ranges)
	fmt.Fprintln(w, "| service | purpose | kind | requests | per s | per 1,000 rows | not ok |")
	fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---|")
	type row struct{ service, purpose, kind string }
	counts := map[row]float64{}
	notOK := map[row]map[string]float64{}
	for _, s := range r.Requests {
		k := row{s.Service, s.Purpose, s.Kind}
		counts[k] += s.Value
		if s.Outcome != metered.OutcomeOK {
			if notOK[k] == nil {
				notOK[k] = map[string]float64{}
			}
			notOK[k][s.Outcome] += s.Value
		}
	}
	keys := make([]row, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.service, b.service), cmp.Compare(a.purpose, b.purpose), cmp.Compare(a.kind, b.kind))
	})
	for _, k := range keys {
		n := counts[k]
		bad := ""
		for _, o := range []string{metered.OutcomeNotFound, metered.OutcomeExists, metered.OutcomeError} {
			if v := notOK[k][o]; v > 0 {
				bad += fmt.Sprintf("%s %.0f ", o, v)
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.0f | %s | %s | %s |\n", k.service, k.purpose, k.kind, n, ratio(n, secs), ratio(n, krows), bad)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| requests for | count | per s | per 1,000 rows | MiB moved | per MiB |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, f := range figures {
		n := sum(r.Requests, f.requests)
		mib := sum(r.Bytes, f.bytes) / (1 << 20)
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %.2f | %s |\n", f.name, n, ratio(n, secs), ratio(n, krows), mib, ratio(n, mib))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| pool requests | PUT | GET | LIST | DELETE |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	var put, get, list, del float64
	for _, s := range r.Requests {
		if !purposeIs(s, layout.Purpose.IsPool) {
			continue
		}
		switch {
		case isWrite(s.Kind):
			put += s.Value
		case s.Kind == metered.KindList:
			list += s.Value
		case s.Kind == metered.KindDelete:
			del += s.Value
		default:
			get += s.Value
		}
	}
	fmt.Fprintf(w, "| per s | %s | %s | %s | %s |\n", ratio(put, secs), ratio(get, secs), ratio(list, secs), ratio(del, secs))
	fmt.Fprintf(w, "| per 1,000 rows | %s | %s | %s | %s |\n", ratio(put, krows), ratio(get, krows), ratio(list, krows), ratio(del, krows))
}

func writeRequestRun(path string, r *requestRun) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func readRequestRun(path string) (*requestRun, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &requestRun{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Seconds <= 0 || r.Stores <= 0 || r.Ranges <= 0 {
		return nil, fmt.Errorf("%s: not a request run (seconds, stores and ranges must be positive)", path)
	}
	return r, nil
}
