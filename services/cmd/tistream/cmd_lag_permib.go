package main

import (
	"fmt"
	"io"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore/metered"
)

// printRequestsPerMiB writes the fleet's object-store requests per MiB
// ingested end to end: every request of the services (the upstream's own
// store-file PUTs excluded) over the MiB of store files the upstream wrote
// in the traffic window, by family; DELETEs are counted apart (free on S3).
func printRequestsPerMiB(w io.Writer, r *requestRun, ingested int64) {
	mib := float64(ingested) / (1 << 20)
	if r == nil || mib <= 0 {
		return
	}
	fams := []string{"buffer (store-file GET, LIST)", "pool writes (PUT)", "pool reads (GET, LIST)", "snapshot writes", "other"}
	var n [5]float64
	var deletes, all float64
	for _, s := range r.Requests {
		if s.Service == upstreamService {
			continue
		}
		if s.Kind == metered.KindDelete {
			deletes += s.Value
			continue
		}
		p := layout.Purpose(s.Purpose)
		i := 4
		switch {
		case p.IsBuffer():
			i = 0
		case p.IsPool() && isWrite(s.Kind):
			i = 1
		case p.IsPool():
			i = 2
		case p == layout.PurposeSorterSnapshot:
			i = 3
		}
		n[i] += s.Value
		all += s.Value
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| fleet requests per MiB ingested (%.2f MiB of store files; upstream PUTs excluded) | requests | per MiB |\n", mib)
	fmt.Fprintln(w, "|---|---:|---:|")
	for i, f := range fams {
		fmt.Fprintf(w, "| %s | %.0f | %.2f |\n", f, n[i], n[i]/mib)
	}
	fmt.Fprintf(w, "| **all but DELETE** | %.0f | **%.2f** |\n", all, all/mib)
	fmt.Fprintf(w, "| DELETE (free) | %.0f | %.2f |\n", deletes, deletes/mib)
}
