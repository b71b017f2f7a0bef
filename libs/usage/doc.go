// Package usage meters what each tenant uses, per hour, exactly once
// (docs/tenants.md, "Metering"):
//
//   - Meter counts, in one process, the object-store requests made on a
//     tenant's behalf (a metered.Tap), the rows and bytes served to its
//     pullers and the time its pulls were open, per (tenant, hour), and
//     exports them as tistream_tenant_usage_* counters behind a
//     LabelGuard (at most N tenant label values per process).
//   - Flusher writes what a Meter counted as immutable RAW records,
//     put-if-absent under a key naming the process incarnation and a
//     sequence number, so a retried flush is never counted twice; a
//     graceful stop flushes; a killed process loses at most one interval.
//   - Sample is the meta-server leader's gauge sample: stored bytes by
//     class and the tenant's cumulative ingest totals, which ride in the
//     dispatchers' checkpoints (advanced in the same fenced etcd write as
//     the file sequence, so each file counts once across failover).
//   - Fold and Rollup fold an hour's records into one HOURLY record,
//     put-if-absent, so a rollup that crashes midway and runs again (on
//     this leader or the next) neither loses nor doubles; Query answers
//     GetUsage from the rollups and, for hours not rolled up yet, from the
//     records so far.
package usage
