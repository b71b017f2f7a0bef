// Package dispatcher is the dispatcher service (docs/fleet.md, "dispatcher"):
// it runs the (tenant, store) streams the meta-server assigns to it, reads
// each store's change files from the data change buffer in sequence order,
// routes their events by key to the ranges of the tenant's routing table, and
// sends each file's batches to the sorters owning those ranges over one
// long-lived Ingest stream per sorter. It advances a stream's checkpoint in
// etcd only when every range a file fed has acknowledged it as durable, and
// only then deletes the buffer files behind the checkpoint.
//
// The pieces:
//
//   - tasks.go: which streams this instance owns (watching stream tasks) and
//     the lease: a lost lease stops every stream at once and re-registers.
//   - routes.go, table.go: each tenant's routing table (range tasks and sorter
//     addresses, watched); a change restarts the streams it affects.
//   - stream.go, run.go, window.go: one stream's loop: read, route, send, and
//     the window of unacknowledged files (at most MaxInFlight). A run (from
//     the checkpoint, with one Router) ends on a routing change even while
//     blocked sending (watchRouting), on NotOwner for any of its in-flight
//     files (but a SEALING range's refusal only after sealedWait: the
//     routing change naming its successors ends the run first, and the run
//     feeds the other ranges meanwhile), and when an Ingest stream it used
//     breaks. Between failed runs the backoff ends early on a routing
//     change (retryWait).
//   - replay.go: the replay cache: the bytes of the files a stream read
//     past its checkpoint (bounded dispatcher-wide), so the run after a
//     restart routes them again without reading the buffer. Only a copy of
//     the buffer: the invariants (a range gets its files in order, the
//     checkpoint passes a file only once every range it fed made it
//     durable, a crash loses nothing) do not depend on it.
//   - notices.go, read.go: how a stream finds its next file: the replay
//     cache; else the key a notification named (seq and max_ts: one GET);
//     else, or when that key is not found, a listing of the seq. What a
//     GET of one key cannot see (a second object under the seq) is caught
//     when a notification names the seq otherwise: the seq is listed
//     before it is read, or again at once after (recheck).
//   - delivered.go: resending only to the ranges that changed: per range,
//     what an Ingest stream carried (recorded when its sender commits to a
//     Send), so a restarted run skips a range whose sorter has its batches
//     on the same live stream at the same owner and epoch; a refusal cancels
//     it.
//   - conn.go: one Ingest stream per sorter address, shared by every stream
//     sending to it; one sender goroutine serialises Sends, so a slow sorter
//     blocks its senders (gRPC flow control) instead of growing memory.
//   - checkpoint.go: fenced checkpoint writes and buffer garbage collection.
package dispatcher
