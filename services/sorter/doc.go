// Package sorter is TiStream's sorter service (docs/fleet.md, "sorter"): it
// hosts the ranges the meta-server assigns to it and turns the routed store
// files dispatchers send over SorterService.Ingest into the committed data
// pool, using libs/sorter for each range.
//
// The service registers a WorkerInfo (kind SORTER) under a lease and
// watches the range tasks under /tistream/v1/ranges/. A range assigned to it
// (owner = its id) at epoch E is taken with libs/sorter.Take: restored from
// its latest snapshot when the pool has its log (which fences the previous
// owner), created from the task otherwise. A range reassigned away, retired,
// or fenced in the pool is dropped. Losing the lease drops every range; the
// service then registers again.
//
// Ingest applies each RangeBatch of an owned range at the matching epoch in
// the order the stream carries them (one goroutine at a time per range;
// redeliveries below a store's applied position are skipped by the range),
// and answers NotOwner for the others. The batches of a request for
// different ranges run in parallel on the process's bounded worker pool
// (work.go, --workers), as do the stages and commits of a publish round. A
// batch names the store's previous file the dispatcher's run routed to the
// range (prev_seq); a range that has not applied that far (it went back to
// its snapshot when taken again) refuses it. A refusal is sticky per (range,
// store) until the range's position for the store reaches the refused file
// (the dispatcher resends from its checkpoint), so a range never applies a
// store's file after a gap. The ranges of a tenant are published together
// in this process's group for the tenant (publish.go: one publication per
// flush interval for all of them, committed data pool format 2). Every
// snapshot interval a range writes a snapshot when it applied something new;
// then it sends Durable{range, store, seq} for the snapshot's store
// positions on the Ingest streams that fed those stores.
//
// Splits and merges (a SEALING range task naming its successors) are done
// with Range.SplitInto and libs/sorter.MergeInto by the sorter holding the
// sealing range(s); see seal.go.
package sorter
